"""Hooks: the crate's tests (src/hook.rs), with Python's replace-or-raise tool hooks."""

from __future__ import annotations

from collections import Counter

import pytest

from orra_di.errors import OrraError
from orra_di.hook import Hook, HookRegistry, ToolCallDenied
from orra_di.message import Message, ToolCall, ToolResult
from orra_di.namespace import Namespace
from orra_di.provider import CompletionRequest, CompletionResponse
from orra_di.session import Session

NS = Namespace("acme", "alice")


def request(temperature: float | None = 0.7) -> CompletionRequest:
    return CompletionRequest(messages=[Message.user("Hi")], temperature=temperature)


def response() -> CompletionResponse:
    return CompletionResponse(message=Message.assistant("Hello"))


class CountingHook(Hook):
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    async def after_session_load(self, namespace: Namespace, session: Session) -> None:
        self.counts["after_session_load"] += 1

    async def before_provider_call(self, request: CompletionRequest) -> None:
        self.counts["before_provider_call"] += 1

    async def after_provider_call(self, response: CompletionResponse) -> None:
        self.counts["after_provider_call"] += 1

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        self.counts["before_tool_call"] += 1
        return None

    async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult | None:
        self.counts["after_tool_call"] += 1
        return None

    async def before_session_save(self, namespace: Namespace, session: Session) -> None:
        self.counts["before_session_save"] += 1


class AppendHook(Hook):
    def __init__(self, suffix: str) -> None:
        self.suffix = suffix

    async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult | None:
        return result.model_copy(update={"content": f"{result.content}:{self.suffix}"})


async def run_all(hooks: HookRegistry) -> tuple[ToolCall, ToolResult]:
    session = Session(namespace=NS)
    await hooks.after_session_load(NS, session)
    await hooks.before_provider_call(request())
    await hooks.after_provider_call(response())
    call = await hooks.before_tool_call(NS, ToolCall(id="c1", name="echo", arguments={}))
    result = await hooks.after_tool_call(call, ToolResult(call_id="c1", content="base"))
    await hooks.before_session_save(NS, session)
    return call, result


# -- the crate's tests ------------------------------------------------------


@pytest.mark.anyio
async def test_dispatch_calls_all_lifecycle_points() -> None:
    hook = CountingHook()
    hooks = HookRegistry()
    hooks.register(hook)
    await run_all(hooks)
    assert hook.counts == {
        "after_session_load": 1,
        "before_provider_call": 1,
        "after_provider_call": 1,
        "before_tool_call": 1,
        "after_tool_call": 1,
        "before_session_save": 1,
    }


@pytest.mark.anyio
async def test_modifying_hook_alters_request() -> None:
    class ZeroTemperature(Hook):
        async def before_provider_call(self, request: CompletionRequest) -> None:
            request.temperature = 0.0

    hooks = HookRegistry([ZeroTemperature()])
    req = request(0.7)
    await hooks.before_provider_call(req)
    assert req.temperature == 0.0


@pytest.mark.anyio
async def test_multiple_hooks_compose_in_order() -> None:
    hooks = HookRegistry([AppendHook("first"), AppendHook("second")])
    _, result = await run_all(hooks)
    assert result.content == "base:first:second"
    assert result.call_id == "c1"


@pytest.mark.anyio
async def test_empty_registry_is_noop() -> None:
    hooks = HookRegistry()
    assert len(hooks) == 0
    assert not hooks
    req = request(0.5)
    await hooks.before_provider_call(req)
    assert req.temperature == 0.5
    call, result = await run_all(hooks)
    assert call == ToolCall(id="c1", name="echo", arguments={})
    assert result == ToolResult(call_id="c1", content="base")


# -- before_tool_call: replace, keep or deny -------------------------------------


class RenameHook(Hook):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        if call.name == self.old:
            return call.model_copy(update={"name": self.new})
        return None


class DenyHook(Hook):
    def __init__(self, name: str) -> None:
        self.name = name

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        if call.name == self.name:
            raise ToolCallDenied(f"Tool call '{call.name}' was denied by the user.")
        return None


@pytest.mark.anyio
async def test_before_tool_call_replacements_compose() -> None:
    class AddArgument(Hook):
        async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
            return call.model_copy(update={"arguments": {**call.arguments, "cwd": namespace.key}})

    hooks = HookRegistry([RenameHook("exec", "shell"), AddArgument()])
    call = await hooks.before_tool_call(NS, ToolCall(id="c1", name="exec", arguments={"cmd": "ls"}))
    # The second hook sees the first one's rename.
    assert call == ToolCall(id="c1", name="shell", arguments={"cmd": "ls", "cwd": "acme:alice"})


@pytest.mark.anyio
async def test_before_tool_call_returning_none_keeps_the_call() -> None:
    original = ToolCall(id="c1", name="read", arguments={"path": "a"})
    hooks = HookRegistry([RenameHook("exec", "shell"), CountingHook()])
    assert await hooks.before_tool_call(NS, original) is original


@pytest.mark.anyio
async def test_denial_stops_at_the_first_refusal() -> None:
    later = CountingHook()
    hooks = HookRegistry([DenyHook("delete"), later])
    with pytest.raises(ToolCallDenied) as info:
        await hooks.before_tool_call(NS, ToolCall(id="c1", name="delete", arguments={}))
    assert info.value.reason == "Tool call 'delete' was denied by the user."
    assert str(info.value) == "Tool call 'delete' was denied by the user."
    assert later.counts["before_tool_call"] == 0

    # Other calls pass through both hooks.
    await hooks.before_tool_call(NS, ToolCall(id="c2", name="read", arguments={}))
    assert later.counts["before_tool_call"] == 1


@pytest.mark.anyio
async def test_denial_sees_the_earlier_hooks_changes() -> None:
    hooks = HookRegistry([RenameHook("rm", "delete"), DenyHook("delete")])
    with pytest.raises(ToolCallDenied, match="'delete'"):
        await hooks.before_tool_call(NS, ToolCall(id="c1", name="rm", arguments={}))


def test_tool_call_denied_is_an_orra_error() -> None:
    assert issubclass(ToolCallDenied, OrraError)


# -- the other points ----------------------------------------------------------------


@pytest.mark.anyio
async def test_after_tool_call_can_redact() -> None:
    class Redact(Hook):
        async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult | None:
            if "secret" not in result.content:
                return None
            return result.model_copy(
                update={"content": result.content.replace("secret", "[REDACTED]")}
            )

    hooks = HookRegistry([Redact()])
    call = ToolCall(id="c1", name="t")
    redacted = await hooks.after_tool_call(
        call, ToolResult(call_id="c1", content="the secret is 42")
    )
    assert redacted.content == "the [REDACTED] is 42"
    plain = ToolResult(call_id="c1", content="nothing here")
    assert await hooks.after_tool_call(call, plain) is plain


@pytest.mark.anyio
async def test_session_hooks_see_and_change_the_session() -> None:
    seen: list[tuple[Namespace, int]] = []

    class Remember(Hook):
        async def after_session_load(self, namespace: Namespace, session: Session) -> None:
            seen.append((namespace, session.message_count))

        async def before_session_save(self, namespace: Namespace, session: Session) -> None:
            session.metadata["saved_by"] = "Remember"

    hooks = HookRegistry([Remember()])
    session = Session(namespace=NS)
    session.push_message(Message.user("hi"))
    await hooks.after_session_load(NS, session)
    await hooks.before_session_save(NS, session)
    assert seen == [(NS, 1)]
    assert session.metadata == {"saved_by": "Remember"}


@pytest.mark.anyio
async def test_after_provider_call_observes_in_order() -> None:
    order: list[str] = []

    class Observe(Hook):
        def __init__(self, label: str) -> None:
            self.label = label

        async def after_provider_call(self, response: CompletionResponse) -> None:
            order.append(f"{self.label}:{response.message.content}")

    hooks = HookRegistry()
    hooks.register(Observe("a"))
    hooks.register(Observe("b"))
    assert len(hooks) == 2
    assert hooks
    await hooks.after_provider_call(response())
    assert order == ["a:Hello", "b:Hello"]


@pytest.mark.anyio
async def test_base_hook_is_a_no_op() -> None:
    hook = Hook()
    session = Session(namespace=NS)
    req = request(0.3)
    call = ToolCall(id="c", name="t")
    result = ToolResult(call_id="c", content="x")
    await hook.after_session_load(NS, session)
    await hook.before_provider_call(req)
    await hook.after_provider_call(response())
    assert await hook.before_tool_call(NS, call) is None
    assert await hook.after_tool_call(call, result) is None
    await hook.before_session_save(NS, session)
    assert req.temperature == 0.3
    assert session.metadata == {}
    assert session.messages == []
