"""``--demo``: a GitHub on loopback with a few new issues, so the agent runs with no account.

It is the test suite's fake (``tests/tools/github_fake.py``: standard library only,
GitHub's JSON shapes, a token check), loaded from the clone and seeded here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

__all__ = ["DEMO_TOKEN", "demo_github"]

DEMO_TOKEN = "demo-token"
FAKE = Path(__file__).resolve().parents[2] / "tests" / "tools" / "github_fake.py"


def demo_github() -> Any:
    """A started-on-enter ``FakeGitHub`` for ``acme/app`` holding five open issues and a PR."""
    if not FAKE.exists():
        raise SystemExit(f"error: --demo needs {FAKE} from the orra-di repository")
    spec = importlib.util.spec_from_file_location("github_fake", FAKE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["github_fake"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    github = module.FakeGitHub(token=DEMO_TOKEN, owner="acme", repo="app")
    github.add_issue("App crashes on start with Python 3.13", "Traceback (most recent call last)…")
    github.add_issue("Add a dark mode", "It would be easier on the eyes at night.")
    github.add_issue("How do I configure a proxy?", "Our network needs one.")
    github.add_issue("Crash on start under Python 3.13", "Same traceback here.", user="hubot")
    github.add_issue("Typo in the README", "'recieve'", labels=["docs"])
    github.add_pull("Fix the start-up crash", "Closes #1.")
    return github
