"""A working directory per session, handed to the tools that take one.

The directory lives in the session (per-session state, ``"working_directory"``),
never on the hook: orra kept it in one field of the hook, so one user's
directory applied to another's calls (spec §5.2/11). It is set

- by the application: :func:`set_working_directory` (``store``, namespace, path),
  outside a run, under the session's lock;
- by the model: the :func:`working_directory_tool` (``set_working_directory``),
  which resolves a relative path against the current one and checks that it is
  a directory;
- by any hook or tool inside a run: ``current_run().set_state(STATE_KEY, path)``.

:class:`WorkingDirectoryHook` puts it into the arguments of each call to a tool
that **declares** it takes one: a tool whose input schema has a
``working_directory`` property (``@tool def exec(command: str,
working_directory: str | None = None)``), or a name given to the hook. An
explicit ``working_directory`` in the call is left alone, as in orra. A tool
that should not let the model choose reads :func:`working_directory` itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from orra_di.errors import ConfigurationError, OrraError, ToolError
from orra_di.hook import Hook
from orra_di.message import ToolCall
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.run_context import STATE_KEY as _SESSION_STATE
from orra_di.run_context import current_run, maybe_current_run
from orra_di.session import Session
from orra_di.store import SessionStore
from orra_di.tool import FunctionTool, Tool, tool

__all__ = [
    "ARGUMENT",
    "STATE_KEY",
    "WorkingDirectoryHook",
    "set_working_directory",
    "takes_working_directory",
    "working_directory",
    "working_directory_tool",
]

STATE_KEY = "working_directory"
"""The per-session state key (``session.metadata["state"]["working_directory"]``)."""
ARGUMENT = "working_directory"
"""The argument a tool declares in its input schema to receive the directory."""


def takes_working_directory(candidate: Tool) -> bool:
    """True when ``candidate``'s input schema has a ``working_directory`` property."""
    properties = candidate.definition.input_schema.get("properties")
    return isinstance(properties, dict) and ARGUMENT in properties


def working_directory() -> str | None:
    """The current session's working directory, inside a run (``None`` if unset)."""
    value = current_run().state(STATE_KEY)
    return value if isinstance(value, str) else None


def _checked(
    path: str | os.PathLike[str], base: str | None, error: type[OrraError] = OrraError
) -> str:
    """``path`` made absolute (relative to ``base`` or the process's directory), and
    checked to be an existing directory; ``error`` says why not."""
    text = os.fspath(path)
    if not text.strip():
        raise error("the working directory must be a path, got an empty string")
    resolved = Path(base or os.getcwd(), text).expanduser().resolve()
    if not resolved.is_dir():
        what = "is not a directory" if resolved.exists() else "does not exist"
        raise error(f"cannot use {resolved} as the working directory: it {what}")
    return str(resolved)


async def set_working_directory(
    store: SessionStore,
    namespace: NamespaceLike,
    path: str | os.PathLike[str] | None,
    *,
    check: bool = True,
) -> str | None:
    """Set (or with ``None`` clear) a session's working directory from the application.

    Takes the session's single-writer lock, so it waits for a run in progress
    (inside a run, use ``current_run().set_state`` instead). With ``check`` the
    path must be an existing directory (else :class:`~orra_di.errors.OrraError`
    saying why, and nothing is stored); it is stored absolute. Returns what was stored.
    """
    ns = Namespace.coerce(namespace)
    value = None if path is None else (_checked(path, None) if check else os.fspath(path))
    async with store.lock(ns):
        session = await store.load(ns) or Session(namespace=ns)
        metadata = dict(session.metadata)
        state = metadata.get(_SESSION_STATE)
        state = dict(state) if isinstance(state, dict) else {}
        if value is None:
            state.pop(STATE_KEY, None)
        else:
            state[STATE_KEY] = value
        metadata[_SESSION_STATE] = state
        await store.append(ns, [], metadata=metadata)
    return value


def working_directory_tool() -> FunctionTool:
    """The ``set_working_directory`` tool: the model changes its session's directory."""

    @tool(name="set_working_directory")
    def set_directory(path: str) -> str:
        """Change the working directory of this conversation for the tools that run
        commands or edit files. A relative path is taken from the current directory."""
        run = current_run()
        current = run.state(STATE_KEY)
        resolved = _checked(path, current if isinstance(current, str) else None, ToolError)
        run.set_state(STATE_KEY, resolved)
        return f"working directory is now {resolved}"

    return set_directory


DEFAULT_TOOLS = ("exec", "claude_code")
"""orra's directory-aware tools, by name (they arrive with the tools issue)."""


class WorkingDirectoryHook(Hook):
    """Adds the session's working directory to calls of the tools that take one.

    ``tools``: tool objects (each must declare a ``working_directory`` argument,
    see :func:`takes_working_directory`) or tool names; default: orra's
    ``exec`` and ``claude_code``. ``default`` is used for sessions that have
    none set.
    """

    def __init__(
        self, tools: Iterable[Tool | str] = DEFAULT_TOOLS, *, default: str | None = None
    ) -> None:
        names: set[str] = set()
        for item in tools:
            if isinstance(item, str):
                names.add(item)
                continue
            if not takes_working_directory(item):
                name = item.definition.name
                raise ConfigurationError(
                    f"tool {name!r} does not take a working directory: add a parameter "
                    f"'{ARGUMENT}: str | None = None' to it, or leave it out of the hook"
                )
            names.add(item.definition.name)
        self.tools = frozenset(names)
        if default is not None:  # a typo here would only show as every tool call failing
            try:
                _checked(default, None, ConfigurationError)
            except ConfigurationError as exc:
                raise ConfigurationError(
                    f"the default working directory: {exc}; create it or give an existing "
                    "one (setting working_directory.default, ORRA_WORKING_DIRECTORY__DEFAULT)"
                ) from None
        self.default = default

    def __repr__(self) -> str:
        return f"WorkingDirectoryHook(tools={sorted(self.tools)!r}, default={self.default!r})"

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        if call.name not in self.tools or not isinstance(call.arguments, dict):
            return None
        if ARGUMENT in call.arguments:
            return None  # an explicit directory wins, as in orra
        run = maybe_current_run()
        stored = run.state(STATE_KEY) if run is not None else None
        directory = stored if isinstance(stored, str) else self.default
        if directory is None:
            return None
        return call.model_copy(update={"arguments": {**call.arguments, ARGUMENT: directory}})
