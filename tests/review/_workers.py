"""Worker processes for tests/review (spawned: a fresh interpreter, as a replica is)."""

from __future__ import annotations

from typing import Any

import anyio

from orra_di.message import Message
from orra_di.namespace import Namespace
from orra_di.stores import open_store


def take_turns(url: str, key: str, worker: int, turns: int, start: Any, busy: float) -> None:
    """``turns`` back-to-back turns on one session, each under the lock, two appends each."""

    async def main() -> None:
        store = open_store(url, lease_seconds=5.0, busy_timeout=busy)
        ns = Namespace.parse(key)
        start.wait()
        try:
            for n in range(turns):
                async with store.lock(ns, timeout=busy):
                    await store.load(ns)
                    await store.append(ns, [Message.user(f"w{worker}-t{n}")])
                    await anyio.sleep(0.02)  # a model call, however short
                    await store.append(ns, [Message.assistant(f"w{worker}-t{n} done")])
        finally:
            await store.aclose()

    anyio.run(main)
