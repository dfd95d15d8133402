"""The package's public surface: everything in ``orra_di.__all__`` exists, and every
public name of the core modules is reachable from ``orra_di`` or deliberately not."""

from __future__ import annotations

import importlib

import orra_di

CORE_MODULES = [
    "agent",
    "context",
    "delegation",
    "errors",
    "hook",
    "message",
    "namespace",
    "policy",
    "prompt",
    "provider",
    "runtime",
    "runtime_set",
    "session",
    "store",
    "tool",
]

# Public in their module, but used through it rather than from the package root.
MODULE_LEVEL_ONLY = {
    "DELEGATION_PREFIX",
    "INTERRUPTED",
    "SPAWN_PREFIX",
    "close_provider",
    "closing_stream",
    "delegation_chain",
    "JsonValue",
    "MAX_KEY_LENGTH",
    "PolicyMode",
    "SEPARATOR",
    "History",
    "ToolTimedOut",
    "check_keep_last",
    "in_subtree",
    "index_token",
    "parse_tool_arguments",
    "MAX_ARGUMENT_DEPTH",
    "bounded_tool_arguments",
    "prune_cutoff",
    "response_events",
    "subtree_bounds",
    "trim_start",
    "utc_now",
}


def test_every_exported_name_exists_once() -> None:
    for name in orra_di.__all__:
        assert hasattr(orra_di, name), name
    assert len(set(orra_di.__all__)) == len(orra_di.__all__)


def test_the_core_modules_public_names_are_exported() -> None:
    missing = []
    for module_name in CORE_MODULES:
        module = importlib.import_module(f"orra_di.{module_name}")
        for name in module.__all__:
            if name not in orra_di.__all__ and name not in MODULE_LEVEL_ONLY:
                missing.append(f"orra_di.{module_name}.{name}")
    assert missing == []


def test_importing_the_package_does_not_import_dependency_injector_or_sdks() -> None:
    import subprocess
    import sys

    code = (
        "import sys, orra_di; "
        "print(sorted(m for m in ('dependency_injector', 'anthropic', 'openai', 'psycopg', "
        "'redis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
