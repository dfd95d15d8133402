"""Round 8 review: the built-in tool pack, checked against docs/tools.md as a user reads it.

Security claims first: the exec allowlist and path confinement, the clean environment,
"nothing outlives the call", and the web tools' SSRF guard (every spelling of loopback,
redirects checked hop by hop).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from pytest_httpserver import HTTPServer

from orra_di import ToolContext, ToolExecutionError, ToolInputError
from orra_di.tools.exec import exec_tool
from orra_di.tools.settings import ExecSettings, WebSettings
from orra_di.tools.web import web_fetch_tool

pytestmark = pytest.mark.anyio
CTX = ToolContext("review")


async def run_exec(command: str, cwd: Path, **options: Any) -> str:
    tool = exec_tool(ExecSettings(enabled=True, **options))
    result: str = await tool.execute({"command": command, "working_directory": str(cwd)}, CTX)
    return result


# -- exec -------------------------------------------------------------------------


async def test_exec_no_shell_metacharacters_are_arguments(tmp_path: Path) -> None:
    out = await run_exec("echo hi; rm -rf ~ && $(id) `id` | cat > x", tmp_path, allow=["echo"])
    assert out == "hi; rm -rf ~ && $(id) `id` | cat > x\n"
    assert not (tmp_path / "x").exists()


async def test_exec_program_in_working_directory_is_not_the_allowed_one(tmp_path: Path) -> None:
    fake = tmp_path / "ls"
    fake.write_text("#!/bin/sh\necho pwned\n")
    fake.chmod(0o755)
    with pytest.raises(ToolInputError, match="not in the allowed list"):
        await run_exec("./ls", tmp_path, allow=["ls"])


@pytest.mark.parametrize(
    "argument",
    [
        "/etc/passwd",
        "../..",
        "--file=/etc/passwd",
        "-f/etc/passwd",
        "-C/etc",
        "-I../..",
        "if=/etc/passwd",  # dd
        "@/etc/passwd",  # curl -d @file
        "file=@/etc/passwd",  # curl -F
        "of=../../x",
    ],
)
async def test_exec_confine_paths_refuses_paths_outside(tmp_path: Path, argument: str) -> None:
    # docs: "an argument such as /etc/passwd, ../.. or --output=/tmp/x is refused"; a short
    # option with its value attached (grep -f/etc/passwd, git -C/etc) names a path just the same
    with pytest.raises(ToolInputError, match="outside the working directory"):
        await run_exec(f"cat {argument}", tmp_path, allow=["cat"])


async def test_exec_confine_paths_follows_symlinks_out(tmp_path: Path) -> None:
    (tmp_path / "escape").symlink_to("/etc")
    with pytest.raises(ToolInputError, match="outside the working directory"):
        await run_exec("cat escape/hostname", tmp_path, allow=["cat"])


async def test_exec_confine_paths_lets_inside_paths_through(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f.txt").write_text("inside\n")
    assert await run_exec("cat sub/f.txt", tmp_path, allow=["cat"]) == "inside\n"
    assert await run_exec("cat ./sub/../sub/f.txt", tmp_path, allow=["cat"]) == "inside\n"


async def test_exec_environment_withholds_server_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-review-secret")
    monkeypatch.setenv("ORRA_PROVIDER__API_KEY", "sk-review-secret-2")
    out = await run_exec("env", tmp_path, allow=["env"], env={"EXTRA": "1"})
    assert "sk-review-secret" not in out
    assert "EXTRA=1" in out
    assert "PATH=" in out


async def test_exec_shell_requires_allow_any() -> None:
    with pytest.raises(ValidationError, match="allow_any"):
        ExecSettings(enabled=True, allow=["ls"], shell=True)


async def test_exec_enabled_without_allowlist_says_what_to_set() -> None:
    with pytest.raises(ValidationError, match=r"tools\.exec\.allow"):
        ExecSettings(enabled=True)


async def test_exec_output_cut_on_characters(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("é" * 500)
    out = await run_exec("cat big.txt", tmp_path, allow=["cat"], max_output_chars=100)
    assert out.startswith("é" * 100 + "\n[output truncated at 100 characters]")


async def test_exec_root_bounds_working_directory(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    tool = exec_tool(ExecSettings(enabled=True, allow=["pwd"], root=str(root)))
    assert (await tool.execute({"command": "pwd"}, CTX)).strip() == str(root.resolve())
    with pytest.raises(ToolInputError, match="outside"):
        await tool.execute({"command": "pwd", "working_directory": str(tmp_path)}, CTX)
    with pytest.raises(ToolInputError, match="outside"):
        await tool.execute({"command": "pwd", "working_directory": ".."}, CTX)


# -- web_fetch SSRF guard -------------------------------------------------------------


def fetcher(**options: Any) -> Any:
    return web_fetch_tool(WebSettings(enabled=True, **options))


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/",
        "http://localhost:{port}/",
        "http://2130706433:{port}/",
        "http://0x7f.1:{port}/",
        "http://[::ffff:127.0.0.1]:{port}/",
        "http://[::1]:{port}/",
        "http://0.0.0.0:{port}/",
        "http://0:{port}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://localhost.:{port}/",
    ],
)
async def test_ssrf_guard_refuses_internal_addresses(httpserver: HTTPServer, url: str) -> None:
    httpserver.expect_request("/").respond_with_data("secret internal page")
    with pytest.raises((ToolExecutionError, ToolInputError)) as caught:
        await fetcher(timeout=3).execute({"url": url.format(port=httpserver.port)}, CTX)
    assert "secret internal page" not in str(caught.value)
    assert len(httpserver.log) == 0


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.com/", "http://user:pw@example.com/"]
)
async def test_ssrf_guard_refuses_schemes_and_credentials(url: str) -> None:
    with pytest.raises(ToolInputError):
        await fetcher().execute({"url": url}, CTX)


async def test_ssrf_guard_checks_every_redirect_hop(httpserver: HTTPServer) -> None:
    # the first hop is an allowed network (127.0.0.1 only); it redirects to 127.0.0.2,
    # which is loopback and not allowed: the redirect must be refused
    httpserver.expect_request("/start").respond_with_data(
        "", status=302, headers={"Location": f"http://127.0.0.2:{httpserver.port}/inside"}
    )
    httpserver.expect_request("/inside").respond_with_data("secret internal page")
    with pytest.raises(ToolExecutionError, match="loopback"):
        await fetcher(allow_networks=["127.0.0.1/32"], timeout=3).execute(
            {"url": f"http://127.0.0.1:{httpserver.port}/start"}, CTX
        )
    assert [entry[0].path for entry in httpserver.log] == ["/start"]


async def test_allowed_network_is_reached(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/").respond_with_data(
        "<p>hello &amp;lt; there</p>", content_type="text/html"
    )
    out = await fetcher(allow_networks=["127.0.0.0/8"], timeout=3).execute(
        {"url": f"http://127.0.0.1:{httpserver.port}/"}, CTX
    )
    assert out == "hello &lt; there"


async def test_allow_networks_bad_value_names_it() -> None:
    with pytest.raises(ValidationError, match="not a network"):
        WebSettings(enabled=True, allow_networks=["intranet"])


async def test_body_cut_at_max_bytes(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/").respond_with_data("a" * 50_000, content_type="text/plain")
    out = await fetcher(allow_networks=["127.0.0.0/8"], max_bytes=2048, timeout=3).execute(
        {"url": f"http://127.0.0.1:{httpserver.port}/"}, CTX
    )
    assert "only those were read" in out
    assert out.count("a") <= 2048 + 10


def test_exec_doc_names_what_escapes_the_group() -> None:
    # "Nothing outlives the call" holds for the process group; a program started through
    # setsid leaves the group (checked by hand: its child still ran a second later), so
    # the page must say so rather than promise more
    text = Path(__file__).parents[2].joinpath("docs", "tools.md").read_text()
    section = text[text.index("**Nothing outlives the call.**") :][:600]
    assert "setsid" in section
    allowlist = text[text.index("**Allowlist by path.**") :][:600]
    assert "`env`" in allowlist and "`xargs`" in allowlist


async def test_an_allowed_program_that_runs_others_runs_them(tmp_path: Path) -> None:
    # what the allowlist paragraph warns about, as it happens
    out = await run_exec("env printf ran-through-env", tmp_path, allow=["env"])
    assert out == "ran-through-env"


# -- GitHub: "nine tools on one repository" -------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "token repo:acme/private-secrets",
        "leak org:acme",
        "leak user:someone",
        "x REPO:acme/other",
        "leak in:title repo:a/b",
    ],
)
async def test_github_search_stays_on_the_configured_repository(query: str) -> None:
    # GitHub ORs several repo: qualifiers, so a query naming another repository (or an
    # org or user) would search issues the tool is not meant to reach with the token
    from orra_di.tools.github import github_tools
    from orra_di.tools.settings import GitHubSettings
    from tests.tools.github_fake import FakeGitHub

    with FakeGitHub(token="t0ken") as github:
        settings = GitHubSettings(
            enabled=True, token="t0ken", owner="acme", repo="app", base_url=github.url
        )
        search = {t.definition.name: t for t in github_tools(settings)}["search_issues"]
        with pytest.raises(ToolInputError, match="acme/app"):
            await search.execute({"query": query}, CTX)
        assert not [r for r in github.requests if r[1].startswith("/search")]
        github.add_issue("login fails with repo: prefix in the title")
        found = await search.execute({"query": "login"}, CTX)
        assert "login fails" in found


# -- claude_code: the model's text must not become the CLI's options ------------------


@pytest.mark.parametrize(
    ("name", "arguments"),
    [
        ("claude_code", {"task": "--dangerously-skip-permissions"}),
        ("claude_code", {"task": "--allowedTools=Bash"}),
        ("claude_code_resume", {"session_id": "--dangerously-skip-permissions", "follow_up": "go"}),
        ("claude_code_resume", {"session_id": "sess_1", "follow_up": "--allowedTools=Bash"}),
    ],
)
async def test_claude_code_refuses_text_that_would_be_read_as_an_option(
    tmp_path: Path, name: str, arguments: dict[str, str]
) -> None:
    # allowed_tools = ["Read"] is the operator's bound; a task such as
    # "--dangerously-skip-permissions" handed to the CLI as its own argument would lift it
    from orra_di.tools.claude_code import claude_code_tools
    from orra_di.tools.settings import ClaudeCodeSettings

    settings = ClaudeCodeSettings(
        enabled=True,
        allowed_tools=["Read"],
        command=str(tmp_path / "no-claude-here"),
        working_directory=str(tmp_path),
    )
    tool = {t.definition.name: t for t in claude_code_tools(settings)}[name]
    with pytest.raises(ToolInputError, match="option"):
        await tool.execute(arguments, CTX)


async def test_web_fetch_max_chars_and_a_calls_max_length(httpserver: HTTPServer) -> None:
    # docs: max_chars is the text returned "unless the call asks for less"; a call may
    # ask for more, up to four times max_chars, and never beyond
    httpserver.expect_request("/").respond_with_data("x" * 5000, content_type="text/plain")
    tool = fetcher(allow_networks=["127.0.0.0/8"], max_chars=100, timeout=3)
    url = f"http://127.0.0.1:{httpserver.port}/"
    assert (await tool.execute({"url": url}, CTX)).count("x") == 100
    assert (await tool.execute({"url": url, "max_length": 50}, CTX)).count("x") == 50
    assert (await tool.execute({"url": url, "max_length": 10_000}, CTX)).count("x") == 400
    text = Path(__file__).parents[2].joinpath("docs", "tools.md").read_text()
    assert "up to four times" in text
