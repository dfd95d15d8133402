"""The agent loop: orra's runtime tests (spec §2A.9) plus one test per fix."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from orra_di.context import ContextBudget
from orra_di.errors import MaxTurnsExceeded, NamespaceError, ProviderError, SessionBusyError
from orra_di.hook import Hook, HookRegistry, ToolCallDenied
from orra_di.message import Message, Role, ToolCall, ToolResult, VendorData
from orra_di.namespace import Namespace
from orra_di.policy import PolicyRegistry, ToolPolicy
from orra_di.provider import (
    CompletionRequest,
    CompletionResponse,
    FinishReason,
    StreamDone,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)
from orra_di.runtime import (
    INTERRUPTED,
    RunFinished,
    Runtime,
    RuntimeConfig,
    ToolCallCompleted,
    ToolCallStarted,
    TurnCompleted,
)
from orra_di.session import Session
from orra_di.stores.memory import InMemoryStore
from orra_di.testing import ScriptedProvider, call, reply, tool_calls
from orra_di.tool import ToolContext, tool

pytestmark = pytest.mark.anyio

NS = Namespace("test")


@tool
def uppercase(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


def runtime(
    script: Any, *, store: InMemoryStore | None = None, **kwargs: Any
) -> tuple[Runtime, ScriptedProvider, InMemoryStore]:
    provider = ScriptedProvider(script)
    store = store or InMemoryStore()
    config = kwargs.pop("config", None)
    return Runtime(provider, store, config=config, **kwargs), provider, store


async def stored(store: InMemoryStore, ns: Namespace = NS) -> list[Message]:
    session = await store.load(ns)
    assert session is not None
    return session.messages


# -- ported from orra -------------------------------------------------------


async def test_simple_conversation_no_tools() -> None:
    rt, _, _ = runtime(
        [reply("Hello! How can I help?", usage=Usage(input_tokens=10, output_tokens=8))]
    )
    result = await rt.run(NS, "Hi")
    assert result.final_message.content == "Hello! How can I help?"
    assert len(result.turns) == 1
    assert result.total_usage.total_tokens == 18


async def test_conversation_with_tool_call() -> None:
    rt, _, _ = runtime(
        [
            tool_calls(
                call("uppercase", {"text": "hello"}), usage=Usage(input_tokens=20, output_tokens=10)
            ),
            reply("Result: HELLO", usage=Usage(input_tokens=20, output_tokens=15)),
        ],
        tools=[uppercase],
    )
    result = await rt.run(NS, "shout hello")
    assert len(result.turns) == 2
    assert [r.content for r in result.turns[0].tool_results] == ["HELLO"]
    assert not result.turns[0].tool_results[0].is_error
    assert (result.total_usage.input_tokens, result.total_usage.output_tokens) == (40, 25)


async def test_unknown_tool_returns_error_result() -> None:
    rt, _, _ = runtime([tool_calls(call("nonexistent")), reply("ok")])
    result = await rt.run(NS, "go")
    (res,) = result.turns[0].tool_results
    assert res.content == "unknown tool: nonexistent"
    assert res.is_error


async def test_max_turns_exceeded_saves_and_leaves_no_open_call() -> None:
    rt, _, store = runtime(
        lambda _req: tool_calls(call("uppercase", {"text": "x"})),
        tools=[uppercase],
        config=RuntimeConfig(max_turns=3),
    )
    with pytest.raises(MaxTurnsExceeded, match=r"max turns \(3\) exceeded"):
        await rt.run(NS, "loop")
    messages = await stored(store)
    assert len(messages) == 1 + 3 * 2
    assert messages[-1].tool_results


async def test_session_persists_across_runs() -> None:
    store = InMemoryStore()
    first, _, _ = runtime([reply("one")], store=store)
    await first.run(NS, "a")
    assert len(await stored(store)) == 2
    second, provider, _ = runtime([reply("two")], store=store)
    await second.run(NS, "b")
    assert [m.content for m in await stored(store)] == ["a", "one", "b", "two"]
    assert [m.content for m in provider.requests[0].messages] == ["a", "one", "b"]


async def test_system_prompt_prepended_not_stored() -> None:
    rt, provider, store = runtime([reply("hi")], config=RuntimeConfig(system_prompt="Be brief."))
    await rt.run(NS, "hello")
    sent = provider.requests[0].messages
    assert sent[0] == Message.system("Be brief.")
    assert all(m.role != Role.SYSTEM for m in await stored(store))


async def test_different_namespaces_have_isolated_sessions() -> None:
    rt, _, store = runtime([reply("for alice"), reply("for bob")])
    alice, bob = Namespace("acme", "alice"), Namespace("acme", "bob")
    await rt.run(alice, "I am alice")
    await rt.run(bob, "I am bob")
    assert [m.content for m in await stored(store, alice)] == ["I am alice", "for alice"]
    assert [m.content for m in await stored(store, bob)] == ["I am bob", "for bob"]


async def test_policy_filters_tools_sent_to_provider() -> None:
    @tool
    def read() -> str:
        """Read."""
        return "r"

    @tool
    def write() -> str:
        """Write."""
        return "w"

    policies = PolicyRegistry()
    restricted = Namespace("restricted")
    policies.set_policy(restricted, ToolPolicy.allow_list(["read"]))
    rt, provider, _ = runtime([reply("ok")], tools=[read, write], policies=policies)
    await rt.run(restricted, "go")
    assert [d.name for d in provider.requests[0].tools] == ["read"]


def _gate(n: int) -> tuple[Any, list[str]]:
    """A tool that only finishes once all ``n`` calls are running: proof of concurrency."""
    started: list[str] = []
    everyone = anyio.Event()

    @tool
    async def slow(name: str) -> str:
        """Wait for the others."""
        started.append(name)
        if len(started) == n:
            everyone.set()
        with anyio.fail_after(5):
            await everyone.wait()
        return f"done:{name}"

    return slow, started


async def test_parallel_execution_runs_calls_concurrently_in_call_order() -> None:
    slow, _ = _gate(3)
    calls = [call("slow", {"name": n}) for n in ("slow_a", "slow_b", "slow_c")]
    rt, _, _ = runtime([tool_calls(*calls), reply("done")], tools=[slow])
    result = await rt.run(NS, "go")
    assert [r.content for r in result.turns[0].tool_results] == [
        "done:slow_a",
        "done:slow_b",
        "done:slow_c",
    ]
    assert [r.call_id for r in result.turns[0].tool_results] == [c.id for c in calls]


async def test_sequential_execution_when_disabled() -> None:
    running = 0
    peak = 0

    @tool
    async def step(name: str) -> str:
        """One at a time."""
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.lowlevel.checkpoint()
        running -= 1
        return name

    calls = [call("step", {"name": "a"}), call("step", {"name": "b"})]
    rt, _, _ = runtime(
        [tool_calls(*calls), reply("ok")],
        tools=[step],
        config=RuntimeConfig(parallel_tool_execution=False),
    )
    result = await rt.run(NS, "go")
    assert peak == 1
    assert [r.content for r in result.turns[0].tool_results] == ["a", "b"]


async def test_parallel_one_error_doesnt_block_others() -> None:
    @tool
    async def maybe(fail: bool) -> str:
        """Fail on demand."""
        await anyio.lowlevel.checkpoint()
        if fail:
            raise RuntimeError("boom")
        return "ok"

    calls = [call("maybe", {"fail": f}) for f in (False, True, False)]
    rt, _, _ = runtime([tool_calls(*calls), reply("done")], tools=[maybe])
    results = (await rt.run(NS, "go")).turns[0].tool_results
    assert [r.is_error for r in results] == [False, True, False]
    assert "boom" in results[1].content
    assert results[1].content.startswith("execution failed:")


async def test_parallel_results_maintain_call_id_ordering() -> None:
    first_may_finish = anyio.Event()

    @tool
    async def ordered(name: str) -> str:
        """The first call finishes last."""
        if name == "first":
            with anyio.fail_after(5):
                await first_may_finish.wait()
        else:
            first_may_finish.set()
        return name

    calls = [call("ordered", {"name": "first"}), call("ordered", {"name": "second"})]
    rt, _, _ = runtime([tool_calls(*calls), reply("ok")], tools=[ordered])
    results = (await rt.run(NS, "go")).turns[0].tool_results
    assert [r.content for r in results] == ["first", "second"]


class Counting(Hook):
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def _hit(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    async def after_session_load(self, namespace: Namespace, session: Session) -> None:
        self._hit("after_session_load")

    async def before_provider_call(self, request: CompletionRequest) -> None:
        self._hit("before_provider_call")

    async def after_provider_call(self, response: CompletionResponse) -> None:
        self._hit("after_provider_call")

    async def before_session_save(self, namespace: Namespace, session: Session) -> None:
        self._hit("before_session_save")


async def test_hooks_called_during_run() -> None:
    hook = Counting()
    rt, _, _ = runtime([reply("ok")], hooks=[hook])
    await rt.run(NS, "go")
    assert hook.counts == {
        "after_session_load": 1,
        "before_provider_call": 1,
        "after_provider_call": 1,
        "before_session_save": 1,
    }


async def test_hook_modifies_provider_request() -> None:
    class Cold(Hook):
        async def before_provider_call(self, request: CompletionRequest) -> None:
            request.temperature = 0.0

    rt, provider, _ = runtime([reply("ok")], hooks=[Cold()], config=RuntimeConfig(temperature=0.7))
    await rt.run(NS, "go")
    assert provider.requests[0].temperature == 0.0


async def test_hook_modifies_tool_result() -> None:
    class Redact(Hook):
        async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult:
            return result.model_copy(
                update={"content": result.content.replace("secret", "[REDACTED]")}
            )

    @tool
    def leak() -> str:
        """Leak."""
        return "the secret is 42"

    rt, _, store = runtime([tool_calls(call("leak")), reply("ok")], tools=[leak], hooks=[Redact()])
    result = await rt.run(NS, "go")
    assert result.turns[0].tool_results[0].content == "the [REDACTED] is 42"
    assert (await stored(store))[2].tool_results[0].content == "the [REDACTED] is 42"


async def test_run_streaming_with_scripted_provider() -> None:
    provider = ScriptedProvider([reply("Hello world!", usage=Usage(input_tokens=10))], chunk_size=5)
    rt = Runtime(provider, InMemoryStore())
    async with rt.run_streaming(NS, "hi") as events:
        deltas = [e.text async for e in events if hasattr(e, "text")]
    assert "".join(deltas) == "Hello world!"
    assert events.result is not None
    assert events.result.final_message.content == "Hello world!"
    assert events.result.total_usage.input_tokens == 10


async def test_run_streaming_falls_back_for_a_provider_without_stream() -> None:
    class Plain:
        async def complete(self, request: CompletionRequest) -> CompletionResponse:
            return reply("plain answer")

    rt = Runtime(Plain(), InMemoryStore())
    async with rt.run_streaming(NS, "hi") as events:
        kinds = [type(e).__name__ async for e in events]
    assert kinds == ["TextDelta", "TurnCompleted", "RunFinished"]


# -- fixes -------------------------------------------------------------------


async def test_policy_is_enforced_when_a_hidden_tool_is_called() -> None:
    ran = False

    @tool
    def admin() -> str:
        """Dangerous."""
        nonlocal ran
        ran = True
        return "done"

    policies = PolicyRegistry()
    policies.set_policy(NS, ToolPolicy.deny_list(["admin"]))
    rt, provider, _ = runtime(
        [tool_calls(call("admin")), reply("ok")], tools=[admin], policies=policies
    )
    result = await rt.run(NS, "go")
    assert provider.requests[0].tools == []
    (res,) = result.turns[0].tool_results
    assert res.is_error and "not allowed" in res.content
    assert not ran


async def test_provider_failure_keeps_every_step_already_done() -> None:
    rt, _, store = runtime(
        [tool_calls(call("uppercase", {"text": "a"})), ProviderError("upstream exploded")],
        tools=[uppercase],
    )
    with pytest.raises(ProviderError, match="upstream exploded"):
        await rt.run(NS, "go")
    messages = await stored(store)
    assert [m.content for m in messages[:1]] == ["go"]
    assert messages[1].tool_calls and messages[2].tool_results[0].content == "A"


async def test_cancelled_run_records_interrupted_results() -> None:
    started = anyio.Event()

    @tool
    async def forever() -> str:
        """Never ends."""
        started.set()
        await anyio.sleep_forever()
        return "unreachable"

    rt, _, store = runtime([tool_calls(call("forever")), reply("never")], tools=[forever])
    async with anyio.create_task_group() as tg:
        tg.start_soon(rt.run, NS, "go")
        await started.wait()
        tg.cancel_scope.cancel()
    messages = await stored(store)
    assert [m.content for m in messages[:1]] == ["go"]
    assert messages[-1].tool_results[0].content == INTERRUPTED
    assert messages[-1].tool_results[0].is_error


async def test_a_crashed_runs_open_call_is_answered_on_next_load() -> None:
    store = InMemoryStore()
    open_call = Message.assistant("", [call("uppercase", {"text": "a"}, id="c1")])
    await store.append(NS, [Message.user("before crash"), open_call])
    rt, provider, _ = runtime([reply("recovered")], store=store, tools=[uppercase])
    await rt.run(NS, "again")
    sent = provider.requests[0].messages
    assert sent[2].tool_results[0].call_id == "c1"
    assert sent[2].tool_results[0].content == INTERRUPTED
    assert sent[3].content == "again"


async def test_tool_calls_are_answered_whatever_the_finish_reason() -> None:
    odd = CompletionResponse(
        message=Message.assistant("", [call("uppercase", {"text": "x"})]),
        finish_reason=FinishReason.STOP,
    )
    rt, _, store = runtime([odd, reply("X it is")], tools=[uppercase])
    result = await rt.run(NS, "go")
    assert result.final_message.content == "X it is"
    assert (await stored(store))[2].tool_results[0].content == "X"


async def test_a_hanging_tool_times_out_without_stopping_the_others() -> None:
    @tool
    async def hang() -> str:
        """Hangs."""
        await anyio.sleep_forever()
        return ""

    rt, _, _ = runtime(
        [tool_calls(call("hang"), call("uppercase", {"text": "ok"})), reply("done")],
        tools=[hang, uppercase],
        config=RuntimeConfig(tool_timeout=0.05),
    )
    results = (await rt.run(NS, "go")).turns[0].tool_results
    assert results[0].is_error and "timed out" in results[0].content
    assert results[1].content == "OK"


async def test_concurrent_runs_on_one_namespace_are_serialised() -> None:
    async def answer(request: CompletionRequest) -> CompletionResponse:
        await anyio.sleep(0.001)
        last = request.messages[-1].content
        return reply(f"re:{last}")

    rt, _, store = runtime(answer)
    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(rt.run, NS, f"m{i}")
    messages = await stored(store)
    assert len(messages) == 40
    for question, answer_ in zip(messages[::2], messages[1::2], strict=True):
        assert answer_.content == f"re:{question.content}"


async def test_a_busy_session_is_refused_when_configured() -> None:
    holding = anyio.Event()
    release = anyio.Event()

    async def slow(request: CompletionRequest) -> CompletionResponse:
        holding.set()
        await release.wait()
        return reply("done")

    rt, _, store = runtime(slow, config=RuntimeConfig(busy_timeout=0))
    async with anyio.create_task_group() as tg:
        tg.start_soon(rt.run, NS, "first")
        await holding.wait()
        with pytest.raises(SessionBusyError, match="'test' is busy"):
            await rt.run(NS, "second")
        release.set()
    assert [m.content for m in await stored(store)] == ["first", "done"]


async def test_streaming_runs_tools_and_saves_like_run() -> None:
    def script() -> list[Any]:
        return [tool_calls(call("uppercase", {"text": "stream me"}, id="c1")), reply("STREAM ME")]

    streamed, _, store = runtime(script(), tools=[uppercase])
    events = []
    async with streamed.run_streaming(NS, "go") as stream:
        events = [e async for e in stream]
    kinds = [type(e) for e in events]
    assert kinds.index(ToolCallStarted) < kinds.index(ToolCallCompleted) < kinds.index(RunFinished)
    assert kinds.count(TurnCompleted) == 2
    completed = next(e for e in events if isinstance(e, ToolCallCompleted))
    assert completed.result.content == "STREAM ME"

    plain, _, plain_store = runtime(script(), tools=[uppercase])
    await plain.run(NS, "go")
    assert await stored(store) == await stored(plain_store)


async def test_streamed_arguments_that_are_not_json_become_an_input_error() -> None:
    broken = CompletionResponse(
        message=Message.assistant("", [ToolCall(id="c1", name="uppercase", arguments="{not json")]),
        finish_reason=FinishReason.TOOL_USE,
    )
    rt, _, _ = runtime([broken, reply("ok")], tools=[uppercase])
    async with rt.run_streaming(NS, "go") as events:
        async for _ in events:
            pass
    assert events.result is not None
    (res,) = events.result.turns[0].tool_results
    assert res.is_error and res.content.startswith("invalid input:")


async def test_streaming_raises_provider_errors_and_keeps_the_user_message() -> None:
    rt, _, store = runtime([ProviderError("down")])
    with pytest.raises(ProviderError, match="down"):
        async with rt.run_streaming(NS, "hello?") as events:
            async for _ in events:
                pass
    assert [m.content for m in await stored(store)] == ["hello?"]


class Watch(Hook):
    """Records what ``before_tool_call`` is asked and what ``after_tool_call`` sees."""

    def __init__(self, deny: str | None = None, rename: dict[str, str] | None = None) -> None:
        self.deny = deny
        self.rename = rename or {}
        self.asked: list[str] = []
        self.after: list[tuple[str, str, bool]] = []

    async def before_tool_call(self, namespace: Namespace, call: ToolCall) -> ToolCall | None:
        self.asked.append(call.name)
        if call.name == self.deny:
            raise ToolCallDenied(f"Tool call '{call.name}' was denied by the user.")
        if call.name in self.rename:
            return call.model_copy(update={"name": self.rename[call.name]})
        return None

    async def after_tool_call(self, call: ToolCall, result: ToolResult) -> ToolResult:
        self.after.append((call.name, result.content, result.is_error))
        return result.model_copy(update={"content": f"[seen] {result.content}"})


def guarded_tools() -> tuple[list[Any], list[str]]:
    """``read`` (allowed) and ``admin`` (denied in NS by the policy below); ``ran`` logs runs."""
    ran: list[str] = []

    @tool
    def read() -> str:
        """Read."""
        ran.append("read")
        return "r"

    @tool
    def admin() -> str:
        """Dangerous."""
        ran.append("admin")
        return "done"

    return [read, admin], ran


def deny_admin() -> PolicyRegistry:
    policies = PolicyRegistry()
    policies.set_policy(NS, ToolPolicy.deny_list(["admin"]))
    return policies


async def test_a_hook_denial_goes_through_after_tool_call_like_a_policy_refusal() -> None:
    """``after_tool_call`` sees every result, refusals too, and its replacement is stored."""
    tools, ran = guarded_tools()
    hook = Watch(deny="read")
    rt, _, store = runtime(
        [tool_calls(call("read", id="c1"), call("admin", id="c2")), reply("ok")],
        tools=tools,
        policies=deny_admin(),
        hooks=[hook],
    )
    denied, refused = (await rt.run(NS, "go")).turns[0].tool_results
    assert ran == []
    assert sorted(hook.after) == [
        ("admin", "tool 'admin' is not allowed in this session", True),
        ("read", "Tool call 'read' was denied by the user.", True),
    ]
    assert (denied.call_id, denied.content, denied.is_error) == (
        "c1",
        "[seen] Tool call 'read' was denied by the user.",
        True,
    )
    assert refused.call_id == "c2" and refused.content.startswith("[seen] ")
    assert (await stored(store))[2].tool_results == (denied, refused)


async def test_a_hook_cannot_rename_an_allowed_call_into_a_denied_tool() -> None:
    """The policy is checked again after ``before_tool_call``: the renamed call is refused."""
    tools, ran = guarded_tools()
    hook = Watch(rename={"read": "admin"})
    rt, _, _ = runtime(
        [tool_calls(call("read", id="c1")), reply("ok")],
        tools=tools,
        policies=deny_admin(),
        hooks=[hook],
    )
    (res,) = (await rt.run(NS, "go")).turns[0].tool_results
    assert ran == []
    assert res.call_id == "c1" and res.is_error
    assert res.content == "[seen] tool 'admin' is not allowed in this session"


async def test_hooks_are_never_asked_about_a_call_the_policy_refused() -> None:
    """An approval hook must not ask a human about a call that is refused anyway."""
    tools, ran = guarded_tools()
    hook = Watch()
    rt, _, _ = runtime(
        [tool_calls(call("admin", id="c1"), call("read", id="c2")), reply("ok")],
        tools=tools,
        policies=deny_admin(),
        hooks=[hook],
    )
    refused, allowed = (await rt.run(NS, "go")).turns[0].tool_results
    assert hook.asked == ["read"]
    assert ran == ["read"]
    assert refused.is_error and "not allowed" in refused.content
    assert allowed.content == "[seen] r" and not allowed.is_error


async def test_a_namespace_key_is_accepted_and_a_bad_one_is_a_namespace_error() -> None:
    rt, provider, store = runtime([reply("hi alice")])
    result = await rt.run("acme:alice", "hi")
    assert result.final_message.content == "hi alice"
    assert [m.content for m in await stored(store, Namespace("acme", "alice"))] == [
        "hi",
        "hi alice",
    ]
    for bad in ("", "acme::alice", "acme:\x07"):
        with pytest.raises(NamespaceError):
            await rt.run(bad, "hi")
        with pytest.raises(NamespaceError):
            await rt.run_with_model(bad, "hi", None)
        with pytest.raises(NamespaceError):
            async with rt.run_streaming(bad, "hi"):
                pass
    assert len(provider.requests) == 1


async def test_metadata_changed_by_hooks_is_persisted() -> None:
    class Mark(Hook):
        async def after_session_load(self, namespace: Namespace, session: Session) -> None:
            session.metadata["loaded"] = session.metadata.get("loaded", 0) + 1

        async def before_session_save(self, namespace: Namespace, session: Session) -> None:
            session.metadata["saved"] = True

    store = InMemoryStore()
    for answer in ("one", "two"):
        rt, _, _ = runtime([reply(answer)], store=store, hooks=[Mark()])
        await rt.run(NS, "go")
    session = await store.load(NS)
    assert session is not None
    assert session.metadata == {"loaded": 2, "saved": True}


async def test_a_hook_that_rewrites_messages_before_save_is_persisted() -> None:
    class Scrub(Hook):
        async def before_session_save(self, namespace: Namespace, session: Session) -> None:
            session.messages = [
                m.model_copy(update={"content": m.content.replace("card 4242", "card ****")})
                for m in session.messages
            ]

    rt, _, store = runtime([reply("noted card 4242")], hooks=[Scrub()])
    await rt.run(NS, "my card 4242")
    assert [m.content for m in await stored(store)] == ["my card ****", "noted card ****"]


async def test_tools_receive_the_calling_namespace() -> None:
    seen: list[Namespace] = []

    @tool
    def whoami(ctx: ToolContext) -> str:
        """Report the caller."""
        seen.append(ctx.namespace)
        return ctx.namespace.key

    ns = Namespace("acme", "alice")
    rt, _, _ = runtime([tool_calls(call("whoami")), reply("ok")], tools=[whoami])
    result = await rt.run(ns, "go")
    assert seen == [ns]
    assert result.turns[0].tool_results[0].content == "acme:alice"


async def test_model_override_and_default() -> None:
    rt, provider, _ = runtime([reply("a"), reply("b")], config=RuntimeConfig(model="small"))
    await rt.run(NS, "x")
    await rt.run(NS, "y", model="large")
    assert [r.model for r in provider.requests] == ["small", "large"]


async def test_requests_are_trimmed_but_the_session_keeps_everything() -> None:
    budget = ContextBudget(max_tokens=120, reserved_for_output=20)
    rt, provider, store = runtime(
        lambda _r: reply("x" * 80), config=RuntimeConfig(system_prompt="sys", context_budget=budget)
    )
    for i in range(10):
        await rt.run(NS, f"question {i}")
    last = provider.requests[-1].messages
    assert rt.window.estimate_total_tokens(last) <= budget.available_for_input
    assert last[0].role == Role.SYSTEM
    assert last[1].content == "question 0"
    assert last[-1].content == "question 9"
    assert len(await stored(store)) == 20


async def test_long_tool_output_is_truncated_to_its_share() -> None:
    @tool
    def dump() -> str:
        """Lots of output."""
        return "line\n" * 2000

    budget = ContextBudget(max_tokens=1000, reserved_for_output=0, tool_result_share=0.1)
    rt, _, _ = runtime(
        [tool_calls(call("dump")), reply("ok")],
        tools=[dump],
        config=RuntimeConfig(context_budget=budget),
    )
    (res,) = (await rt.run(NS, "go")).turns[0].tool_results
    assert "[truncated — original was 2500 tokens, limit is 100]" in res.content
    assert len(res.content) < 600


async def test_budget_follows_the_input_tokens_the_provider_reports() -> None:
    """A provider that bills twice our estimate makes the runtime trim twice as early."""
    budget = ContextBudget(max_tokens=400, reserved_for_output=0)

    def billed_double(request: CompletionRequest) -> CompletionResponse:
        estimate = rt.window.estimate_total_tokens(request.messages)
        return reply("x" * 40, usage=Usage(input_tokens=2 * estimate, output_tokens=10))

    rt, provider, _ = runtime(billed_double, config=RuntimeConfig(context_budget=budget, model="m"))
    for i in range(12):
        await rt.run(NS, f"question {i}")
    assert rt.window.scale("m") == pytest.approx(2.0)
    last = provider.requests[-1].messages
    assert 2 * rt.window.estimate_total_tokens(last) <= budget.available_for_input
    assert rt.window.estimate_total_tokens(provider.requests[5].messages) <= 200
    assert rt.window.scale("other-model") == 1.0


def test_calibration_is_a_clamped_moving_average() -> None:
    from orra_di.context import CharEstimator, ContextWindow

    window = ContextWindow(CharEstimator())
    assert window.calibrate("m", 100, 150) == pytest.approx(1.5)
    assert window.calibrate("m", 100, 250) == pytest.approx(1.5 + 0.3 * (2.5 - 1.5))
    assert window.calibrate("odd", 100, 100_000) == 4.0
    assert window.calibrate("m", 0, 10) == window.scale("m")


# -- what the runtime remembers between requests must follow what changed -------------------


@tool
def alpha() -> str:
    """First tool."""
    return "a"


@tool
def beta() -> str:
    """Second tool."""
    return "b"


@pytest.mark.anyio
async def test_the_tools_offered_follow_the_registry_and_the_policy_between_runs() -> None:
    llm = ScriptedProvider([reply("1"), reply("2"), reply("3"), reply("4")])
    rt = Runtime(llm, InMemoryStore(), tools=[alpha])
    await rt.run(NS, "one")
    rt.tools.register(beta)
    await rt.run(NS, "two")
    rt.policies.set_policy(NS, ToolPolicy.deny_list(["alpha"]))
    await rt.run(NS, "three")
    rt.tools.remove("beta")
    await rt.run(NS, "four")
    offered = [[d.name for d in r.tools] for r in llm.requests]
    assert offered == [["alpha"], ["alpha", "beta"], ["beta"], []]


@pytest.mark.anyio
async def test_a_hook_changing_the_requests_tools_in_place_changes_that_request_only() -> None:
    class DropTools(Hook):
        async def before_provider_call(self, request: CompletionRequest) -> None:
            request.tools.clear()

    llm = ScriptedProvider([reply("1"), reply("2")])
    rt = Runtime(llm, InMemoryStore(), tools=[alpha, beta], hooks=[DropTools()])
    await rt.run(NS, "one")
    rt.hooks = HookRegistry()
    await rt.run(NS, "two")
    assert [[d.name for d in r.tools] for r in llm.requests] == [[], ["alpha", "beta"]]


@pytest.mark.anyio
async def test_usage_totals_and_results_built_by_the_runtime_equal_validated_ones() -> None:
    llm = ScriptedProvider(
        [
            tool_calls(call("alpha", {}, id="c1"), usage=Usage(input_tokens=3, output_tokens=2)),
            reply("done", usage=Usage(input_tokens=5, output_tokens=1)),
        ]
    )
    result = await Runtime(llm, InMemoryStore(), tools=[alpha]).run(NS, "go")
    assert result.total_usage == Usage(input_tokens=8, output_tokens=3)
    assert (
        result.total_usage.model_dump()
        == Usage.model_validate({"input_tokens": 8, "output_tokens": 3}).model_dump()
    )
    (results,) = [t.tool_results for t in result.turns if t.tool_results]
    assert results == (ToolResult(call_id="c1", content="a"),)
    answer = Message.tool_result(results)
    assert answer == Message.model_validate(
        {"role": "user", "tool_results": [r.model_dump() for r in results]}
    )
    assert (
        answer.model_dump_json() == Message(role=Role.USER, tool_results=results).model_dump_json()
    )


class CompleteOnly:
    """A provider without ``stream``: a streaming run replays its complete answers."""

    def __init__(self, script: list[Any]) -> None:
        self.inner = ScriptedProvider(script)

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        return await self.inner.complete(request)


@pytest.mark.parametrize("streaming", [True, False], ids=["stream", "complete-only"])
async def test_streamed_events_carry_the_calls_turns_and_results(streaming: bool) -> None:
    script = [
        tool_calls(call("uppercase", {"text": "hi"}, id="c1"), text="on it"),
        reply("HI"),
    ]
    llm: Any = ScriptedProvider(script) if streaming else CompleteOnly(script)
    rt = Runtime(llm, InMemoryStore(), tools=[uppercase])
    async with rt.run_streaming(NS, "go") as stream:
        events = [e async for e in stream]
    assert stream.finished
    started = [e for e in events if isinstance(e, ToolCallStarted)]
    assert [(e.id, e.name) for e in started] == [("c1", "uppercase")]
    (completed,) = [e for e in events if isinstance(e, ToolCallCompleted)]
    assert completed.id == "c1"
    turns = [e.turn for e in events if isinstance(e, TurnCompleted)]
    assert [t.response.message.content for t in turns] == ["on it", "HI"]
    assert [t.response.finish_reason for t in turns] == [FinishReason.TOOL_USE, FinishReason.STOP]
    assert [r.content for r in turns[0].tool_results] == ["HI"]
    assert stream.result is not None
    assert stream.result.turns == tuple(turns)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["on it", "HI"]
    asked = llm.requests if streaming else llm.inner.requests
    assert [len(r.messages) for r in asked] == [1, 3]  # the run's own requests
    assert asked[0].messages[0].content == "go"


class EventScript:
    """A streaming provider that plays raw stream events, one list per call."""

    def __init__(self, *calls: list[Any]) -> None:
        self.calls = list(calls)

    async def complete(self, request: CompletionRequest) -> CompletionResponse:
        raise AssertionError("a streaming run streams")

    async def stream(self, request: CompletionRequest) -> Any:
        for event in self.calls.pop(0):
            if isinstance(event, BaseException):
                raise event
            yield event


async def test_a_streamed_turn_is_assembled_with_its_vendor_data_and_tool_use() -> None:
    signed = VendorData(vendor="anthropic", data={"thinking": "sig"})
    llm = EventScript(
        [
            ToolCallStart("c1", "uppercase"),
            ToolCallDelta("c1", '{"text": '),
            ToolCallDelta("c1", '"ab"}'),
            StreamDone(finish_reason=FinishReason.STOP, vendor_data=(signed,)),
        ],
        [TextDelta("AB"), StreamDone()],
    )
    store = InMemoryStore()
    rt = Runtime(llm, store, tools=[uppercase])
    async with rt.run_streaming(NS, "go") as stream:
        _ = [e async for e in stream]
    assert stream.result is not None
    first = stream.result.turns[0].response
    # The model sent calls: that is a tool-use turn, whatever the stream's end said.
    assert first.finish_reason == FinishReason.TOOL_USE
    saved = await stored(store)
    assert saved[1].vendor_data == (signed,)
    assert saved[1].tool_calls[0].arguments == {"text": "ab"}


async def test_a_stream_cut_before_its_end_is_a_provider_error_and_ends_the_events() -> None:
    llm = EventScript([TextDelta("half an ans")])
    rt = Runtime(llm, InMemoryStore())
    async with rt.run_streaming(NS, "go") as stream:
        assert stream.finished is False
        with pytest.raises(
            ProviderError, match=r"the stream ended before the model finished its answer$"
        ):
            _ = [e async for e in stream]
    assert stream.finished


async def test_provider_and_save_hooks_see_the_response_and_the_namespace() -> None:
    seen: list[Any] = []

    class Watch(Hook):
        async def after_provider_call(self, response: CompletionResponse) -> None:
            seen.append(response.message.content)

        async def before_session_save(self, namespace: Namespace, session: Session) -> None:
            seen.append(namespace)

    looping = [tool_calls(call("uppercase", {"text": "x"}), text="again")] * 2
    rt = Runtime(
        ScriptedProvider(looping),
        InMemoryStore(),
        tools=[uppercase],
        hooks=[Watch()],
        config=RuntimeConfig(max_turns=2),
    )
    with pytest.raises(MaxTurnsExceeded):
        await rt.run(NS, "go")
    assert seen == ["again", "again", NS]  # saved even when the turns ran out
