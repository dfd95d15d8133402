"""Tools: the crate's tests (src/tool.rs), the ordered registry and the ``@tool`` decorator."""

from __future__ import annotations

import json
import sys
import threading
from typing import Annotated, Any

import anyio
import pytest
from pydantic import BaseModel, Field

from orra_di.errors import ToolError, ToolExecutionError, ToolInputError
from orra_di.message import JsonValue
from orra_di.namespace import Namespace
from orra_di.tool import (
    FunctionTool,
    Tool,
    ToolContext,
    ToolDefinition,
    ToolRegistry,
    ToolTimedOut,
    tool,
)

CTX = ToolContext(namespace=Namespace("acme", "alice"), call_id="call_1")


class EchoTool:
    """The crate's test tool: returns its ``text`` argument."""

    @property
    def definition(self) -> ToolDefinition:
        return ToolDefinition(
            name="echo",
            description="Echoes the input text",
            input_schema={
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "required": ["text"],
            },
        )

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        text = arguments.get("text") if isinstance(arguments, dict) else None
        if not isinstance(text, str):
            raise ToolInputError("missing 'text' field")
        return text


class FailTool:
    """The crate's test tool that always fails."""

    @property
    def definition(self) -> ToolDefinition:
        return ToolDefinition(
            name="fail",
            description="Always fails",
            input_schema={"type": "object", "properties": {}},
        )

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        raise ToolExecutionError("intentional failure")


# -- the crate's tests ------------------------------------------------------


@pytest.mark.anyio
async def test_echo_tool_works() -> None:
    assert await EchoTool().execute({"text": "hello"}, CTX) == "hello"


@pytest.mark.anyio
async def test_echo_tool_invalid_input() -> None:
    with pytest.raises(ToolInputError) as info:
        await EchoTool().execute({}, CTX)
    assert str(info.value) == "invalid input: missing 'text' field"


@pytest.mark.anyio
async def test_fail_tool_returns_error() -> None:
    with pytest.raises(ToolExecutionError) as info:
        await FailTool().execute({}, CTX)
    assert str(info.value) == "execution failed: intentional failure"


def test_registry_register_and_get() -> None:
    registry = ToolRegistry()
    assert registry.get("echo") is None
    echo = EchoTool()
    registry.register(echo)
    assert registry.get("echo") is echo
    assert registry.get("missing") is None
    assert len(registry) == 1
    assert "echo" in registry
    assert "missing" not in registry


def test_registry_definitions() -> None:
    registry = ToolRegistry([EchoTool(), FailTool()])
    definitions = registry.definitions()
    assert len(definitions) == 2
    assert {d.name for d in definitions} == {"echo", "fail"}


def test_registry_remove() -> None:
    registry = ToolRegistry([EchoTool()])
    assert registry.remove("echo") is True
    assert registry.remove("echo") is False
    assert len(registry) == 0
    assert registry.get("echo") is None


def test_registry_names() -> None:
    registry = ToolRegistry()
    registry.register(EchoTool())
    registry.register(FailTool())
    assert sorted(registry.names()) == ["echo", "fail"]


def test_tool_definition_serialization() -> None:
    definition = EchoTool().definition
    data = json.loads(definition.model_dump_json())
    assert data == {
        "name": "echo",
        "description": "Echoes the input text",
        "input_schema": {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    }
    assert ToolDefinition.model_validate_json(definition.model_dump_json()) == definition


# -- the registry keeps registration order (§5.1/9) -----------------------------


def test_registry_keeps_registration_order() -> None:
    a = ToolRegistry([EchoTool(), FailTool()])
    b = ToolRegistry([FailTool(), EchoTool()])
    assert a.names() == ["echo", "fail"]
    assert [d.name for d in a.definitions()] == ["echo", "fail"]
    assert b.names() == ["fail", "echo"]
    assert [d.name for d in b.definitions()] == ["fail", "echo"]
    assert [t.definition.name for t in b] == ["fail", "echo"]


def test_registering_same_name_replaces_in_place() -> None:
    registry = ToolRegistry([EchoTool(), FailTool()])
    replacement = EchoTool()
    registry.register(replacement)
    assert len(registry) == 2
    assert registry.get("echo") is replacement
    assert registry.names() == ["echo", "fail"]


def test_registry_copy_is_independent() -> None:
    registry = ToolRegistry([EchoTool()])
    clone = registry.copy()
    clone.register(FailTool())
    assert registry.names() == ["echo"]
    assert clone.names() == ["echo", "fail"]


def test_classes_satisfy_the_tool_protocol() -> None:
    assert isinstance(EchoTool(), Tool)
    assert isinstance(FailTool(), Tool)
    assert not isinstance(object(), Tool)


# -- @tool ---------------------------------------------------------------------


@tool
def add(a: int, b: int = 2) -> int:
    """Add two numbers.

    This second paragraph is not part of the description.
    """
    return a + b


@tool
async def greet(
    name: Annotated[str, Field(description="Who to greet")],
    punctuation: str = "!",
) -> str:
    """Greet someone
    by name."""
    return f"Hello, {name}{punctuation}"


def test_decorator_builds_a_function_tool() -> None:
    assert isinstance(add, FunctionTool)
    assert isinstance(add, Tool)
    assert add.definition.name == "add"
    assert repr(add) == "FunctionTool('add')"


def test_schema_derived_from_type_hints() -> None:
    schema = add.definition.input_schema
    assert schema["type"] == "object"
    assert schema["properties"]["a"]["type"] == "integer"
    assert schema["properties"]["b"]["type"] == "integer"
    assert schema["properties"]["b"]["default"] == 2
    assert schema["required"] == ["a"]
    assert schema["additionalProperties"] is False
    assert "title" not in schema


def test_annotated_field_description_in_schema() -> None:
    props = greet.definition.input_schema["properties"]
    assert props["name"]["description"] == "Who to greet"
    assert props["name"]["type"] == "string"
    assert greet.definition.input_schema["required"] == ["name"]


def test_description_is_first_docstring_paragraph() -> None:
    assert add.definition.description == "Add two numbers."
    # Lines of the first paragraph are joined with spaces.
    assert greet.definition.description == "Greet someone by name."


def test_name_and_description_overrides() -> None:
    @tool(name="lookup", description="Look a word up.")
    def find(word: str) -> str:
        """Ignored docstring."""
        return word

    assert find.definition.name == "lookup"
    assert find.definition.description == "Look a word up."


def test_overrides_when_called_with_the_function() -> None:
    def find(word: str) -> str:
        """Ignored docstring."""
        return word

    wrapped = tool(find, name="lookup", description="Look a word up.")
    assert wrapped.definition.name == "lookup"
    assert wrapped.definition.description == "Look a word up."


def test_function_without_docstring_has_empty_description() -> None:
    @tool
    def bare(x: int) -> int:
        return x

    assert bare.definition.description == ""


@pytest.mark.anyio
async def test_sync_function_runs_in_a_worker_thread() -> None:
    seen: list[threading.Thread] = []

    @tool
    def where() -> str:
        """Report the thread."""
        seen.append(threading.current_thread())
        return "ok"

    assert await where.execute({}, CTX) == "ok"
    assert seen
    assert seen[0] is not threading.main_thread()


@pytest.mark.anyio
async def test_a_sync_tool_declared_non_blocking_runs_inline() -> None:
    seen: list[threading.Thread] = []

    @tool(blocking=False)
    def where() -> str:
        """Report the thread."""
        seen.append(threading.current_thread())
        return "ok"

    assert await where.execute({}, CTX) == "ok"
    assert seen == [threading.current_thread()]
    assert where.runs_inline


def test_only_a_sync_function_declared_non_blocking_runs_inline() -> None:
    def plain() -> str:
        return ""

    async def coroutine() -> str:
        return ""

    assert not tool(plain).runs_inline
    assert not tool(coroutine, blocking=False).runs_inline  # awaited, never in a thread


@pytest.mark.anyio
async def test_sync_tools_run_in_parallel_threads() -> None:
    """Three calls that each wait for the other two: they only finish if each has a thread."""
    import anyio

    arrived = threading.Barrier(3, timeout=30)

    @tool
    def meet(name: str) -> str:
        """Wait for the others."""
        arrived.wait()
        return name

    results: dict[str, str] = {}

    async def one(name: str) -> None:
        results[name] = await meet.execute({"name": name}, CTX)

    async with anyio.create_task_group() as tg:
        for name in "abc":
            tg.start_soon(one, name)
    assert results == {"a": "a", "b": "b", "c": "c"}


@pytest.mark.anyio
async def test_a_sync_tool_sees_the_callers_context_variables_and_raises_through() -> None:
    import contextvars

    who: contextvars.ContextVar[str] = contextvars.ContextVar("who")
    who.set("alice")

    @tool
    def whoami(fail: bool = False) -> str:
        """Report the context."""
        if fail:
            raise KeyError("nope")
        return who.get()

    assert await whoami.execute({}, CTX) == "alice"
    with pytest.raises(KeyError, match="nope"):
        await whoami.execute({"fail": True}, CTX)


@pytest.mark.anyio
async def test_a_cancelled_sync_tool_is_abandoned_and_its_thread_reused() -> None:
    import anyio

    release = threading.Event()

    @tool
    def stuck(wait: bool) -> str:
        """Block until released."""
        if wait:
            release.wait(30)
        return threading.current_thread().name

    with anyio.move_on_after(0.05) as scope:
        await stuck.execute({"wait": True}, CTX)
    assert scope.cancelled_caught  # abandoned: the caller went on
    release.set()
    assert await stuck.execute({"wait": False}, CTX)  # the pool still serves


def test_a_forked_child_runs_sync_tools_in_threads_of_its_own() -> None:
    """The worker pool is per process: a child forked after the parent used it has
    none of its threads, and must not queue work to them (it would never run)."""
    import multiprocessing

    import anyio

    @tool
    def where() -> str:
        """Report the thread."""
        return threading.current_thread().name

    def run_one() -> None:
        name = anyio.run(where.execute, {}, CTX)
        raise SystemExit(0 if name != threading.main_thread().name else 1)

    run_one_in_parent = anyio.run(where.execute, {}, CTX)
    assert run_one_in_parent != threading.main_thread().name
    child = multiprocessing.get_context("fork").Process(target=run_one)
    child.start()
    child.join(60)
    if child.exitcode is None:
        child.kill()
        child.join()
    assert child.exitcode == 0


@pytest.mark.anyio
async def test_async_function_is_awaited() -> None:
    assert await greet.execute({"name": "Ada"}, CTX) == "Hello, Ada!"
    assert await greet.execute({"name": "Ada", "punctuation": "?"}, CTX) == "Hello, Ada?"


@pytest.mark.anyio
async def test_sync_function_with_defaults() -> None:
    assert await add.execute({"a": 1}, CTX) == "3"
    assert await add.execute({"a": 1, "b": 10}, CTX) == "11"


@pytest.mark.anyio
async def test_missing_argument_is_invalid_input_naming_the_field() -> None:
    with pytest.raises(ToolInputError) as info:
        await add.execute({"b": 1}, CTX)
    text = str(info.value)
    assert text.startswith("invalid input:")
    assert "a: Field required" in text
    assert isinstance(info.value, ToolError)


@pytest.mark.anyio
async def test_wrong_type_is_invalid_input_naming_the_field() -> None:
    with pytest.raises(ToolInputError) as info:
        await add.execute({"a": "not a number"}, CTX)
    text = str(info.value)
    assert text.startswith("invalid input: a:")
    assert "integer" in text


@pytest.mark.anyio
async def test_unknown_extra_fields_are_refused() -> None:
    with pytest.raises(ToolInputError) as info:
        await add.execute({"a": 1, "c": 3}, CTX)
    assert str(info.value).startswith("invalid input:")
    assert "c: Extra inputs are not permitted" in str(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize("arguments", [[1, 2], "a=1", 5, True])
async def test_non_object_arguments_are_refused(arguments: Any) -> None:
    with pytest.raises(ToolInputError) as info:
        await add.execute(arguments, CTX)
    assert str(info.value).startswith("invalid input: expected a JSON object of arguments")


@pytest.mark.anyio
async def test_null_arguments_mean_no_arguments() -> None:
    @tool
    def ping(reply: str = "pong") -> str:
        """Ping."""
        return reply

    assert await ping.execute(None, CTX) == "pong"
    with pytest.raises(ToolInputError, match="a: Field required"):
        await add.execute(None, CTX)


@pytest.mark.anyio
async def test_tool_context_is_injected_and_hidden() -> None:
    @tool
    async def whoami(greeting: str, ctx: ToolContext) -> str:
        """Say who is calling."""
        return f"{greeting} {ctx.namespace.key} ({ctx.call_id})"

    schema = whoami.definition.input_schema
    assert list(schema["properties"]) == ["greeting"]
    assert schema["required"] == ["greeting"]
    assert "$defs" not in schema
    assert await whoami.execute({"greeting": "hi"}, CTX) == "hi acme:alice (call_1)"
    # The model cannot supply (forge) the context.
    with pytest.raises(ToolInputError, match="ctx: Extra inputs are not permitted"):
        await whoami.execute({"greeting": "hi", "ctx": {"namespace": "other"}}, CTX)


@pytest.mark.anyio
async def test_optional_or_annotated_tool_context_is_injected_and_hidden() -> None:
    @tool
    def optional(q: str, context: ToolContext | None = None) -> str:
        """Optional context."""
        return f"{q}@{context.namespace if context else '-'}"

    @tool
    def annotated(q: str, context: Annotated[ToolContext, "the caller"]) -> str:
        """Annotated context."""
        return f"{q}@{context.namespace}"

    for t in (optional, annotated):
        assert list(t.definition.input_schema["properties"]) == ["q"]
        assert "$defs" not in t.definition.input_schema
        assert await t.execute({"q": "x"}, CTX) == "x@acme:alice"


class _Point(BaseModel):
    x: int
    y: int


@pytest.mark.anyio
async def test_non_string_return_values_are_json_encoded() -> None:
    @tool
    def as_dict() -> dict[str, Any]:
        """Dict."""
        return {"city": "Zürich", "n": 1}

    @tool
    def as_list() -> list[int]:
        """List."""
        return [1, 2, 3]

    @tool
    def as_model() -> _Point:
        """Model."""
        return _Point(x=1, y=2)

    @tool
    def as_none() -> None:
        """None."""

    @tool
    def as_text() -> str:
        """Text stays text."""
        return '{"already": "json"}'

    assert json.loads(await as_dict.execute({}, CTX)) == {"city": "Zürich", "n": 1}
    # Non-ASCII is kept as is, not escaped.
    assert "Zürich" in await as_dict.execute({}, CTX)
    assert await as_list.execute({}, CTX) == "[1, 2, 3]"
    assert json.loads(await as_model.execute({}, CTX)) == {"x": 1, "y": 2}
    assert await as_none.execute({}, CTX) == "null"
    assert await as_text.execute({}, CTX) == '{"already": "json"}'
    assert await add.execute({"a": 40}, CTX) == "42"


@pytest.mark.anyio
async def test_nested_model_arguments_are_validated() -> None:
    @tool
    def norm(point: _Point) -> int:
        """Manhattan norm."""
        return abs(point.x) + abs(point.y)

    assert await norm.execute({"point": {"x": -3, "y": 4}}, CTX) == "7"
    with pytest.raises(ToolInputError, match=r"point\.y: Field required"):
        await norm.execute({"point": {"x": 1}}, CTX)


@pytest.mark.anyio
async def test_parameters_named_like_basemodel_attributes() -> None:
    # ``schema``, ``json``, ``model_config`` and ``_x`` are reserved or private
    # names on a pydantic model; they still work as tool parameters.
    @tool
    def query(schema: str, json: bool = False, model_config: int = 1, _x: int = 0) -> str:
        """Query."""
        return f"{schema}|{json}|{model_config}|{_x}"

    props = query.definition.input_schema["properties"]
    assert list(props) == ["schema", "json", "model_config", "_x"]
    assert query.definition.input_schema["required"] == ["schema"]
    assert await query.execute({"schema": "public", "_x": 5}, CTX) == "public|False|1|5"
    with pytest.raises(ToolInputError, match="schema: Field required"):
        await query.execute({}, CTX)


@pytest.mark.anyio
async def test_tool_errors_raised_by_the_function_propagate() -> None:
    @tool
    async def explode() -> str:
        """Always fails."""
        raise ToolExecutionError("boom")

    with pytest.raises(ToolExecutionError) as info:
        await explode.execute({}, CTX)
    assert str(info.value) == "execution failed: boom"


def test_var_args_cannot_be_described() -> None:
    def variadic(*args: int) -> int:
        return sum(args)

    with pytest.raises(TypeError, match=r"\*args/\*\*kwargs"):
        tool(variadic)


@pytest.mark.anyio
async def test_calling_the_tool_directly() -> None:
    assert await add(a=1, b=1) == 2
    assert await greet(name="Bo") == "Hello, Bo!"


def test_function_tools_in_a_registry() -> None:
    registry = ToolRegistry([add, greet])
    assert registry.names() == ["add", "greet"]
    assert registry.get("greet") is greet


def test_a_tool_context_takes_a_namespace_key() -> None:
    assert ToolContext("acme:alice", "c1") == ToolContext(Namespace("acme", "alice"), "c1")
    assert ToolContext("acme:alice").namespace.segments == ("acme", "alice")


# -- the per-tool timeout of a blocking tool: a deadline, not a cancel scope ----------------


def held_until(release: threading.Event, answer: str) -> FunctionTool:
    def held() -> str:
        """Blocks its worker thread until released (at most 5 s)."""
        release.wait(5)
        return answer

    return FunctionTool(held)


@pytest.mark.anyio
async def test_a_blocking_tool_past_its_limit_times_out_and_the_run_goes_on() -> None:
    release = threading.Event()
    try:
        with pytest.raises(ToolTimedOut):
            await held_until(release, "late").execute_within({}, CTX, 0.05)
    finally:
        release.set()


@pytest.mark.anyio
async def test_calls_waiting_together_each_keep_their_own_deadline() -> None:
    """One timer serves every waiting call: the earliest deadline fails its call
    only, and a later one still fires after an earlier call answered."""
    slow, quick, late = threading.Event(), threading.Event(), threading.Event()
    outcomes: dict[str, str] = {}
    hasty_done = anyio.Event()

    async def run(name: str, release: threading.Event, limit: float) -> None:
        try:
            outcomes[name] = await held_until(release, name).execute_within({}, CTX, limit)
        except ToolTimedOut:
            outcomes[name] = "timed out"
        if name == "hasty":
            hasty_done.set()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "patient", slow, 30.0)
            tg.start_soon(run, "answered", quick, 20.0)
            tg.start_soon(run, "hasty", late, 0.05)
            quick.set()
            await hasty_done.wait()
            slow.set()
    finally:
        slow.set(), quick.set(), late.set()
    assert outcomes == {"answered": "answered", "hasty": "timed out", "patient": "patient"}


@pytest.mark.anyio
async def test_a_tools_own_timeout_error_is_its_failure_not_the_limit() -> None:
    def flaky() -> str:
        """Times out on its own."""
        raise TimeoutError("the socket timed out")

    with pytest.raises(TimeoutError, match="socket"):
        await FunctionTool(flaky).execute_within({}, CTX, 5.0)


@pytest.mark.anyio
async def test_a_cancelled_wait_abandons_the_thread_and_keeps_no_deadline() -> None:
    release = threading.Event()
    try:
        with anyio.move_on_after(0.05) as scope:
            await held_until(release, "late").execute_within({}, CTX, 30.0)
    finally:
        release.set()
    assert scope.cancelled_caught
    module = sys.modules["orra_di.tool"]  # ``orra_di.tool`` the attribute is the decorator
    assert all(w._deadlines == {} for w in module._waiters.values())


def test_a_bad_tool_is_refused_where_it_is_declared() -> None:
    """What a vendor would refuse at the first run (a 400 far from the cause), or what
    cannot be described, fails at @tool with what to do."""
    with pytest.raises(ValueError, match="1 to 64 letters, digits"):
        tool(name="bad name!")(lambda: "x")
    with pytest.raises(ValueError, match="'<lambda>'"):
        tool(lambda: "x")
    with pytest.raises(TypeError, match="no Python signature"):
        FunctionTool(int, name="to_int")

    def uses_unknown(x: Undefined) -> str:  # type: ignore[name-defined]  # noqa: F821
        return "x"

    with pytest.raises(TypeError, match="'Undefined' cannot be resolved"):
        tool(uses_unknown)

    def echo(text: str) -> str:
        """Echo."""
        return text

    with pytest.raises(TypeError, match=r"schema_extra names 'txt'.*text"):
        FunctionTool(echo, schema_extra={"txt": {"enum": ["a"]}})


# -- an idle loop waits a moment for a quick tool's thread (the handoff) ---------------------


def _tool_module() -> Any:
    return sys.modules["orra_di.tool"]  # ``orra_di.tool`` the attribute is the decorator


def _count_handoffs(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records, per handoff waited on, whether the answer came within the wait."""
    module = _tool_module()
    waited: list[bool] = []

    class Counted(module._Handoff):  # type: ignore[misc,name-defined]
        def wait(self, seconds: float) -> Any:
            outcome = super().wait(seconds)
            waited.append(outcome is not None)
            return outcome

    monkeypatch.setattr(module, "_Handoff", Counted)
    return waited


@pytest.mark.anyio
async def test_an_idle_loop_takes_a_quick_tools_answer_from_its_thread_without_a_wake_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    waited = _count_handoffs(monkeypatch)
    loop = asyncio.get_running_loop()
    wakes: list[object] = []
    original = loop.call_soon_threadsafe

    def counting(*args: Any, **kwargs: Any) -> Any:
        wakes.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(loop, "call_soon_threadsafe", counting)
    seen: list[threading.Thread] = []

    @tool
    def where() -> str:
        """Report the thread."""
        seen.append(threading.current_thread())
        return "ok"

    for _ in range(3):  # a first call may start the thread, slower than the wait
        assert await where.execute_within({}, CTX, 30.0) == "ok"
    assert seen[-1] is not threading.current_thread()  # still a worker thread
    assert True in waited
    assert len(wakes) < 3  # at least one answer came without waking the loop


@pytest.mark.anyio
async def test_a_quick_tools_failure_comes_through_the_handoff_as_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waited = _count_handoffs(monkeypatch)

    @tool
    def broken() -> str:
        """Fails at once."""
        raise LookupError("no such key: k")

    for _ in range(3):
        with pytest.raises(LookupError, match="no such key: k"):
            await broken.execute_within({}, CTX, 30.0)
    assert True in waited


@pytest.mark.anyio
async def test_a_tool_slower_than_the_wait_is_answered_later_and_not_waited_for_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waited = _count_handoffs(monkeypatch)
    module = _tool_module()

    @tool
    def slow() -> str:
        """Takes longer than the loop waits."""
        threading.Event().wait(module.QUICK_WAIT * 20)
        return "late but here"

    assert await slow.execute_within({}, CTX, 30.0) == "late but here"
    assert waited == [False]
    assert await slow.execute_within({}, CTX, 30.0) == "late but here"
    assert waited == [False]  # the next calls go straight to the future
    assert slow._pace.skip == slow._pace.skip_after_miss - 1


@pytest.mark.anyio
async def test_the_wait_counts_against_the_tools_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    _count_handoffs(monkeypatch)
    release = threading.Event()
    try:
        with pytest.raises(ToolTimedOut):
            await held_until(release, "late").execute_within({}, CTX, 0.0001)
    finally:
        release.set()


@pytest.mark.anyio
async def test_a_loop_with_other_work_ready_does_not_wait_for_a_tools_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import asyncio

    waited = _count_handoffs(monkeypatch)
    other_ran: list[bool] = []
    asyncio.get_running_loop().call_soon(other_ran.append, True)  # ready to run now

    @tool
    def quick() -> str:
        """Answers at once."""
        return "ok"

    assert await quick.execute_within({}, CTX, 30.0) == "ok"
    assert waited == []  # the loop went on to the other work
    assert other_ran == [True]
