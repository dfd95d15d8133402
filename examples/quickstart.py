"""A multi-turn, tool-using conversation persisted in SQLite — no API key needed.

Run it twice: the second run finds the first run's history in the database
and continues the same session.

    python examples/quickstart.py [path/to/sessions.sqlite3]
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from orra_di import CompletionRequest, CompletionResponse, Namespace, Runtime, RuntimeConfig, tool
from orra_di.stores.sqlite import SQLiteStore
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

STOCK = {"apples": 12, "pears": 0, "plums": 7}


@tool
def check_stock(item: str) -> str:
    """How many of an item are in stock."""
    if item not in STOCK:
        return f"we do not sell {item}"
    return f"{STOCK[item]} {item} in stock"


def scripted_model(request: CompletionRequest) -> CompletionResponse:
    """Stands in for an LLM: asks for the tool, then answers from its result."""
    last = request.messages[-1]
    if last.tool_results:
        return reply(f"Checked for you: {last.tool_results[0].content}.")
    item = last.content.rstrip("?").split()[-1]
    return tool_calls(call("check_stock", {"item": item}))


async def main(path: Path) -> None:
    store = SQLiteStore(path)
    runtime = Runtime(
        ScriptedProvider(scripted_model),
        store,
        tools=[check_stock],
        config=RuntimeConfig(system_prompt="You are a shop assistant."),
    )
    session_key = Namespace("shop", "alice")
    before = await store.load(session_key)
    if before:
        print(f"Resuming {session_key}: {len(before.messages)} messages already stored.")
    else:
        print(f"New session {session_key} in {path}.")
    for question in ("Do you have apples?", "And plums?"):
        result = await runtime.run(session_key, question)
        print(f"user: {question}")
        for turn in result.turns:
            for call_, result_ in zip(
                turn.response.message.tool_calls, turn.tool_results, strict=True
            ):
                print(f"  tool {call_.name}({call_.arguments}) -> {result_.content}")
        print(f"assistant: {result.final_message.content}")
    after = await store.load(session_key)
    assert after is not None
    print(f"{len(after.messages)} messages stored; run again to see the history grow.")
    await store.aclose()


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("quickstart.sqlite3")
    anyio.run(main, target)
