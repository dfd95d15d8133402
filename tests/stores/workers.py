"""What the conformance suite runs in worker processes, and the turn it checks for.

Worker processes are started with the ``spawn`` context (a fresh interpreter,
as separate replicas would be), so their targets live at module level here.
Each worker opens the store under test with :func:`orra_di.stores.open_store`
and runs real :class:`~orra_di.Runtime` turns. A turn tagged ``tag`` is four
messages: the user's ``tag``, the assistant's call ``<tag>-call`` of the
``stamp`` tool, its result ``<tag> stamped`` and the answer ``<tag> answered``;
:func:`turn_tags` checks exactly that shape.
"""

from __future__ import annotations

import multiprocessing.synchronize
from collections.abc import Sequence
from typing import Any

import anyio

from orra_di.message import Message, Role
from orra_di.namespace import Namespace
from orra_di.provider import CompletionRequest, CompletionResponse
from orra_di.runtime import Runtime, RuntimeConfig
from orra_di.store import SessionStore
from orra_di.stores import open_store
from orra_di.testing import ScriptedProvider, call, reply, tool_calls
from orra_di.tool import Tool, tool

BLOCKING = "block"
"""Turns whose tag starts with this call the ``block`` tool, which never returns."""


TURN_SECONDS = 0.01
"""How long ``stamp`` takes: a turn lasts long enough for the other workers to be
waiting when it ends. A store turn alone takes about a millisecond, so a worker
started a few scheduler slices late on a busy machine once found the others done
(or finished a streak of turns before it asked), which says nothing about the
store."""


@tool
async def stamp(tag: str) -> str:
    """Mark a turn as run."""
    await anyio.sleep(TURN_SECONDS)
    return f"{tag} stamped"


def _script(request: CompletionRequest) -> CompletionResponse:
    """Ask for one tool call per user message, then answer once its result is in."""
    last = request.messages[-1]
    if last.tool_results:
        return reply(f"{last.tool_results[0].call_id.removesuffix('-call')} answered")
    tag = last.content
    name = "block" if tag.startswith(BLOCKING) else "stamp"
    return tool_calls(call(name, {"tag": tag}, id=f"{tag}-call"))


def runtime(store: SessionStore, *extra_tools: Tool) -> Runtime:
    """The runtime every worker (and the parent) runs turns with."""
    return Runtime(
        ScriptedProvider(_script),
        store,
        tools=[stamp, *extra_tools],
        config=RuntimeConfig(busy_timeout=60),
    )


def turn_tags(messages: Sequence[Message]) -> list[str]:
    """The tags of the complete turns ``messages`` consists of, in order.

    Fails unless the history is nothing but whole turns, each contiguous.
    """
    assert len(messages) % 4 == 0, [m.content for m in messages]
    tags = []
    for i in range(0, len(messages), 4):
        asked, called, answered, final = messages[i : i + 4]
        tag = asked.content
        assert asked.role == Role.USER and not asked.tool_results, asked
        assert [(c.id, c.arguments) for c in called.tool_calls] == [
            (f"{tag}-call", {"tag": tag})
        ], called
        assert [(r.call_id, r.content) for r in answered.tool_results] == [
            (f"{tag}-call", f"{tag} stamped")
        ], answered
        assert (final.role, final.content, final.tool_calls) == (
            Role.ASSISTANT,
            f"{tag} answered",
            (),
        ), final
        tags.append(tag)
    return tags


def unanswered(messages: Sequence[Message]) -> list[str]:
    """Ids of tool calls that the next message does not answer (must be empty)."""
    missing = []
    for i, message in enumerate(messages):
        answered = messages[i + 1].tool_results if i + 1 < len(messages) else ()
        ids = {r.call_id for r in answered}
        missing += [c.id for c in message.tool_calls if c.id not in ids]
    return missing


def run_turns(
    url: str,
    options: dict[str, Any],
    keys: Sequence[str],
    worker: int,
    turns: int,
    start: multiprocessing.synchronize.Barrier,
) -> None:
    """Run ``turns`` turns tagged ``w<worker>-t<n>``, cycling over the namespaces ``keys``."""

    async def main() -> None:
        store = open_store(url, **options)
        try:
            await store.load(Namespace.parse(keys[0]))  # connect before the race starts
            await anyio.to_thread.run_sync(start.wait)
            agent = runtime(store)
            for turn in range(turns):
                key = keys[(worker + turn) % len(keys)]
                await agent.run(Namespace.parse(key), f"w{worker}-t{turn}")
        finally:
            await store.aclose()

    anyio.run(main)


def run_until_blocked(
    url: str, options: dict[str, Any], key: str, blocked: multiprocessing.synchronize.Event
) -> None:
    """Run a turn ``before``, then a ``block`` turn whose tool hangs after ``blocked`` is set.

    By then the user message and the assistant's call are stored and the
    session is locked: the parent kills this process there.
    """

    @tool(name="block")
    async def block(tag: str) -> str:
        """Hang until killed."""
        blocked.set()
        await anyio.sleep(3600)
        return tag

    async def main() -> None:
        store = open_store(url, **options)
        agent = runtime(store, block)
        await agent.run(Namespace.parse(key), "before")
        await agent.run(Namespace.parse(key), BLOCKING)

    anyio.run(main)


def stall_while_holding(url: str, options: dict[str, Any], key: str, outcome: Any) -> None:
    """Lock ``key``, append, then stop this process (SIGSTOP) until the parent resumes it.

    Stopping itself between two operations (not in the middle of one) keeps the
    stall from holding a database write lock. After SIGCONT it appends again
    and sends ``"appended"`` or the StoreError's text through ``outcome`` (a pipe
    end, which sends at once: a queue's feeder thread could be stopped mid-send).
    """
    import os
    import signal

    from orra_di.errors import StoreError

    async def main() -> None:
        store = open_store(url, **options)
        ns = Namespace.parse(key)
        try:
            async with store.lock(ns):
                await store.append(ns, [Message.user("before the stall")])
                outcome.send("stopping")
                os.kill(os.getpid(), signal.SIGSTOP)
                try:
                    await store.append(ns, [Message.user("after the stall")])
                    outcome.send("appended")
                except StoreError as exc:
                    outcome.send(str(exc))
        finally:
            await store.aclose()

    anyio.run(main)
