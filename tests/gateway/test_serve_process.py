"""``orra-di serve`` as a real process: it serves, and SIGTERM lets runs in flight end.

The app's container (``--container slowapp:make``, a module written into the working
directory) uses a scripted model that takes a while to answer, so that the signal
arrives while runs are in flight. The store is SQLite in the working directory.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import httpx

import orra_di
from orra_di.stores import SQLiteStore

BOUND = 60  # seconds: a hang guard on a loaded machine, never asserted on

APP = """
from dependency_injector import providers
from orra_di.containers import Container
from orra_di.testing import ScriptedProvider

def make():
    container = Container()
    container.llm.override(providers.Object(ScriptedProvider(lambda r: "done", delay={delay})))
    return container
"""


def start(tmp_path: Path, delay: float, **env_extra: str) -> tuple[subprocess.Popen[str], str]:
    (tmp_path / "slowapp.py").write_text(APP.format(delay=delay))
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ORRA_")}
    env.update(
        PYTHONPATH=f"{Path(orra_di.__file__).resolve().parent.parent}{os.pathsep}{tmp_path}",
        ORRA_STORE__URL=f"sqlite:///{tmp_path / 'sessions.db'}",
        ORRA_GATEWAY__PORT="0",
        NO_COLOR="1",
        COLUMNS="250",
        **env_extra,
    )
    process = subprocess.Popen(
        [sys.executable, "-c", "from orra_di.cli import main; main()",
         "--container", "slowapp:make", "serve"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    assert process.stderr is not None
    deadline = time.monotonic() + BOUND
    for line in process.stderr:
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            return process, found.group(1)
        assert time.monotonic() < deadline
    raise AssertionError(f"serve did not start: {process.communicate()}")


def chats(url: str, count: int) -> tuple[list[threading.Thread], list[int]]:
    codes: list[int] = []

    def one(i: int) -> None:
        response = httpx.post(
            f"{url}/v1/chat", json={"message": f"m{i}", "namespace": f"t:s{i}"}, timeout=BOUND
        )
        codes.append(response.status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    return threads, codes


async def stored(db: Path) -> dict[str, list[str]]:
    store = SQLiteStore(db)
    try:
        return {
            ns.key: [m.content for m in (await store.load(ns)).messages]  # type: ignore[union-attr]
            for ns in await store.list()
        }
    finally:
        await store.aclose()


def wait_for_runs(url: str, count: int) -> None:
    """Until ``count`` runs have their user message stored (they are in flight)."""
    deadline = time.monotonic() + BOUND
    while True:
        listed = httpx.get(f"{url}/v1/sessions", timeout=BOUND).json()["sessions"]
        if len(listed) >= count:
            return
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_sigterm_lets_the_runs_in_flight_finish_and_store_their_answers(tmp_path: Path) -> None:
    serve, url = start(tmp_path, delay=1.5)
    try:
        threads, codes = chats(url, 3)
        wait_for_runs(url, 3)
        serve.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(BOUND)
        _, err = serve.communicate(timeout=BOUND)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    assert serve.returncode == 0, err
    assert codes == [200, 200, 200]
    sessions = anyio.run(stored, tmp_path / "sessions.db")
    assert sessions == {f"t:s{i}": [f"m{i}", "done"] for i in range(3)}


def test_sigterm_past_the_grace_cancels_runs_and_keeps_what_they_did(tmp_path: Path) -> None:
    serve, url = start(tmp_path, delay=60, ORRA_GATEWAY__SHUTDOWN_GRACE="0.5")
    try:
        threads, _ = chats(url, 2)
        wait_for_runs(url, 2)
        serve.send_signal(signal.SIGTERM)
        _, err = serve.communicate(timeout=BOUND)
        for thread in threads:
            thread.join(BOUND)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    assert serve.returncode == 0, err
    assert "2 run(s) cancelled at shutdown" in err
    sessions = anyio.run(stored, tmp_path / "sessions.db")
    assert sessions == {"t:s0": ["m0"], "t:s1": ["m1"]}  # the question kept, nothing half-written


def test_serve_refuses_a_public_address_without_keys(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ORRA_")}
    env.update(
        PYTHONPATH=str(Path(orra_di.__file__).resolve().parent.parent),
        ORRA_STORE__URL="memory://",
        NO_COLOR="1",
    )
    done = subprocess.run(
        [sys.executable, "-c", "from orra_di.cli import main; main()",
         "serve", "--host", "0.0.0.0"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=BOUND,
    )  # fmt: skip
    assert done.returncode == 1
    assert "refusing to serve" in done.stderr and "new-key" in done.stderr


def test_serve_on_a_busy_port_is_one_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ORRA_")}
    env.update(
        PYTHONPATH=str(Path(orra_di.__file__).resolve().parent.parent),
        ORRA_STORE__URL="memory://",
        NO_COLOR="1",
        COLUMNS="250",
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-c", "from orra_di.cli import main; main()",
             "serve", "--port", str(port)],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=BOUND,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"error: cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "another --port" in done.stderr
    assert "Traceback" not in done.stderr and "listening on" not in done.stderr
