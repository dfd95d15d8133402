"""Round 9 review: docs/tools.md's exec confinement and settings forms.

"Paths stay inside the working directory": with the README's own allowlist (git, ls),
``git clone /srv/repo`` is refused, and ``git clone file:///srv/repo`` (the same
directory, spelled as a URL, which git, curl and wget all read) must be too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from orra_di import ToolContext, ToolInputError
from orra_di.errors import ConfigurationError
from orra_di.settings import load_settings
from orra_di.tools.exec import exec_tool
from orra_di.tools.settings import ExecSettings

CTX = ToolContext("review")


async def run_exec(command: str, cwd: Path, **options: Any) -> str:
    tool = exec_tool(ExecSettings(enabled=True, **options))
    result: str = await tool.execute({"command": command, "working_directory": str(cwd)}, CTX)
    return result


@pytest.mark.anyio
@pytest.mark.parametrize(
    "argument",
    [
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "file://localhost/etc/passwd",
        "file:/etc/passwd",
        "file:///%65tc/passwd",
        "--url=file:///etc/passwd",
        "file://{outside}",
    ],
)
async def test_a_file_url_outside_the_working_directory_is_refused(
    tmp_path: Path, argument: str
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    argument = argument.format(outside=tmp_path / "other")
    with pytest.raises(ToolInputError, match="outside the working directory"):
        await run_exec(f"cat {argument}", work, allow=["cat"])


@pytest.mark.anyio
async def test_git_cannot_clone_a_repository_outside_through_a_file_url(tmp_path: Path) -> None:
    secret, work = tmp_path / "secret", tmp_path / "work"
    secret.mkdir()
    work.mkdir()
    env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b"}
    env |= {"GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@b"}
    (secret / "s.txt").write_text("top secret\n")
    for args in (["init", "-q"], ["add", "s.txt"], ["commit", "-qm", "s"]):
        await anyio.run_process(["git", *args], cwd=secret, check=True, env=env)
    for url in (str(secret), f"file://{secret}"):
        with pytest.raises(ToolInputError, match="outside the working directory"):
            await run_exec(f"git clone {url} copy", work, allow=["git", "ls"])
    assert not (work / "copy").exists()


@pytest.mark.anyio
async def test_a_file_url_inside_the_working_directory_is_fine(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("inside\n")
    out = await run_exec(f"echo file://{tmp_path}/a.txt", tmp_path, allow=["echo"])
    assert out == f"file://{tmp_path}/a.txt\n"


def test_the_old_list_form_cannot_switch_on_a_tool_that_needs_options(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("ORRA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ORRA_TOOLS", '["calculate", "exec"]')
    with pytest.raises(ConfigurationError, match="ORRA_TOOLS__EXEC__ENABLED"):
        load_settings()
    monkeypatch.setenv("ORRA_TOOLS", '["calculate"]')
    settings = load_settings()
    assert settings.tools.enabled() == ["calculate"]
    monkeypatch.delenv("ORRA_TOOLS")
    monkeypatch.setenv("ORRA_TOOLS__EXEC__ENABLED", "true")
    monkeypatch.setenv("ORRA_TOOLS__EXEC__ALLOW", '["echo"]')
    settings = load_settings()
    assert "exec" in settings.tools.enabled() and settings.tools.exec.allow == ["echo"]
