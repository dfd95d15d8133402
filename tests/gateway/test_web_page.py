"""The web chat page in a real browser: Debian's Chromium driven by Playwright.

A live gateway (uvicorn on ``create_app(container)``, loopback, a free port) serves the
page and the API; the container runs a scripted model, a tool that lists files and one
that deletes them, whose calls need approval. The browser types messages, watches the
streamed answers and the tool calls, approves one call and denies another, reloads and
finds the history, and reopens the session from the list. A last test does the same
against a real ``orra-di serve`` process on its embedded defaults (the offline model).

No browser is downloaded: Playwright launches ``/usr/bin/chromium`` (``apt-get install
chromium``; ``.ci/run`` does it). Without Chromium or Playwright the tests skip, except
under CI (``CI`` set), where they fail.

``ORRA_WEB_CHAT_SCREENSHOT=docs/img/web-chat.png`` also saves the page mid-chat (the
picture in the README and docs/gateway.md).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dependency_injector import providers

import orra_di
from orra_di import AgentProfile, tool
from orra_di.containers import Container, lifespan
from orra_di.provider import CompletionRequest, CompletionResponse
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

CHROMIUM = os.environ.get("ORRA_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
WAIT_MS = 15_000  # a hang guard for a loaded machine (the whole suite runs beside), not a target
HOSTILE = '<img src=x onerror="document.body.dataset.pwned=1">'


def _need_browser() -> Any:
    """Playwright's sync API, or a skip (a failure under CI) saying what is missing."""
    reason = None
    try:
        from playwright import sync_api
    except ImportError:
        reason = 'Playwright is not installed: pip install -e ".[dev]"'
    if reason is None and not os.access(CHROMIUM, os.X_OK):
        reason = f"no Chromium at {CHROMIUM}: apt-get install -y chromium"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the browser test must run: {reason}")
        pytest.skip(reason)
    return sync_api


# -- the app under test ----------------------------------------------------------------------


@dataclass
class Files:
    """What the tools touch: a pretend folder."""

    names: list[str] = field(default_factory=lambda: ["q3.txt", "draft.txt"])
    deleted: list[str] = field(default_factory=list)


def scripted_model(request: CompletionRequest) -> CompletionResponse:
    """Lists files when asked what is there, deletes when asked to, then says what happened."""
    last = request.messages[-1]
    if last.tool_results:
        result = last.tool_results[0]
        if result.is_error:
            return reply(f"I did not delete it: {result.content} {HOSTILE}")
        if result.content.startswith("deleted"):
            return reply(f"Done, {result.content}.")
        return reply(f"The folder holds {result.content}.")
    said = last.content.lower()
    if "delete" in said:
        name = "q3.txt" if "q3" in said else "draft.txt"
        return tool_calls(call("delete_file", {"name": name}))
    return tool_calls(call("list_files", {}))


def make_container(files: Files) -> Container:
    @tool(name="list_files")
    def list_files() -> str:
        """List the files in the folder."""
        return ", ".join(n for n in files.names if n not in files.deleted)

    @tool(name="delete_file")
    def delete_file(name: str) -> str:
        """Delete a file from the folder."""
        files.deleted.append(name)
        return f"deleted {name}"

    container = Container()
    settings = load_settings(
        store={"url": "memory://"},
        agents=[
            AgentProfile(name="Atlas", personality="careful with files"),
            AgentProfile(name="Scout", personality="quick"),
        ],
        approval={"enabled": True, "tools": ["delete_file"], "timeout": 30},
    )
    container.settings.override(providers.Object(settings))
    container.llm.override(providers.Object(ScriptedProvider(scripted_model, chunk_size=6)))
    container.tool_factory.override(providers.Object(lambda profile: [list_files, delete_file]))
    return container


@pytest.fixture
def files() -> Files:
    return Files()


@contextmanager
def gateway(container: Container) -> Iterator[str]:
    """The gateway on a free loopback port, served by uvicorn in a thread; yields its URL."""
    import uvicorn

    from orra_di.gateway import create_app

    app = create_app(container)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))

    async def serve() -> None:
        async with lifespan(container):  # what `orra-di serve` does around the app
            await server.serve(sockets=[sock])

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = _need_browser()
    sync_api.expect.set_options(timeout=WAIT_MS)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            yield launched
        finally:
            launched.close()


@contextmanager
def open_page(browser: Any, url: str, width: int = 1100, height: int = 760) -> Iterator[Any]:
    """A fresh tab (its own sessionStorage) on ``url``; fails the test if the page raised."""
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        tab = context.new_page()
        tab.set_default_timeout(WAIT_MS)
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.goto(url)
        yield tab
        assert errors == [], f"the page raised: {errors}"
    finally:
        context.close()


def send(page: Any, text: str) -> None:
    """Type and send, once the page takes a message: while a run streams it is busy (Send
    disabled) and ignores Enter, as a user would see; on a loaded machine the last events
    of the previous run can come after the answer the test saw."""
    from playwright.sync_api import expect

    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")


# -- the tests ---------------------------------------------------------------------------------


def test_chat_stream_tools_approvals_and_history(browser: Any, files: Files) -> None:
    with gateway(make_container(files)) as url, open_page(browser, url) as page:
        chat_stream_tools_approvals_and_history(page, files)


def chat_stream_tools_approvals_and_history(page: Any, files: Files) -> None:
    from playwright.sync_api import expect

    # Agents come from GET /v1/agents; the default is preselected.
    agent = page.get_by_label("Agent")
    expect(agent).to_have_value("Atlas")
    expect(agent.locator("option")).to_have_text(["Atlas", "Scout"])

    # A streamed answer after a tool call that needs no approval.
    send(page, "What is in the folder?")
    listing = page.locator(".tool", has_text="list_files")
    expect(listing.locator(".result")).to_have_text("q3.txt, draft.txt")
    expect(listing.locator(".badge")).to_have_text("done")
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".who")).to_have_text("Atlas")
    expect(answer.locator(".text")).to_have_text("The folder holds q3.txt, draft.txt.")
    namespace = page.evaluate("decodeURIComponent(location.hash.slice('#session='.length))")
    assert namespace
    expect(page.get_by_role("heading", name=f"Session {namespace}")).to_be_visible()

    # A call that waits for a person: the page shows it with its arguments; approve it.
    send(page, "Please delete the draft")
    deletion = page.locator(".tool", has_text="delete_file")
    expect(deletion.locator(".badge")).to_have_text("waiting for approval")
    expect(deletion.locator(".args")).to_contain_text('"name": "draft.txt"')
    assert files.deleted == []  # nothing ran before the answer
    shot = os.environ.get("ORRA_WEB_CHAT_SCREENSHOT")
    if shot:
        page.screenshot(path=shot)
    deletion.get_by_role("button", name="Approve").click()
    expect(deletion.locator(".result")).to_have_text("deleted draft.txt")
    expect(deletion.locator(".approval")).to_have_text("Approved by gateway.")
    expect(page.locator(".msg.assistant .text").last).to_have_text("Done, deleted draft.txt.")
    assert files.deleted == ["draft.txt"]

    # Deny the next one, with a reason, after a reload in the middle of the wait: the
    # reopened page offers the pending call again, and follows the run to its end.
    send(page, "Now delete q3 as well")
    second = page.locator(".tool", has=page.locator(".args", has_text="q3.txt"))
    expect(second.get_by_role("button", name="Deny")).to_be_visible()
    page.reload()
    second.get_by_label("Reason for the decision").fill("keep the quarterly report")
    second.get_by_role("button", name="Deny").click()
    expect(second.locator(".result")).to_contain_text("keep the quarterly report")
    expect(second.locator(".badge")).to_have_text("failed")
    refusal = page.locator(".msg.assistant").last
    expect(refusal).to_contain_text("I did not delete it")
    expect(page.get_by_role("status")).to_have_text("The run has ended.")
    assert files.deleted == ["draft.txt"]
    # Model text is text: the markup shows as written and never becomes an element.
    expect(refusal).to_contain_text(HOSTILE)
    assert page.locator(".log img").count() == 0
    assert page.evaluate("document.body.dataset.pwned") is None

    # Reload: the page reopens the session from the store, tools and results included.
    page.reload()
    expect(page.locator(".msg.user .text")).to_have_text(
        ["What is in the folder?", "Please delete the draft", "Now delete q3 as well"]
    )
    expect(page.locator(".tool .result")).to_have_count(3)
    expect(page.locator(".tool", has_text="draft.txt").locator(".result").last).to_have_text(
        "deleted draft.txt"
    )
    expect(page.locator(".msg.assistant").last).to_contain_text("I did not delete it")

    # A new chat is empty; the session list reopens the old one.
    page.get_by_role("button", name="New chat").click()
    expect(page.locator(".msg")).to_have_count(0)
    page.get_by_role("navigation", name="Sessions").get_by_role("button", name=namespace).click()
    expect(page.locator(".msg.user")).to_have_count(3)


def test_a_server_with_keys_asks_for_one_and_the_tab_keeps_it(browser: Any, files: Files) -> None:
    """A narrow window on a server that wants a key: the page asks, a wrong key is refused,
    the right one is kept for the tab (sessionStorage) and scopes chats to its tenant."""
    from playwright.sync_api import expect

    from orra_di.gateway import hash_api_key

    key = "orra_test_web_page_key"
    container = make_container(files)
    web_key = {"name": "web", "digest": hash_api_key(key), "tenant": "acme"}
    keys = load_settings(gateway={"api_keys": [web_key]}).gateway
    settings = container.settings().model_copy(update={"gateway": keys})
    container.settings.override(providers.Object(settings))
    with gateway(container) as url, open_page(browser, url, width=390, height=780) as page:
        status = page.get_by_role("status")
        expect(status).to_contain_text("needs an API key")
        key_box = page.get_by_label("Key (kept in this tab only)")
        expect(key_box).to_be_visible()  # the panel opened itself, even on a narrow screen

        key_box.fill("not the key")
        page.get_by_role("button", name="Use key").click()
        expect(status).to_contain_text("needs an API key")
        expect(page.get_by_label("Agent").locator("option")).to_have_count(0)

        key_box.fill(key)
        page.get_by_role("button", name="Use key").click()
        expect(page.locator("#whoami")).to_have_text("Tenant: acme (key web)")
        expect(page.get_by_label("Agent")).to_have_value("Atlas")

        sessions = page.get_by_role("button", name="Sessions")
        expect(sessions).to_have_attribute("aria-expanded", "true")
        sessions.click()
        expect(sessions).to_have_attribute("aria-expanded", "false")
        expect(key_box).to_be_hidden()

        send(page, "What is in the folder?")
        expect(page.locator(".msg.assistant .text")).to_have_text(
            "The folder holds q3.txt, draft.txt."
        )
        namespace = page.evaluate("decodeURIComponent(location.hash.slice('#session='.length))")
        assert namespace.startswith("acme:")

        page.reload()  # the key stays with the tab: no question, the history comes back
        expect(page.locator(".msg.user .text")).to_have_text(["What is in the folder?"])
        expect(status).not_to_contain_text("needs an API key")

        # Forgetting the key hides what it could see.
        page.get_by_role("button", name="Sessions").click()
        page.get_by_text("API key").click()
        page.get_by_role("button", name="Forget").click()
        expect(status).to_contain_text("needs an API key")
        expect(page.locator(".msg")).to_have_count(0)
        expect(page.locator("#sessions li")).to_have_count(0)
        assert page.evaluate("sessionStorage.length") == 0


@contextmanager
def orra_di_serve(tmp_path: Path, **env_extra: str) -> Iterator[str]:
    """A real ``orra-di serve`` on a free loopback port; yields its URL, then SIGTERMs it."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ORRA_")}
    env.update(
        PYTHONPATH=str(Path(orra_di.__file__).resolve().parent.parent),
        ORRA_STORE__URL=f"sqlite:///{tmp_path / 'sessions.db'}",
        ORRA_GATEWAY__PORT="0",
        NO_COLOR="1",
        COLUMNS="250",
        **env_extra,
    )
    log = tmp_path / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", "from orra_di.cli import main; main()", "serve"],
            env=env, cwd=tmp_path, stdout=sink, stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while (found := re.search(r"listening on (http://\S+)", log.read_text())) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"orra-di serve did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield found.group(1) + "/"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_page_on_orra_di_serve_with_the_offline_model(browser: Any, tmp_path: Path) -> None:
    """`orra-di serve` with no LLM configured: the offline model sends arithmetic to
    calculate, which waits for approval, and a question about the time to current_time,
    which does not."""
    from playwright.sync_api import expect

    approvals = {"ORRA_APPROVAL__ENABLED": "true", "ORRA_APPROVAL__TOOLS": '["calculate"]'}
    with orra_di_serve(tmp_path, **approvals) as url, open_page(browser, url) as page:
        send(page, "What is 6*7?")
        calculate = page.locator(".tool", has_text="calculate")
        expect(calculate.locator(".badge")).to_have_text("waiting for approval")
        calculate.get_by_role("button", name="Approve").click()
        expect(calculate.locator(".badge")).to_have_text("done")
        # The answer quotes the tool result the page showed on the card.
        expect(calculate.locator(".result")).to_have_text("42")
        answer = page.locator(".msg.assistant .text").last
        expect(answer).to_contain_text("6*7 = 42")
        expect(answer).to_contain_text("This is the offline model")

        send(page, "What time is it in Europe/Paris?")
        clock = page.locator(".tool", has_text="current_time")
        expect(clock.locator(".badge")).to_have_text("done")  # no approval asked
        expect(page.locator(".msg.assistant .text")).to_have_count(2)

        page.reload()
        expect(page.locator(".msg.user .text")).to_have_text(
            ["What is 6*7?", "What time is it in Europe/Paris?"]
        )
        expect(page.locator(".tool .result")).to_have_count(2)
        expect(page.locator(".msg.assistant .text").first).to_contain_text("6*7 = 42")
