"""Agents handing work to other agents: ``delegate_to_agent`` and ``spawn_agent``.

Ported from orra (spec §2C.1) with its problems fixed (§5.6/33):

- the delegated run happens under a child namespace of the calling session
  (``acme:alice:delegation.atlas.codebot.1f2e3d4c``), so the caller's tool policy is
  inherited and erasing the caller's subtree erases the delegations too;
- the chain of delegations is read back from that namespace, so cycles
  (A -> B -> A) and chains deeper than ``max_depth`` stop with an error
  result the calling model can read;
- the sub-agent is a full :class:`~orra_di.runtime.Runtime`: policies, hooks,
  the context budget and the store all apply, and running out of turns is an
  error rather than a silently empty answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated
from urllib.parse import quote

from pydantic import Field

from orra_di.errors import OrraError, ToolExecutionError
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.runtime import RunResult, Runtime
from orra_di.runtime_set import RuntimeMap
from orra_di.tool import FunctionTool, ToolContext

__all__ = [
    "DELEGATION_PREFIX",
    "SPAWN_PREFIX",
    "delegate_to_agent_tool",
    "delegation_chain",
    "spawn_agent_tool",
]

DELEGATION_PREFIX = "delegation."
SPAWN_PREFIX = "spawn."
DEFAULT_SUB_AGENT_PROMPT = "You are a helpful sub-agent. Complete the given task concisely."


def _slug(name: str) -> str:
    """An agent name as it appears in a namespace segment.

    Percent-encoded (dots too, which separate the segment's parts), so it is
    one-to-one: "Code Bot" and "code_bot" stay two agents in a chain.
    """
    return quote(name.lower(), safe="-_").replace(".", "%2E")


def delegation_chain(namespace: NamespaceLike) -> list[str]:
    """Who handed work to whom on the way to ``namespace``, outermost caller first.

    A delegation segment is ``delegation.<caller>.<target>.<id>``; a spawned
    sub-agent's is ``spawn.<id>`` and shows as ``spawn``.
    """
    namespace = Namespace.coerce(namespace)
    chain: list[str] = []
    for segment in namespace.segments:
        if segment.startswith(DELEGATION_PREFIX):
            parts = segment.split(".")
            if len(parts) == 4:
                if not chain:
                    chain.append(parts[1])
                chain.append(parts[2])
        elif segment.startswith(SPAWN_PREFIX):
            chain.append("spawn")
    return chain


def _check_depth(namespace: Namespace, max_depth: int) -> None:
    hops = sum(s.startswith((DELEGATION_PREFIX, SPAWN_PREFIX)) for s in namespace.segments)
    if hops >= max_depth:
        raise ToolExecutionError(
            f"delegation depth limit ({max_depth}) reached; answer the task yourself"
        )


def _summary(label: str, result: RunResult) -> str:
    return (
        f"[{label} responded ({len(result.turns)} turns, "
        f"{result.total_usage.total_tokens} tokens)]\n\n{result.final_message.content}"
    )


def delegate_to_agent_tool(
    runtimes: RuntimeMap, self_name: str, *, max_depth: int = 3
) -> FunctionTool:
    """The ``delegate_to_agent`` tool for agent ``self_name``; agents resolve at call time."""
    self_key = _slug(self_name)

    async def delegate_to_agent(
        agent: Annotated[str, Field(description="Name of the target agent (case-insensitive)")],
        task: Annotated[str, Field(description="The task for the target agent")],
        ctx: ToolContext,
    ) -> str:
        if agent.lower() == self_name.lower():
            raise ToolExecutionError("cannot delegate to yourself")
        if agent not in runtimes:
            raise ToolExecutionError(
                f"agent '{agent}' not found. Available agents: "
                + ", ".join(p.name for p in runtimes.profiles)
            )
        target = _slug(agent)
        path = delegation_chain(ctx.namespace) or [self_key]
        if target in path:
            cycle = " -> ".join([*path, target])
            raise ToolExecutionError(f"delegation cycle: {cycle}; answer the task yourself")
        _check_depth(ctx.namespace, max_depth)
        segment = f"{DELEGATION_PREFIX}{self_key}.{target}.{uuid.uuid4().hex[:8]}"
        child = ctx.namespace.child(segment)
        name = runtimes.profile(agent).name  # as configured, whatever case the model wrote
        try:
            result = await runtimes[agent].run(child, task)
        except OrraError as exc:
            raise ToolExecutionError(f"agent '{name}' failed: {exc}") from exc
        return _summary(f"Agent '{name}'", result)

    others = [p.name for p in runtimes.profiles if p.key != self_name.lower()]
    return FunctionTool(
        delegate_to_agent,
        schema_extra={"agent": {"enum": others}},
        description=(
            "Delegate a task to another named agent. The target agent has its own "
            "personality, system prompt, and capabilities. Use this when another agent "
            "is better suited for a task."
        ),
    )


def spawn_agent_tool(build: Callable[[str], Runtime], *, max_depth: int = 3) -> FunctionTool:
    """The ``spawn_agent`` tool; ``build(system_prompt)`` makes the sub-agent's runtime."""

    async def spawn_agent(
        task: Annotated[str, Field(description="The task for the sub-agent")],
        ctx: ToolContext,
        system_prompt: Annotated[
            str | None, Field(description="Optional instructions for the sub-agent")
        ] = None,
    ) -> str:
        _check_depth(ctx.namespace, max_depth)
        child = ctx.namespace.child(f"{SPAWN_PREFIX}{uuid.uuid4().hex[:8]}")
        try:
            result = await build(system_prompt or DEFAULT_SUB_AGENT_PROMPT).run(child, task)
        except OrraError as exc:
            raise ToolExecutionError(f"sub-agent failed: {exc}") from exc
        return _summary("Sub-agent", result)

    return FunctionTool(
        spawn_agent,
        description=(
            "Delegate a task to a sub-agent that runs independently with its own "
            "conversation context. The sub-agent can use tools and will return its final "
            "response. Use this for tasks that benefit from focused, independent reasoning."
        ),
    )
