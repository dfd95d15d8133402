"""Everything of issue 10 on at once, through the container, as an application runs it.

Approvals (an in-process approver beside the store), a budget on a project's tenant,
projects, a plugin's tool and hook, logging, the working directory and orra's metrics,
on one SQLite file, with concurrent runs racing the budget. Each feature's own tests
run it alone; this checks that they compose: the documented order of the hooks, each
call approved as it will run, the budget never committed twice, the project's tools
and prompt applied, every log record about its own session.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest
from dependency_injector import providers

from orra_di import AgentProfile, BudgetExceededError, Hook, Tool, current_run, tool
from orra_di.approvals import InProcessApprover
from orra_di.containers import Container, lifespan
from orra_di.message import ToolCall
from orra_di.namespace import Namespace
from orra_di.observability.metrics import names
from orra_di.plugins import BasePlugin, PluginRegistry
from orra_di.provider import CompletionRequest, CompletionResponse, Usage
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio

deployed: list[str] = []


class CountingHook(Hook):
    """A plugin's hook keeping a per-session count in the run's state."""

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        run = current_run()
        run.set_state("deploys_asked", run.state("deploys_asked", 0) + 1)
        return None


class DeployPlugin(BasePlugin):
    name = "deployer"

    def tools(self, agent: AgentProfile) -> Sequence[Tool]:
        @tool
        def deploy(service: str) -> str:
            """Deploy a service."""
            deployed.append(service)
            return f"deployed {service}"

        return [deploy]

    def hooks(self, agent: AgentProfile) -> Sequence[Hook]:
        return [CountingHook()]


def model(request: CompletionRequest) -> CompletionResponse:
    usage = Usage(input_tokens=100, output_tokens=10)
    if request.messages[-1].tool_results:
        return reply("Done.", usage=usage)
    user = request.messages[-1].content
    return tool_calls(
        call("deploy", {"service": user}), call("calculate", {"expression": "1"}), usage=usage
    )


@pytest.fixture
def container(tmp_path: Path) -> Container:
    deployed.clear()
    container = Container()
    settings = load_settings(
        store={"url": f"sqlite:///{tmp_path}/orra.db"},
        tools=["calculate"],
        llm={"model": "m-1"},
        runtime={"max_tokens": 50},
        approval={"enabled": True, "tools": ["deploy"], "timeout": 30},
        budgets={"project:acme": {"tokens_per_day": 1_500}},
        logging={"enabled": True, "logger": "review.composition"},
        working_directory={"enabled": True, "default": str(tmp_path)},
        telemetry={"prometheus": True},
    )
    container.settings.override(providers.Object(settings))
    container.llm.override(ScriptedProvider(model))
    registry = PluginRegistry([DeployPlugin()])
    container.plugins.override(providers.Object(registry))
    return container


async def test_everything_on_at_once_with_runs_racing_a_budget(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="review.composition")
    approver = InProcessApprover()
    container.approver.override(providers.Object(approver))
    users = [f"u{i}" for i in range(8)]
    outcomes: dict[str, str] = {}
    async with approver, lifespan(container):
        await container.projects().create(
            "acme", "Acme", system_prompt="Answer for Acme.", enabled_tools=["deploy"]
        )
        agent = container.runtimes().default

        async def answer() -> None:
            async for pending in approver.requests:
                if pending.request.arguments["service"] == "u3":
                    pending.deny(by="ops", reason="not u3")
                else:
                    pending.approve(by="ops")

        async def one(user: str) -> None:
            try:
                result = await agent.run(f"project:acme:user:{user}", user)
            except BudgetExceededError:
                outcomes[user] = "refused"
                return
            contents = sorted(r.content for r in result.turns[0].tool_results)
            outcomes[user] = " | ".join(contents)

        async with anyio.create_task_group() as tg:
            tg.start_soon(answer)
            async with anyio.create_task_group() as runs:
                for user in users:
                    runs.start_soon(one, user)
            tg.cancel_scope.cancel()

        ledger = container.usage_ledger()
        spent = await ledger.totals("project:acme")
        history = await container.approval_store().history("project:acme")
        store = container.store()
        sessions = {u: await store.load(f"project:acme:user:{u}") for u in users}

    # The budget: never committed twice. 8 runs x 2 calls x 110 tokens do not fit.
    assert spent.total_tokens <= 1_500
    admitted = [u for u, o in outcomes.items() if o != "refused"]
    assert admitted and len(admitted) < len(users)
    # The project: only `deploy` is enabled, so `calculate` is refused at execution.
    for user in admitted:
        assert "tool 'calculate' is not allowed in this session" in outcomes[user]
        if user == "u3":
            assert "was denied by ops: not u3" in outcomes[user]
        else:
            assert f"deployed {user}" in outcomes[user]
    # Approvals: each deploy that ran was approved for its own session; u3's never ran.
    assert "u3" not in deployed
    approved = sorted(r.namespace for r in history if r.status.value == "approved")
    assert approved == sorted(f"project:acme:user:{u}" for u in deployed)
    assert all(r.decided_by == "ops" for r in history)
    # The plugin's hook kept its count in each session, not on the hook object.
    for user in [*admitted, *deployed]:
        session = sessions[user]
        assert session is not None
        # deploy only: a call the policy refuses never reaches the hooks
        assert session.metadata["state"]["deploys_asked"] == 1
    # Logging: every record names the session it is about, and some are per tool.
    records = [r for r in caplog.records if r.name == "review.composition"]
    assert {getattr(r, "namespace", None) for r in records} <= {
        f"project:acme:user:{u}" for u in users
    }
    assert any(getattr(r, "tool", None) == "deploy" for r in records)
    # Metrics: the tool calls that ran were counted.
    assert container.metrics().get_counter(names.TOOL_CALLS, {"tool": "deploy"}) >= len(deployed)
