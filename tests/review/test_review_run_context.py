"""``RunContext.set_state`` with a value the store cannot keep.

docs/concepts/hooks.md: the value must be JSON-serialisable, since it is stored with
the session. A hook that sets another value used to be told nothing: the run went
on, the model was called (and billed), and the *next* append failed with a StoreError
about "metadata", losing the model's answer. The mistake is now refused where it is
made, naming the key, before anything is sent or lost.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from orra_di import Hook, OrraError, Runtime, current_run
from orra_di.provider import CompletionRequest
from orra_di.stores import SQLiteStore
from orra_di.testing import ScriptedProvider

pytestmark = pytest.mark.anyio


class Remember(Hook):
    def __init__(self, value: object) -> None:
        self.value = value

    async def before_provider_call(self, request: CompletionRequest) -> None:
        current_run().set_state("last_seen", self.value)


@pytest.mark.parametrize("value", [datetime(2026, 1, 1), {1, 2}, object(), float("nan")])
async def test_a_state_value_the_store_cannot_keep_is_refused_where_it_is_set(
    tmp_path: Path, value: object
) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    model = ScriptedProvider(["first answer", "second answer"])
    try:
        await Runtime(model, store).run("acme:alice", "hello")  # a session with history
        with pytest.raises(OrraError, match=r"'last_seen'.*JSON"):
            await Runtime(model, store, hooks=[Remember(value)]).run("acme:alice", "again")
        assert len(model.requests) == 1  # nothing sent for the refused run
        session = await store.load("acme:alice")
        assert session is not None
        assert [m.content for m in session.messages][:2] == ["hello", "first answer"]
        assert "last_seen" not in session.metadata.get("state", {})
    finally:
        await store.aclose()


async def test_json_values_are_kept(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    try:
        value = {"when": "2026-01-01", "ids": [1, 2], "nested": {"ok": True, "n": None}}
        runtime = Runtime(ScriptedProvider(["ok"]), store, hooks=[Remember(value)])
        await runtime.run("acme:alice", "hello")
        session = await store.load("acme:alice")
        assert session is not None and session.metadata["state"]["last_seen"] == value
    finally:
        await store.aclose()
