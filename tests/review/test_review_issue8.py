"""An outside review of issue 8: one behaviour test per item, from the public API,
the ``orra-di`` command run as a subprocess, and environment variables.

Each test replays the reproduction the issue gives for its item (numbers in the
test names) and asserts on what a user would see: what a store holds, what the
model was sent, what the command printed. They are written from the issue's text
and the docs, not from the implementation, so they catch a regression wherever
the mechanism moves. PostgreSQL and Redis cases skip when their server is absent,
except under ``CI``.
"""

from __future__ import annotations

import json
import os
import pty
import re
import secrets
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from services import POSTGRES_URL, REDIS_URL, require_postgres, require_redis

from orra_di import (
    CharEstimator,
    ContextBudget,
    Hook,
    InMemoryStore,
    Message,
    Namespace,
    NamespaceError,
    PolicyRegistry,
    Runtime,
    RuntimeConfig,
    StoreError,
    ToolCall,
    ToolCallDenied,
    ToolPolicy,
    ToolResult,
    tool,
)
from orra_di.provider import CompletionRequest, StreamDone, StreamEvent, TextDelta
from orra_di.store import SessionStore
from orra_di.stores.file import FileStore
from orra_di.stores.sqlite import SQLiteStore
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

ROOT = Path(__file__).resolve().parents[2]
WHO = Namespace("acme", "alice")

# -- stores: objects of one kind on one fresh storage ----------------------------------

OpenStore = Callable[..., SessionStore]


@pytest.fixture
async def shared(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """``open(**options)`` makes another store object on this test's storage (a second
    object stands for a second process); every object is closed after the test."""
    kind: str = request.param
    token = secrets.token_hex(5)
    opened: list[SessionStore] = []
    cleanup: list[Callable[[], Any]] = []

    def make(**options: Any) -> SessionStore:
        if kind == "sqlite":
            store: SessionStore = SQLiteStore(tmp_path / "s.sqlite3", **options)
        elif kind == "file":
            options.pop("lease_seconds", None)  # file locks die with their process
            options.pop("session_ttl", None)
            store = FileStore(tmp_path / "files", **options)
        elif kind == "memory":
            store = memory
        elif kind == "postgres":
            from orra_di.stores.postgres import PostgresStore

            options.pop("session_ttl", None)
            store = PostgresStore(POSTGRES_URL, schema=f"review8_{token}", **options)
        else:
            from orra_di.stores.redis import RedisStore

            store = RedisStore(REDIS_URL, key_prefix=f"review8:{token}:", **options)
        opened.append(store)
        return store

    memory = InMemoryStore()
    if kind == "postgres":
        require_postgres()
        import psycopg

        def drop() -> None:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "review8_{token}" CASCADE')

        cleanup.append(drop)
    elif kind == "redis":
        require_redis()
        import redis

        def flush() -> None:
            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(f"review8:{token}:*"):
                client.delete(key)
            client.close()

        cleanup.append(flush)
    yield make
    for store in {id(s): s for s in opened}.values():
        await store.aclose()
    for step in cleanup:
        step()


SERVICES = [
    pytest.param("postgres", marks=pytest.mark.service),
    pytest.param("redis", marks=pytest.mark.service),
]
LEASED = ["sqlite", *SERVICES]
DURABLE = ["file", *LEASED]
ALL = ["memory", *DURABLE]


def _texts(messages: list[Message]) -> list[str]:
    return [m.content for m in messages]


# -- 1. a stalled holder's session is never pruned from under it ------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("shared", DURABLE, indirect=True)
async def test_01_stalled_holder_keeps_its_history_through_a_prune(shared: OpenStore) -> None:
    """The holder locks, appends, stalls past its lease; another process prunes idle
    sessions; the holder's next append must not make a session with only the new message."""
    holder, other = shared(lease_seconds=0.3), shared(lease_seconds=0.3)
    ns = Namespace("prune", secrets.token_hex(3))
    refused = False
    async with holder.lock(ns):
        await holder.append(ns, [Message.user("first")])
        await anyio.sleep(0.8)  # past the lease and past the idle time below
        await other.prune(0.2)
        try:
            await holder.append(ns, [Message.assistant("second")])
        except StoreError:
            refused = True
    stored = await other.load(ns)
    kept = _texts(stored.messages) if stored is not None else []
    assert "first" in kept or (refused and stored is None), kept
    assert kept != ["second"], "the run continued on a history the store no longer has"
    if not refused:
        assert kept == ["first", "second"]


# -- 2. Redis TTL never cuts a live run ----------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("shared", [SERVICES[1]], indirect=True)
async def test_02_redis_session_ttl_does_not_expire_a_session_under_a_lease(
    shared: OpenStore,
) -> None:
    store = shared(session_ttl=1.0, lease_seconds=0.6)

    @tool
    async def slow() -> str:
        """Takes longer than the session TTL."""
        await anyio.sleep(2.2)
        return "done slowly"

    model = ScriptedProvider([tool_calls(call("slow")), reply("answer")])
    runtime = Runtime(model, store, tools=[slow])
    ns = Namespace("ttl", secrets.token_hex(3))
    await runtime.run(ns, "earlier turn")  # the tool outlives the TTL twice over
    stored = await store.load(ns)
    assert stored is not None
    roles = [(m.role.value, bool(m.tool_calls), bool(m.tool_results)) for m in stored.messages]
    assert roles == [
        ("user", False, False),
        ("assistant", True, False),
        ("user", False, True),
        ("assistant", False, False),
    ]
    assert stored.messages[0].content == "earlier turn"


# -- 3. lone surrogates in tool output and in tool arguments ---------------------------

LONE = "report-\udcff.txt"  # what os.fsdecode gives for a non-UTF-8 file name


def test_03_char_estimator_is_total_over_any_str() -> None:
    assert CharEstimator().count_tokens("\ud83d") >= 1
    assert CharEstimator().count_tokens(LONE) >= len("report-.txt") // 4


@pytest.mark.anyio
@pytest.mark.parametrize("shared", ALL, indirect=True)
async def test_03_lone_surrogates_in_tool_output_and_arguments(shared: OpenStore) -> None:
    store = shared()

    @tool
    def list_files(t: str) -> str:
        """Lists files (one name is not valid UTF-8)."""
        return f"{LONE} for {t}"

    model = ScriptedProvider(
        [tool_calls(call("list_files", {"t": "\ud83d"})), reply("found \udcff one")]
    )
    runtime = Runtime(model, store, tools=[list_files])
    ns = Namespace("surrogates", secrets.token_hex(3))
    result = await runtime.run(ns, "what files?")
    (listed,) = result.turns[0].tool_results
    assert not listed.is_error, listed.content
    assert "report-" in listed.content and ".txt" in listed.content
    stored = await store.load(ns)
    assert stored is not None and len(stored.messages) == 4
    for message in stored.messages:  # what is kept is valid Unicode everywhere
        text = json.dumps(message.model_dump(mode="json"), ensure_ascii=False)
        text.encode("utf-8")


# -- 4. the context budget after a rewrite with store.save -----------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("shared", ALL, indirect=True)
async def test_04_context_budget_holds_after_store_save_rewrite(shared: OpenStore) -> None:
    store = shared()
    model = ScriptedProvider(["a1", "a2", "a3"])
    budget = ContextBudget(max_tokens=300, reserved_for_output=0)
    runtime = Runtime(model, store, config=RuntimeConfig(context_budget=budget))
    ns = Namespace("budget", secrets.token_hex(3))
    await runtime.run(ns, "q1")
    await runtime.run(ns, "q2")
    session = await store.load(ns)
    assert session is not None and _texts(session.messages) == ["q1", "a1", "q2", "a2"]
    # An earlier answer grows to ~2,000 tokens; the last message stays equal.
    session.messages[1] = Message.assistant("x" * 8000)
    await store.save(session)
    await runtime.run(ns, "q3")
    sent = model.requests[-1].messages
    estimate = CharEstimator()
    total = sum(estimate.count_tokens(m.content) for m in sent)
    assert total <= 300, f"{total} tokens sent against a 300-token budget"
    assert _texts(sent)[-1] == "q3"


# -- 5. every valid namespace is storable everywhere ----------------------------------

LONG_NAMESPACES = [
    Namespace("cjk", "漢" * 28),
    Namespace("emoji", "😀" * 21),
    Namespace("big", *["😀" * 100] * 10),  # ~1,000 characters, ~4,000 UTF-8 bytes
]


@pytest.mark.anyio
@pytest.mark.parametrize("shared", ALL, indirect=True)
async def test_05_every_namespace_is_storable_on_every_store(shared: OpenStore) -> None:
    store = shared()
    for ns in LONG_NAMESPACES:
        assert len(ns.key) <= 1024
        await store.append(ns, [Message.user(f"hi {ns.segments[0]}")])
        loaded = await store.load(ns)
        assert loaded is not None and loaded.namespace == ns
        assert _texts(loaded.messages) == [f"hi {ns.segments[0]}"]
        assert ns in await store.list(ns.segments[0])
    assert await store.delete_tree("big") == 1
    assert await store.delete(LONG_NAMESPACES[0])


# -- the CLI, run as a user runs it -----------------------------------------------------

OFFLINE = "You said: "  # the offline model, the CLI's default
TEST_MODEL = "(test model, no LLM configured) You said: "  # llm.kind "test": calls every tool
# The console script's way: the working directory is NOT on sys.path (-P), so an
# application module beside the user is found only if the CLI looks there itself.
CLI = [sys.executable, "-P", "-c", "import sys; from orra_di.cli import main; main()"]


TEST = {"ORRA_LLM__KIND": "test"}


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """A clean user: no ORRA_* or vendor variables, a home of its own, this tree first."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ORRA_", "ANTHROPIC_", "OPENAI_")) and k != "PYTHONPATH"
    }
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        PYTHONPATH=str(ROOT),
        COLUMNS="200",
        NO_COLOR="1",
        PYTHONWARNINGS="",
    )
    env.update(extra)
    return env


def orra(
    home: Path,
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    input: str | None = None,
    prelude: str = "",
) -> subprocess.CompletedProcess[str]:
    command = CLI if not prelude else [*CLI[:3], prelude + "; " + CLI[3]]
    return subprocess.run(
        [*command, *args],
        env=cli_env(home, **(env or {})),
        cwd=cwd or home,
        input=input,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home").mkdir()
    return tmp_path / "home"


# -- 6 and 25: secrets in a store URL never shown ----------------------------------------


@pytest.mark.service
@pytest.mark.parametrize(
    "password", ["pa/ss:s3cretWord", "pa%2Fss%3As3cretWord", "s3cretWord?x"], ids=str
)
def test_06_postgres_password_never_printed_by_sessions_list(home: Path, password: str) -> None:
    require_postgres()
    for host in ("127.0.0.1:5432", "127.0.0.1:1"):  # one that answers, one that does not
        url = f"postgresql://postgres:{password}@{host}/test"
        done = orra(home, "sessions", "list", env={"ORRA_STORE__URL": url})
        shown = done.stdout + done.stderr
        assert "s3cret" not in shown, shown
        assert "Traceback" not in shown
        if host.endswith(":1"):
            assert done.returncode == 1 and "127.0.0.1" in done.stderr, shown


@pytest.mark.service
def test_25_offline_notice_masks_the_store_password(home: Path) -> None:
    require_postgres()
    url = "postgresql://postgres:Hunter2secret@127.0.0.1:5432/test?options=-csearch_path%3Dpublic"
    done = orra(home, "ask", "hi", env={"ORRA_STORE__URL": url, "ORRA_STORE__SESSION_TTL": "60"})
    assert done.returncode == 0, done.stderr
    assert "No LLM configured" in done.stderr
    assert "Hunter2" not in done.stdout + done.stderr
    assert "postgresql://postgres:***@127.0.0.1:5432/test" in done.stderr


def test_25_secret_masking_edges() -> None:
    from orra_di.redaction import mask_url, redact

    assert "abcdefgh" not in redact("the key abcdefgh was refused", ["abcdefgh"])
    for url in (
        "redis://h:6379/0?Password=Sup3rSecret",
        "https://api.example.com/v1?API_KEY=Sup3rSecret&x=1",
        "postgresql://h/db?PASSWORD=Sup3rSecret",
        "https://x.example/?Api-Key=Sup3rSecret",
    ):
        assert "Sup3rSecret" not in mask_url(url), url


def test_25_config_masks_an_eight_character_key(home: Path) -> None:
    done = orra(home, "config", env={"OPENAI_API_KEY": "Zq8Kx2Pw"})
    assert done.returncode == 0, done.stderr
    assert "Zq8Kx2Pw" not in done.stdout + done.stderr


@pytest.mark.anyio
async def test_25_usage_json_counts_input_and_output_apart_and_zeros(home: Path) -> None:
    from orra_di.provider import Usage
    from orra_di.usage.ledger import UsageLedger
    from orra_di.usage.stores import usage_backend_for

    store = SQLiteStore(home / "u.sqlite3")
    ledger = UsageLedger(usage_backend_for(store))
    await ledger.record("acme:alice", Usage(input_tokens=11, output_tokens=7), model_calls=1)
    await store.aclose()
    env = {"ORRA_STORE__URL": f"sqlite:///{home / 'u.sqlite3'}"}
    done = orra(home, "usage", "acme", "--json", env=env)
    assert done.returncode == 0, done.stderr
    usage = json.loads(done.stdout)["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (11, 7)
    assert usage["total_tokens"] == 18 and usage["model_calls"] == 1
    zero = json.loads(orra(home, "usage", "nobody", "--json", env=env).stdout)["usage"]
    assert zero["input_tokens"] == zero["output_tokens"] == zero["model_calls"] == 0


# -- 8: --container with an application module in the working directory ------------------

APP = '''
from dependency_injector import containers, providers

from orra_di import tool
from orra_di.containers import Container


@tool
def shout(word: str) -> str:
    """Shouts a word."""
    return word.upper() + "!!"


def app_tools(profile):
    return [shout]


@containers.copy(Container)
class AppContainer(Container):
    tool_factory = providers.Object(app_tools)


class PlainSubclass(Container):
    pass


def make():
    made = Container()
    made.tool_factory.override(providers.Object(app_tools))
    return made


instance = make()
'''


@pytest.mark.parametrize(
    ("args", "env", "shouts"),
    [
        (["--container", "reviewapp:AppContainer"], {}, True),
        ([], {"ORRA_CONTAINER": "reviewapp:make"}, True),
        (["--container", "reviewapp:instance"], {}, True),
        (["--container", "reviewapp:PlainSubclass"], {}, False),
    ],
)
def test_08_container_from_an_app_module_in_the_cwd(
    tmp_path: Path, home: Path, args: list[str], env: dict[str, str], shouts: bool
) -> None:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "reviewapp.py").write_text(APP, encoding="utf-8")
    # The test model calls every tool it is offered, the app's among them.
    done = orra(home, *args, "ask", "--json", "hello", env={**env, **TEST}, cwd=app_dir)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)["answer"]
    assert answer.startswith(TEST_MODEL + "hello")
    assert ('"shout": "A!!"' in answer) is shouts, answer


# -- 9: model text printed as text --------------------------------------------------------

TRICKY = "C:\\temp\\ and [bold]not bold[/bold] :thumbs_up:"


def test_09_backslash_and_markup_printed_verbatim(home: Path) -> None:
    asked = orra(home, "ask", TRICKY, "-n", "win:x")
    assert asked.returncode == 0, asked.stderr
    assert (OFFLINE + TRICKY) in asked.stdout
    chat = orra(home, "chat", "-n", "win:y", input=TRICKY + "\n/quit\n")
    assert chat.returncode == 0, chat.stderr
    assert (OFFLINE + TRICKY) in chat.stdout and "C:\\temp\\\\" not in chat.stdout
    for ns in ("win:x", "win:y"):
        shown = orra(home, "sessions", "show", ns).stdout
        assert f"user: {TRICKY}\n" in shown
        assert "C:\\temp\\\\" not in shown and "👍" not in shown


# -- 10: Ctrl-C in chat ------------------------------------------------------------------

SLOW_TOOL_APP = '''
import anyio
from dependency_injector import providers

from orra_di import tool
from orra_di.containers import Container


@tool
async def ponder(topic: str) -> str:
    """Thinks for a long time when asked to."""
    await anyio.sleep(120)
    return "pondered"


def make():
    made = Container()
    made.tool_factory.override(providers.Object(lambda profile: [ponder]))
    return made
'''


def _default_sigint() -> None:
    """In the child before exec: SIGINT handled by default, not inherited as ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Pty:
    """A command on a pseudo-terminal, read with a deadline that only turns a hang into
    a failure."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            args,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            preexec_fn=_default_sigint,  # as in a terminal, even if pytest runs in the background
        )
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, deadline: float = 60) -> str:
        end = time.monotonic() + deadline
        while text not in self.seen:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} in {self.seen!r}")
            if select.select([self.master], [], [], left)[0]:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"ended without {text!r}: {self.seen!r}")
                self.seen += chunk.decode(errors="replace")
        before, _, self.seen = self.seen.partition(text)
        return before

    def send(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)


def test_10_ctrl_c_mid_answer_returns_to_the_prompt_and_at_the_prompt_leaves(
    tmp_path: Path, home: Path
) -> None:
    (home / "slowapp.py").write_text(SLOW_TOOL_APP, encoding="utf-8")
    term = Pty(
        [*CLI, "--container", "slowapp:make", "chat", "-n", "pty:t"], cli_env(home, **TEST), home
    )
    try:
        term.expect("you> ")
        term.send("think hard")
        term.expect("→ ponder")
        time.sleep(0.5)  # let the tool start
        term.proc.send_signal(signal.SIGINT)
        term.expect("(interrupted)")
        term.expect("you> ")
        time.sleep(0.5)  # input() is reading again
        term.proc.send_signal(signal.SIGINT)  # at an empty prompt: leave now, no Enter
        code = term.proc.wait(timeout=20)
        term.seen += _drain(term.master)
    finally:
        term.close()
    assert code == 0
    assert "Traceback" not in term.seen and "Aborted" not in term.seen
    shown = orra(home, "sessions", "show", "pty:t").stdout
    assert "user: think hard" in shown
    assert "interrupted before the tool finished" in shown  # the call is answered


def _drain(fd: int) -> str:
    out = b""
    while select.select([fd], [], [], 0.2)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


def test_10_the_line_after_an_interrupted_answer_is_not_swallowed(home: Path) -> None:
    (home / "slowapp.py").write_text(SLOW_TOOL_APP, encoding="utf-8")
    term = Pty(
        [*CLI, "--container", "slowapp:make", "chat", "-n", "pty:u"], cli_env(home, **TEST), home
    )
    try:
        term.expect("you> ")
        term.send("think hard")
        term.expect("→ ponder")
        time.sleep(0.5)
        term.proc.send_signal(signal.SIGINT)
        term.expect("you> ")
        term.send("/quit")
        assert term.proc.wait(timeout=20) == 0
    finally:
        term.close()


# -- 11: a base-URL-only setup uses the server's model, and says so -----------------------


def _openai_compatible(httpserver: Any, models: list[str], seen: list[str]) -> str:
    from werkzeug import Request, Response

    httpserver.expect_request("/v1/models", method="GET").respond_with_json(
        {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "x"} for m in models]}
    )

    def chat(request: Request) -> Response:
        body = request.get_json()
        seen.append(body["model"])
        answer = {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "hi from the server"},
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        }
        if body.get("stream"):
            raise AssertionError("ask does not stream")
        return Response(json.dumps(answer), content_type="application/json")

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(chat)
    return httpserver.url_for("/v1")


def test_11_base_url_only_asks_the_server_for_its_one_model(home: Path, httpserver: Any) -> None:
    seen: list[str] = []
    env = {"ORRA_LLM__BASE_URL": _openai_compatible(httpserver, ["llama-review"], seen)}
    asked = orra(home, "ask", "hello", env=env)
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.strip() == "hi from the server"
    assert seen == ["llama-review"]
    config = orra(home, "config", env=env).stdout
    (kind,) = [line for line in config.splitlines() if " llm.kind " in f" {line} "]
    (model,) = [line for line in config.splitlines() if " llm.model " in f" {line} "]
    assert "openai" in kind and "ORRA_LLM__BASE_URL" in kind, kind
    assert "llama-review" in model and "null" not in model, model
    agents = orra(home, "agents", env=env).stdout
    assert "llama-review" in agents


def test_11_base_url_with_several_models_names_ORRA_LLM__MODEL(home: Path, httpserver: Any) -> None:
    seen: list[str] = []
    env = {"ORRA_LLM__BASE_URL": _openai_compatible(httpserver, ["a-model", "b-model"], seen)}
    asked = orra(home, "ask", "hello", env=env)
    assert asked.returncode == 1
    assert "ORRA_LLM__MODEL" in asked.stderr and "Traceback" not in asked.stderr
    assert seen == []  # nothing was sent naming a model the server may not have


# -- 12: errors name what the user sets --------------------------------------------------


def test_12_kind_openai_without_a_key_names_the_variable(home: Path) -> None:
    done = orra(home, "ask", "hi", env={"ORRA_LLM__KIND": "openai"})
    assert done.returncode == 1
    assert "OPENAI_API_KEY" in done.stderr, done.stderr
    assert "pass api_key" not in done.stderr and "Traceback" not in done.stderr


def test_12_unreachable_server_is_named_without_credentials(home: Path) -> None:
    env = {
        "ORRA_LLM__BASE_URL": "http://bob:Pw4secretX@127.0.0.1:9/v1",
        "ORRA_LLM__MODEL": "m",
        "ORRA_LLM__MAX_RETRIES": "0",
    }
    done = orra(home, "ask", "hi", env=env)
    assert done.returncode == 1
    assert "127.0.0.1:9" in done.stderr, done.stderr
    assert "Pw4secretX" not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("variable", "meant"),
    [
        ("ORRA_AGENT", "ORRA_AGENTS"),
        ("ORRA_LLM_MODEL", "ORRA_LLM__MODEL"),
        ("ORRA_TOOL", "ORRA_TOOLS"),
    ],
)
def test_12_misspelt_variable_is_warned_with_the_one_meant(
    home: Path, variable: str, meant: str
) -> None:
    done = orra(home, "agents", env={variable: '[{"name": "X"}]'})
    assert done.returncode == 0, done.stderr
    (warning,) = [line for line in done.stderr.splitlines() if variable in line]
    assert warning.startswith("warning:") and meant in warning


def test_12_unknown_mention_is_said_and_agent_names_keep_their_spelling(home: Path) -> None:
    env = {"ORRA_AGENTS": '[{"name": "Atlas"}, {"name": "CodeBot"}]'}
    done = orra(home, "ask", "--json", "@Nobody hello", env=env)
    assert done.returncode == 0, done.stderr
    assert "Nobody" in done.stderr and "Atlas" in done.stderr
    assert json.loads(done.stdout)["agent"] == "Atlas"
    addressed = json.loads(orra(home, "ask", "--json", "-a", "codebot", "hi", env=env).stdout)
    assert addressed["agent"] == "CodeBot"
    mentioned = json.loads(orra(home, "ask", "--json", "@codebot hi", env=env).stdout)
    assert mentioned["agent"] == "CodeBot"
    chat = orra(home, "chat", input="@Nobody hi\n/quit\n", env=env)
    assert "no agent is named Nobody" in chat.stderr
    assert "CodeBot" in orra(home, "agents", env=env).stdout


# -- 13: a missing extra says how to add it, from PyPI and from a checkout ----------------


@pytest.mark.parametrize(
    ("blocked", "env", "extra"),
    [
        ("openai", {"OPENAI_API_KEY": "sk-review-key-123456"}, "openai"),
        ("anthropic", {"ANTHROPIC_API_KEY": "sk-ant-review-123456"}, "anthropic"),
        ("psycopg", {"ORRA_STORE__URL": "postgresql://u@127.0.0.1:1/db"}, "postgres"),
        ("redis", {"ORRA_STORE__URL": "redis://127.0.0.1:1/0"}, "redis"),
    ],
)
def test_13_missing_extra_hint_gives_both_forms(
    home: Path, blocked: str, env: dict[str, str], extra: str
) -> None:
    prelude = f"import sys; sys.modules[{blocked!r}] = None"
    done = orra(home, "ask", "hi", env=env, prelude=prelude)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f'pip install "orra-di[{extra}]"' in done.stderr, done.stderr
    assert f'pip install -e ".[{extra}]"' in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


def test_13_readme_says_how_to_add_a_vendor_sdk_from_a_checkout() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'pip install -q -e ".[anthropic]"' in readme or 'pip install -e ".[anthropic]"' in readme


# -- 14: start-up imports only what the command needs ------------------------------------

HEAVY = (
    "dependency_injector",
    "fastapi",
    "starlette",
    "openai",
    "anthropic",
    "httpx",
    "psycopg",
    "redis",
    "opentelemetry",
    "prometheus_client",
    "pydantic_settings",
    "orra_di.containers",
    "orra_di.runtime",
    "orra_di.approvals.hook",
    "orra_di.approvals.stores",
    "orra_di.usage.ledger",
    "orra_di.usage.stores",
    "orra_di.projects.manager",
    "orra_di.projects.stores",
    "orra_di.plugins.registry",
    "orra_di.observability",
    "orra_di.voice.openai",
)
OFFLINE_ASK_NEVER = (
    "fastapi",
    "starlette",
    "openai",
    "anthropic",
    "psycopg",
    "redis",
    "opentelemetry",
    "prometheus_client",
    "orra_di.providers.openai",
    "orra_di.providers.anthropic",
    "orra_di.voice.openai",
    # Capabilities that are off by default load nothing of theirs.
    "orra_di.approvals.hook",
    "orra_di.approvals.stores",
    "orra_di.approvals.model",
    "orra_di.observability.metrics",
    "orra_di.observability.otel",
    "orra_di.observability.prometheus",
)


def _imported(home: Path, *args: str) -> set[str]:
    """The modules loaded once the command has run (``sys.modules`` at exit: ``-X
    importtime`` does not see modules loaded with ``importlib.import_module``)."""
    report = "import atexit, sys; atexit.register(lambda: print('MODULES', *sys.modules))"
    done = orra(home, *args, prelude=report)
    assert done.returncode == 0, done.stderr[-2000:]
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("MODULES ")]
    return set(line.split()[1:])


def _loaded(names: set[str], banned: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if any(n == b or n.startswith(b + ".") for b in banned))


def test_14_help_imports_no_sdk_container_or_capability(home: Path) -> None:
    names = _imported(home, "--help")
    assert "typer" in names
    assert _loaded(names, HEAVY) == []


def test_14_offline_ask_imports_no_vendor_sdk_nor_other_verbs(home: Path) -> None:
    names = _imported(home, "ask", "hi")
    assert "orra_di.runtime" in names
    assert _loaded(names, OFFLINE_ASK_NEVER) == []


# -- 7: SQLite waiters are served in about arrival order ---------------------------------


def test_07_sqlite_processes_on_one_session_alternate(tmp_path: Path) -> None:
    import itertools
    import multiprocessing

    from . import _workers

    url = f"sqlite:///{tmp_path / 'fair.sqlite3'}"
    count, turns = 3, 8
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Barrier(count)
    # A finite busy_timeout that several turns fit in, but not everyone else's 8.
    procs = [
        spawn.Process(target=_workers.take_turns, args=(url, "fair:one", w, turns, start, 20.0))
        for w in range(count)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(180)
    codes = [p.exitcode for p in procs]
    for p in procs:
        if p.exitcode is None:
            p.kill()
    assert codes == [0] * count, codes

    async def order() -> list[str]:
        store = SQLiteStore(tmp_path / "fair.sqlite3")
        try:
            loaded = await store.load("fair:one")
        finally:
            await store.aclose()
        assert loaded is not None
        return [m.content.partition("-")[0] for m in loaded.messages if m.role.value == "user"]

    ran = anyio.run(order)
    assert sorted(ran) == sorted(f"w{w}" for w in range(count) for _ in range(turns))
    # While all were running, nobody ran many turns in a row.
    first_all = max(ran.index(f"w{w}") for w in range(count))
    last_all = min(len(ran) - ran[::-1].index(f"w{w}") for w in range(count))
    streaks = [len(list(g)) for _, g in itertools.groupby(ran[first_all:last_all])]
    assert not streaks or max(streaks) <= 3, ran


# -- 15: a namespace's key wherever a namespace is taken ---------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("shared", ALL, indirect=True)
async def test_15_store_methods_take_keys(shared: OpenStore) -> None:
    store = shared()
    await store.append("k:a", [Message.user("1"), Message.assistant("2")])
    await store.append("k:a:b", [Message.user("3")])
    async with store.lock("k:a", timeout=5):
        await store.append("k:a", [Message.user("4")])
    loaded = await store.load("k:a")
    assert loaded is not None and loaded.namespace == Namespace("k", "a")
    assert await store.list("k") == [Namespace("k", "a"), Namespace("k", "a", "b")]
    assert await store.trim("k:a", 1) >= 1
    assert await store.delete("k:a:b")
    assert await store.delete_tree("k") == 1
    for bad in ("", "a::b", "a:", ":a"):
        with pytest.raises(NamespaceError):
            await store.load(bad)


@pytest.mark.anyio
async def test_15_runtime_policies_and_runtime_map_take_keys() -> None:
    from dependency_injector import providers

    from orra_di.containers import Container
    from orra_di.settings import load_settings

    @tool
    def secret_tool() -> str:
        """Must not run for viewers."""
        return "ran"

    policies = PolicyRegistry()
    policies.set_policy("acme:viewers", ToolPolicy.deny_list(["secret_tool"]))
    assert not policies.is_allowed("acme:viewers:bob", "secret_tool")
    assert policies.resolve("acme:viewers:bob") == policies.resolve(Namespace("acme", "viewers"))
    model = ScriptedProvider([tool_calls(call("secret_tool")), reply("ok"), "x"])
    runtime = Runtime(model, InMemoryStore(), tools=[secret_tool], policies=policies)
    result = await runtime.run("acme:viewers:bob", "hi")
    (refused,) = result.turns[0].tool_results
    assert refused.is_error and refused.content != "ran"
    async with runtime.run_streaming("acme:viewers:bob", "again") as events:
        async for _ in events:
            pass
    with pytest.raises(NamespaceError):
        await runtime.run("acme::bob", "hi")

    container = Container()
    container.settings.override(providers.Object(load_settings(store={"url": "memory://"})))
    container.llm.override(providers.Object(ScriptedProvider(["mapped"])))
    answer = await container.runtimes()["atlas"].run("shop:carol", "hi")
    assert answer.final_message.content == "mapped"
    assert await container.store().list("shop") == [Namespace("shop", "carol")]


def test_15_namespace_relations_take_keys() -> None:
    acme = Namespace("acme")
    assert acme.contains("acme:alice")
    assert acme.is_ancestor_of("acme:alice")
    assert Namespace("acme", "alice").is_descendant_of("acme")
    assert not acme.contains("acmeother")
    with pytest.raises(NamespaceError):
        acme.contains("acme::x")


def test_15_capability_helpers_take_keys() -> None:
    from orra_di.approvals.model import ApprovalRecord
    from orra_di.projects import project_id_of

    assert project_id_of("project:acme:user:bob") == "acme"
    wipe_call = ToolCall(id="c1", name="wipe", arguments={})
    record = ApprovalRecord.for_call("acme:alice", wipe_call, timeout=5)
    assert record.namespace == "acme:alice" and record.binds("acme:alice", wipe_call)


# -- 16 and 21: hooks and the policy around a tool call -----------------------------------


class Recorder(Hook):
    def __init__(self) -> None:
        self.before: list[str] = []
        self.after: list[tuple[str, bool, str]] = []

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        self.before.append(call.name)
        return None

    async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult | None:
        self.after.append((call.name, result.is_error, result.content))
        return None


class Denier(Hook):
    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        if call.name == "wipe":
            raise ToolCallDenied("wiping needs a manager")
        return None


class Renamer(Hook):
    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        return call.model_copy(update={"name": "wipe"}) if call.name == "look" else None


RAN: list[str] = []


@tool
def wipe() -> str:
    """Wipes everything."""
    RAN.append("wipe")
    return "wiped"


@tool
def look() -> str:
    """Looks around."""
    RAN.append("look")
    return "looked"


@pytest.mark.anyio
async def test_16_tool_call_denied_by_a_hook_goes_through_after_tool_call() -> None:
    RAN.clear()
    recorder = Recorder()
    model = ScriptedProvider([tool_calls(call("wipe")), reply("ok")])
    runtime = Runtime(model, InMemoryStore(), tools=[wipe], hooks=[Denier(), recorder])
    result = await runtime.run("h:a", "wipe it")
    (denied,) = result.turns[0].tool_results
    assert denied.is_error and "wiping needs a manager" in denied.content
    assert RAN == []
    assert recorder.after == [("wipe", True, denied.content)]


@pytest.mark.anyio
async def test_16_after_tool_call_can_rewrite_a_denied_result() -> None:
    class Softener(Hook):
        async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult | None:
            return result.model_copy(update={"content": "not allowed, ask a manager"})

    model = ScriptedProvider([tool_calls(call("wipe")), reply("ok")])
    runtime = Runtime(model, InMemoryStore(), tools=[wipe], hooks=[Denier(), Softener()])
    result = await runtime.run("h:b", "wipe it")
    assert result.turns[0].tool_results[0].content == "not allowed, ask a manager"


@pytest.mark.anyio
async def test_21_a_hook_cannot_rename_a_call_into_a_denied_tool() -> None:
    RAN.clear()
    policies = PolicyRegistry()
    policies.set_policy("h", ToolPolicy.deny_list(["wipe"]))
    recorder = Recorder()
    model = ScriptedProvider([tool_calls(call("look")), reply("ok")])
    runtime = Runtime(
        model, InMemoryStore(), tools=[wipe, look], policies=policies, hooks=[Renamer(), recorder]
    )
    result = await runtime.run("h:c", "look")
    (refused,) = result.turns[0].tool_results
    assert refused.is_error
    assert RAN == []  # neither the renamed call nor the original ran
    assert recorder.after and recorder.after[0][1] is True


@pytest.mark.anyio
async def test_21_hooks_are_not_asked_about_a_call_the_policy_refused() -> None:
    RAN.clear()
    policies = PolicyRegistry()
    policies.set_policy("h", ToolPolicy.deny_list(["wipe"]))
    recorder = Recorder()
    model = ScriptedProvider([tool_calls(call("wipe"), call("look")), reply("ok")])
    runtime = Runtime(
        model, InMemoryStore(), tools=[wipe, look], policies=policies, hooks=[recorder]
    )
    result = await runtime.run("h:d", "both")
    assert recorder.before == ["look"]
    assert RAN == ["look"]
    assert [r.is_error for r in result.turns[0].tool_results] == [True, False]


# -- 22: a run cancelled while its tools run leaves no unanswered call -------------------


@pytest.mark.anyio
@pytest.mark.parametrize("shared", ALL, indirect=True)
async def test_22_cancelled_run_answers_every_call_on_every_store(shared: OpenStore) -> None:
    store = shared()
    started = anyio.Event()

    @tool
    async def slow(n: int) -> str:
        """Never finishes in time."""
        started.set()
        await anyio.sleep(60)
        return "late"

    model = ScriptedProvider([tool_calls(call("slow", {"n": 1}), call("slow", {"n": 2}))])
    runtime = Runtime(model, store, tools=[slow])
    ns = Namespace("cancel", secrets.token_hex(3))
    async with anyio.create_task_group() as tg:

        async def go() -> None:
            await runtime.run(ns, "go")

        tg.start_soon(go)
        await started.wait()
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    reopened = shared()
    loaded = await reopened.load(ns)
    assert loaded is not None
    asked = [c.id for m in loaded.messages for c in m.tool_calls]
    answered = [r.call_id for m in loaded.messages for r in m.tool_results]
    assert len(asked) == 2 and sorted(answered) == sorted(asked), loaded.messages


# -- 23: a stream that fails after its first event is neither retried nor failed over ----


class BreaksMidStream:
    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: CompletionRequest) -> Any:
        raise AssertionError("streamed only")

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        from orra_di.errors import ProviderUnavailableError

        self.calls += 1
        yield TextDelta("Hello, ")
        raise ProviderUnavailableError("connection reset mid-stream")


class Steady:
    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: CompletionRequest) -> Any:
        raise AssertionError("streamed only")

    async def stream(self, request: CompletionRequest) -> AsyncIterator[StreamEvent]:
        self.calls += 1
        yield TextDelta("other answer")
        yield StreamDone()


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["retry", "fallback"])
async def test_23_stream_failing_after_first_event_is_raised_not_repeated(kind: str) -> None:
    from orra_di.errors import ProviderError
    from orra_di.providers.resilience import FallbackProvider, RetryingProvider

    broken, steady = BreaksMidStream(), Steady()
    llm: Any = (
        RetryingProvider(broken, max_retries=3, base_delay=0)
        if kind == "retry"
        else FallbackProvider([broken, steady])
    )
    runtime = Runtime(llm, InMemoryStore())
    texts: list[str] = []
    with pytest.raises(ProviderError):
        async with runtime.run_streaming("s:a", "hi") as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    texts.append(event.text)
    assert "".join(texts) == "Hello, "
    assert broken.calls == 1 and steady.calls == 0


# -- 24: spawn_agent's depth limit ---------------------------------------------------------


@pytest.mark.anyio
async def test_24_spawn_agent_stops_at_its_depth() -> None:
    from orra_di import spawn_agent_tool

    model = ScriptedProvider(
        [
            tool_calls(call("spawn_agent", {"task": "go deeper"})),  # top spawns a child
            tool_calls(call("spawn_agent", {"task": "deeper still"})),  # the child tries
            reply("child done"),
            reply("top done"),
        ]
    )
    store = InMemoryStore()
    built: list[str] = []

    def build(prompt: str) -> Runtime:
        built.append(prompt)
        return Runtime(model, store, tools=[spawner])

    spawner = spawn_agent_tool(build, max_depth=1)
    runtime = Runtime(model, store, tools=[spawner])
    result = await runtime.run("sp:a", "start")
    assert result.final_message.content == "top done"
    assert len(built) == 1  # the grandchild was never built
    (child,) = [ns for ns in await store.list("sp:a") if ns != Namespace("sp", "a")]
    session = await store.load(child)
    assert session is not None
    (refusal,) = [r for m in session.messages for r in m.tool_results]
    assert refusal.is_error and "depth" in refusal.content.lower()


# -- 17: vendor blocks survive a restart mid tool loop ------------------------------------


def test_17_thinking_blocks_go_back_after_a_restart(tmp_path: Path, httpserver: Any) -> None:
    from werkzeug import Request, Response

    from orra_di.errors import ProviderError
    from orra_di.providers.anthropic import AnthropicProvider

    thinking = {"type": "thinking", "thinking": "Look it up.", "signature": "SiG-123"}
    use = {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}
    bodies: list[dict[str, Any]] = []
    answers = [
        (200, {"content": [thinking, use], "stop_reason": "tool_use"}),
        (400, None),  # the process "dies" here: its next call fails
        (200, {"content": [{"type": "text", "text": "Found it."}], "stop_reason": "end_turn"}),
    ]

    def handler(request: Request) -> Response:
        bodies.append(request.get_json())
        status, body = answers[len(bodies) - 1]
        if status != 200:
            error = {"type": "error", "error": {"type": "invalid_request_error", "message": "x"}}
            return Response(json.dumps(error), status=status, content_type="application/json")
        message = {
            "id": f"msg_{len(bodies)}",
            "type": "message",
            "role": "assistant",
            "model": "claude-review",
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 5},
            **(body or {}),
        }
        return Response(json.dumps(message), content_type="application/json")

    httpserver.expect_request("/v1/messages", method="POST").respond_with_handler(handler)

    @tool
    def lookup(q: str) -> str:
        """Looks something up."""
        return "42"

    def adapter() -> AnthropicProvider:
        return AnthropicProvider(
            "sk-ant-review", model="claude-review", base_url=httpserver.url_for(""), max_retries=0
        )

    async def first() -> None:
        store = SQLiteStore(tmp_path / "t.sqlite3")
        try:
            with pytest.raises(ProviderError):
                await Runtime(adapter(), store, tools=[lookup]).run("th:a", "question")
        finally:
            await store.aclose()

    async def second() -> str:
        store = SQLiteStore(tmp_path / "t.sqlite3")
        try:
            result = await Runtime(adapter(), store, tools=[lookup]).run("th:a", "go on")
        finally:
            await store.aclose()
        return result.final_message.content

    anyio.run(first)
    assert anyio.run(second) == "Found it."
    resent = [m for m in bodies[2]["messages"] if m["role"] == "assistant"]
    assert resent and resent[0]["content"][0] == thinking


# -- 18, 19, 20: docs a newcomer can follow ----------------------------------------------


def test_18_every_readme_python_block_is_run_by_the_suite() -> None:
    """Every fence a reader sees as Python is one the docs test extracts and runs."""
    from test_docs import PAGES, blocks

    assert ROOT / "README.md" in PAGES
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        fences = re.findall(r"^ *```(?:python|py)\b", text, re.M)
        assert len(blocks(page)) == len(fences), page
    readme = blocks(ROOT / "README.md")
    assert len(readme) >= 4 and all(b.skip is None for b in readme)


def test_18_readme_override_example_gives_the_tool_it_scripts() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("**1. Override it in tests**", 1)[1].split("**2.", 1)[0]
    assert "tool_factory" in section and "override_agent" in section
    assert "not stock.is_error" in section


def test_19_docs_site_has_the_pages_the_issue_asks_for() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in (
        "getting-started.md",
        "concepts/namespaces.md",
        "concepts/sessions.md",
        "concepts/tools.md",
        "concepts/policies.md",
        "concepts/hooks.md",
        "concepts/agents.md",
        "concepts/context.md",
        "container.md",
        "deploy.md",
        "reference/settings.md",
        "reference/api.md",
    ):
        assert page in nav, page
        assert (ROOT / "docs" / page).is_file(), page
    assert "mkdocstrings" in nav and "material" in nav


def test_20_readme_shows_the_session_cost_chart() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\((docs/img/[^)]+\.png)\)", readme)
    assert "docs/img/session-cost.png" in images  # the README has other pictures too
    for image in images:
        assert (ROOT / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (ROOT / "benchmarks" / "chart_session_cost.py").is_file()


# -- 26: the tests themselves ---------------------------------------------------------------


@pytest.mark.anyio
async def test_26_scripted_provider_and_stream_lifecycle_from_the_runtime() -> None:
    """What test_provider's two self-asserting tests meant to check, through the product:
    a scripted tool call streams as start/delta events and runs the tool with its arguments."""
    from orra_di import ToolCallCompleted, ToolCallStarted

    @tool
    def echo(word: str) -> str:
        """Echoes."""
        return word * 2

    model = ScriptedProvider(
        [tool_calls(call("echo", {"word": "ab"})), reply("fine")], chunk_size=3
    )
    runtime = Runtime(model, InMemoryStore(), tools=[echo])
    seen: list[str] = []
    async with runtime.run_streaming("p:a", "go") as events:
        async for event in events:
            if isinstance(event, ToolCallStarted):
                seen.append(f"start {event.name}")
            elif isinstance(event, ToolCallCompleted):
                seen.append(f"done {event.result.content}")
    assert seen == ["start echo", "done abab"]
    assert events.result is not None and events.result.final_message.content == "fine"


def test_09_chat_prints_each_tool_line_once_without_blank_lines(home: Path) -> None:
    """A streamed answer with two tool calls reads like ``sessions show``: one line per
    call and per result, no empty line between them, the answer on its own line."""
    chat = orra(home, "chat", "-n", "layout:a", input="hello\n/quit\n", env=TEST)
    assert chat.returncode == 0, chat.stderr
    answer = chat.stdout.split("you> ", 1)[1].split("you> ", 1)[0]
    lines = answer.splitlines()
    assert lines[0] == "Atlas: "
    assert lines[1:3] == ["  → calculate", "  → current_time"]
    assert lines[3] == "  ← 112.5" and lines[4].startswith("  ← ")
    assert lines[5] == TEST_MODEL + "hello"
    assert "" not in lines


APPROVALS = {
    "ORRA_APPROVAL__ENABLED": "true",
    "ORRA_APPROVAL__TOOLS": '["calculate"]',
    "ORRA_APPROVAL__TIMEOUT": "30",
}


def test_09_chat_asks_for_approval_on_a_line_of_its_own(home: Path) -> None:
    """As docs/approvals.md shows it: the question is not glued to a tool line."""
    chat = orra(home, "chat", "-n", "appr:a", input="What is 6*7?\ny\n/quit\n", env=APPROVALS)
    assert chat.returncode == 0, chat.stderr
    lines = chat.stdout.splitlines()
    (question,) = [line for line in lines if "? [y/N]" in line]
    assert question.startswith('run `calculate` with {"expression":"6*7"}'), lines
    # (stdin is a pipe: the "y" typed is not echoed, so the result follows on that line)
    assert question.endswith("? [y/N]   ← 42")


def test_ask_says_which_call_waits_for_approval_and_how_to_answer(home: Path) -> None:
    """``ask`` cannot ask inline: it says on stderr what waits, and how to answer it from
    another terminal, instead of waiting in silence until the timeout."""
    proc = subprocess.Popen(
        [*CLI, "ask", "-n", "appr:b", "compute 6*7"],
        env=cli_env(home, **APPROVALS),
        cwd=home,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = ""
        deadline = time.monotonic() + 60
        while "approvals approve" not in line and time.monotonic() < deadline:
            line = proc.stderr.readline()
        found = re.search(r"orra-di approvals approve ([0-9a-f]{32})", line)
        assert found, line
        assert "calculate" in line
        approved = orra(home, "approvals", "approve", found[1], env=APPROVALS)
        assert approved.returncode == 0, approved.stderr
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert out.startswith("6*7 = 42 (worked out by the calculate tool)")


def test_projects_list_says_there_is_none_rather_than_an_empty_table(home: Path) -> None:
    empty = orra(home, "projects", "list")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.startswith("no project; create one with `orra-di projects create")
    assert json.loads(orra(home, "projects", "list", "--json").stdout) == []
