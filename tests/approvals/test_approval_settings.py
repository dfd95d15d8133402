"""Approvals from the settings, through the container: ORRA_APPROVAL__* and the hook factory."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from dependency_injector import providers

from orra_di import AgentProfile, ConfigurationError, Hook, Namespace, ToolCall, tool
from orra_di.approvals import (
    SYSTEM,
    ApprovalHook,
    ApprovalStatus,
    InProcessApprover,
    approval_store_for,
)
from orra_di.containers import Container, lifespan
from orra_di.settings import load_settings
from orra_di.testing import ScriptedProvider, call, reply, tool_calls

pytestmark = pytest.mark.anyio

ALICE = Namespace("acme", "alice")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


ran: list[str] = []


@tool
def deploy(target: str) -> str:
    """Deploy."""
    ran.append(target)
    return f"deployed {target}"


def container_with(monkeypatch: pytest.MonkeyPatch, **env: str) -> Container:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    container = Container()
    container.settings.override(providers.Object(load_settings(store={"url": "memory://"})))
    container.tool_factory.override(providers.Object(lambda profile: [deploy]))

    def script(request: Any) -> Any:
        if request.messages[-1].tool_results:
            return reply("done")
        return tool_calls(
            call("deploy", {"target": "prod"}, id="c1"),
            call("calculate", {"expression": "1+1"}, id="c2"),
        )

    container.llm.override(providers.Object(ScriptedProvider(script)))
    return container


def test_the_environment_configures_approvals(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_APPROVAL__ENABLED", "true")
    monkeypatch.setenv("ORRA_APPROVAL__TOOLS", '["deploy", "exec"]')
    monkeypatch.setenv("ORRA_APPROVAL__TIMEOUT", "12.5")
    section = load_settings().approval
    assert (section.enabled, section.tools, section.timeout) == (True, ["deploy", "exec"], 12.5)
    monkeypatch.delenv("ORRA_APPROVAL__TIMEOUT")
    assert load_settings().approval.timeout == 300  # finite by default


@pytest.mark.parametrize("value", ["inf", "nan", "0", "-5", "soon"])
def test_a_timeout_that_is_not_finite_and_positive_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("ORRA_APPROVAL__TIMEOUT", value)
    with pytest.raises(ConfigurationError, match="ORRA_APPROVAL__TIMEOUT"):
        load_settings()


def test_an_unknown_approval_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_APPROVAL__TOOL", '["deploy"]')
    with pytest.raises(ConfigurationError, match="ORRA_APPROVAL__TOOL"):
        load_settings()


async def test_disabled_approvals_add_no_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    container = container_with(monkeypatch)
    assert container.approval_hook() is None
    runtime = container.runtimes()[container.runtimes().default_agent]
    assert not any(isinstance(h, ApprovalHook) for h in runtime.hooks._hooks)


async def test_configured_approvals_gate_the_named_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    ran.clear()
    container = container_with(
        monkeypatch,
        ORRA_APPROVAL__ENABLED="true",
        ORRA_APPROVAL__TOOLS='["deploy"]',
        ORRA_APPROVAL__TIMEOUT="0.05",
    )

    class Later(Hook):
        """An application hook: the approval hook comes after it."""

        async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
            if call.name == "deploy":
                return call.model_copy(update={"arguments": {"target": "staging"}})
            return None

    def hooks(profile: AgentProfile) -> Sequence[Hook]:
        return [Later()]

    container.hook_factory.override(providers.Object(hooks))
    async with lifespan(container):
        runtimes = container.runtimes()
        result = await runtimes[runtimes.default_agent].run(ALICE, "ship it")
        store = container.store()
        approvals = container.approval_store()
        assert approvals is approval_store_for(store)
        (record,) = await approvals.history()
    deployed, calculated = result.turns[0].tool_results
    assert deployed.is_error and "no answer within 0.05s" in deployed.content
    assert calculated.content == "2" and ran == []
    # It asked about the call as the application's hook left it.
    assert (record.tool, record.arguments, record.decided_by) == (
        "deploy",
        {"target": "staging"},
        SYSTEM,
    )
    assert record.status is ApprovalStatus.DENIED


async def test_an_application_approver_answers_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    ran.clear()
    container = container_with(
        monkeypatch, ORRA_APPROVAL__ENABLED="true", ORRA_APPROVAL__TOOLS='["deploy"]'
    )
    async with InProcessApprover() as approver, lifespan(container):
        container.approver.override(providers.Object(approver))
        runtimes = container.runtimes()
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:

                async def answer() -> None:
                    pending = await approver.requests.receive()
                    pending.approve(by="release-manager")

                tg.start_soon(answer)
                result = await runtimes[runtimes.default_agent].run(ALICE, "ship it")
    assert result.turns[0].tool_results[0].content == "deployed prod" and ran == ["prod"]
