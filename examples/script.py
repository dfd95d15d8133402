"""orra-di in plain Python: no container, no wiring, no API key.

Two agents share a scripted model, a SQLite store and two tools. Two users
talk to them in their own namespaces; guests (``bank:guests`` and below) may
not move money, and that policy holds even when the model calls the tool it
was not offered. Finally the store is reopened to show what was persisted.

    python examples/script.py [DIRECTORY]

Without a directory the database lives in a temporary one, removed at exit.
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
from pathlib import Path

import anyio

from orra_di import (
    AgentProfile,
    CompletionRequest,
    CompletionResponse,
    Namespace,
    PolicyRegistry,
    RuntimeConfig,
    ToolContext,
    ToolError,
    ToolPolicy,
    tool,
)
from orra_di.runtime_set import RuntimeMap, build_runtime
from orra_di.stores.sqlite import SQLiteStore
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

BALANCES: dict[str, int] = {"alice": 100, "bob": 20}
"""Euros by user, the last segment of the session's namespace: the tools take the
caller from the runtime's context, never from the model's arguments."""


@tool
def get_balance(context: ToolContext) -> str:
    """The caller's account balance."""
    return f"{BALANCES.get(context.namespace.segments[-1], 0)} EUR"


@tool
def transfer(amount: int, to: str, context: ToolContext) -> str:
    """Send money from the caller's account to another customer."""
    user = context.namespace.segments[-1]
    if to not in BALANCES or to == user:
        raise ToolError(f"no other customer is called {to!r}")
    if not 0 < amount <= BALANCES[user]:
        raise ToolError(f"cannot send {amount} EUR from a balance of {BALANCES[user]} EUR")
    BALANCES[user] -= amount
    BALANCES[to] += amount
    return f"sent {amount} EUR to {to}; {BALANCES[user]} EUR left"


def scripted_model(request: CompletionRequest) -> CompletionResponse:
    """Stands in for an LLM: picks a tool from the words, then answers from the result.

    It asks for ``transfer`` even when the tool was not offered, as a model
    confused by an earlier turn might: the runtime must still refuse it.
    """
    last = request.messages[-1]
    if last.tool_results:
        result = last.tool_results[0]
        return reply(("Sorry: " if result.is_error else "Done: ") + result.content)
    words = last.content.lower().split()
    if "transfer" in words:
        amount = next((int(w) for w in words if w.isdigit()), 0)
        return tool_calls(call("transfer", {"amount": amount, "to": words[-1]}))
    return tool_calls(call("get_balance"))


async def main(directory: Path) -> None:
    path = directory / "sessions.sqlite3"
    print(f"sessions in {path}")
    store = SQLiteStore(path)
    policies = PolicyRegistry()
    policies.set_policy(Namespace("bank", "guests"), ToolPolicy.deny_list(["transfer"]))
    llm = ScriptedProvider(scripted_model)
    build = functools.partial(
        build_runtime,
        llm=llm,
        store=store,
        config=RuntimeConfig(max_turns=4),
        tools=[get_balance, transfer],
        policies=policies,
    )
    runtimes = RuntimeMap([AgentProfile(name="Teller"), AgentProfile(name="Auditor")], build)

    conversation = [
        (Namespace("bank", "alice"), "What is my balance?"),
        (Namespace("bank", "alice"), "Please transfer 30 to bob"),
        (Namespace("bank", "guests", "bob"), "Please transfer 15 to alice"),
        (Namespace("bank", "guests", "bob"), "@Auditor what is my balance?"),
    ]
    for namespace, text in conversation:
        agent, content = runtimes.route(text)
        print(f"\n[{namespace}] user -> {agent}: {content}")
        result = await runtimes[agent].run(namespace, content)
        offered = [t.name for t in llm.requests[-1].tools]
        print(f"  tools offered: {', '.join(offered)}")
        for turn in result.turns:
            calls = turn.response.message.tool_calls
            for tool_call, outcome in zip(calls, turn.tool_results, strict=True):
                arguments = json.dumps(tool_call.arguments)
                status = "error" if outcome.is_error else "ok"
                print(f"  {tool_call.name}({arguments}) {status}: {outcome.content}")
        print(f"  {agent}: {result.final_message.content}")
    await store.aclose()

    reopened = SQLiteStore(path)
    try:
        print("\nreopened the store:")
        for namespace in await reopened.list(Namespace("bank")):
            session = await reopened.load(namespace)
            count = len(session.messages) if session else 0
            print(f"  {namespace}: {count} messages")
    finally:
        await reopened.aclose()
    print(f"balances: {json.dumps(BALANCES)}")


def run(argv: list[str]) -> None:
    if len(argv) > 1:
        directory = Path(argv[1])
        directory.mkdir(parents=True, exist_ok=True)
        anyio.run(main, directory)
        return
    with tempfile.TemporaryDirectory(prefix="orra-di-example-") as temporary:
        anyio.run(main, Path(temporary))


if __name__ == "__main__":
    run(sys.argv)
