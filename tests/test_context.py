"""Context budget: the crate's tests (src/context.rs) and the fixed trimming (§5.1/4, §5.6/26)."""

from __future__ import annotations

import copy
import gc
import pickle

import pytest

from orra_di.context import CharEstimator, ContextBudget, ContextMemory, ContextWindow, Tokenizer
from orra_di.errors import ConfigurationError
from orra_di.message import Message, ToolCall, ToolResult
from orra_di.namespace import Namespace
from orra_di.session import History, Session
from orra_di.stores.memory import InMemoryStore
from orra_di.tool import ToolDefinition


def window(available: int, *, share: float = 0.3) -> ContextWindow:
    """A window whose input budget is exactly ``available`` tokens."""
    budget = ContextBudget(
        max_tokens=available + 10, reserved_for_output=10, tool_result_share=share
    )
    assert budget.available_for_input == available
    return ContextWindow(CharEstimator(), budget)


def tool_exchange(call_id: str, arguments: str, result: str) -> list[Message]:
    return [
        Message.assistant("", [ToolCall(id=call_id, name="search", arguments={"q": arguments})]),
        Message.tool_result([ToolResult(call_id=call_id, content=result)]),
    ]


class CountingTokenizer:
    def __init__(self) -> None:
        self.calls = 0
        self.inner = CharEstimator()

    def count_tokens(self, text: str) -> int:
        self.calls += 1
        return self.inner.count_tokens(text)


# -- the crate's tests ------------------------------------------------------


def test_char_estimator_basic() -> None:
    est = CharEstimator()
    assert est.chars_per_token == 4
    assert est.count_tokens("") == 0
    assert est.count_tokens("a") == 1
    assert est.count_tokens("abcd") == 1
    assert est.count_tokens("abcde") == 2
    assert est.count_tokens("hello") == 2


def test_budget_available_for_input() -> None:
    budget = ContextBudget()
    assert budget.max_tokens == 200_000
    assert budget.reserved_for_output == 4_096
    assert budget.tool_result_share == 0.3
    assert budget.available_for_input == 195_904


def test_budget_max_tool_result_tokens() -> None:
    budget = ContextBudget(max_tokens=100, reserved_for_output=20, tool_result_share=0.3)
    assert budget.available_for_input == 80
    assert budget.max_tool_result_tokens == 24


def test_estimate_simple_message_tokens() -> None:
    w = ContextWindow(CharEstimator())
    # "Hello world" is 11 bytes -> 3 tokens, + 4 framing.
    assert w.estimate_message_tokens(Message.user("Hello world")) == 7


def test_estimate_total_tokens() -> None:
    w = ContextWindow(CharEstimator())
    messages = [Message.system("You are helpful."), Message.user("Hi")]
    assert w.estimate_message_tokens(messages[0]) == 8
    assert w.estimate_message_tokens(messages[1]) == 5
    assert w.estimate_total_tokens(messages) == 13
    assert w.estimate_total_tokens([]) == 0


def test_is_over_budget() -> None:
    w = ContextWindow(
        CharEstimator(),
        ContextBudget(max_tokens=100, reserved_for_output=20, tool_result_share=0.3),
    )
    assert not w.is_over_budget([Message.user("Hi")])
    long = [Message.user("This is a fairly long message that takes up tokens.") for _ in range(20)]
    assert w.is_over_budget(long)


def test_is_over_budget_is_strict() -> None:
    w = window(7)
    assert not w.is_over_budget([Message.user("Hello world")])  # exactly 7
    assert window(6).is_over_budget([Message.user("Hello world")])


def test_tokens_remaining() -> None:
    w = ContextWindow(
        CharEstimator(),
        ContextBudget(max_tokens=100, reserved_for_output=20, tool_result_share=0.3),
    )
    assert w.tokens_remaining([Message.user("Hi")]) == 75
    assert w.tokens_remaining([Message.user("x" * 1000)]) == 0


def test_truncate_to_fit_no_truncation_needed() -> None:
    w = ContextWindow(CharEstimator())
    messages = [Message.system("System"), Message.user("Hello"), Message.assistant("Hi!")]
    result = w.truncate_to_fit(messages)
    assert result == messages
    assert result is not messages


def test_truncate_to_fit_drops_old_middle_messages() -> None:
    w = window(40)
    messages = [Message.system("System")]
    for i in range(10):
        messages.append(Message.user(f"Message number {i} with some content"))
        messages.append(Message.assistant(f"Response {i} with some additional text"))
    messages.append(Message.user("What should I do?"))
    assert w.is_over_budget(messages)

    result = w.truncate_to_fit(messages)
    assert len(result) < len(messages)
    assert result[0].content == "System"
    assert result[-1].content == "What should I do?"
    assert w.estimate_total_tokens(result) <= 40
    # The fix keeps the task (the first user message) as well.
    assert result == [messages[0], messages[1], messages[-1]]


def test_truncate_to_fit_preserves_two_messages() -> None:
    w = window(5)
    messages = [Message.system("You are a helpful assistant."), Message.user("Hello there friend")]
    assert w.is_over_budget(messages)
    assert w.truncate_to_fit(messages) == messages


def test_truncate_tool_result_no_truncation() -> None:
    w = ContextWindow(CharEstimator())
    assert w.truncate_tool_result("short result") == "short result"


def test_truncate_tool_result_long_content() -> None:
    w = window(100, share=0.1)
    assert w.budget.max_tool_result_tokens == 10
    content = "This is a line of output.\n" * 100
    result = w.truncate_tool_result(content)
    assert "[truncated" in result
    assert len(result) < len(content)


# -- CharEstimator: UTF-8 bytes, and no division by zero (§5.8/44) -------------


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("é", 1), ("éé", 1), ("ééé", 2), ("日本語", 3), ("日本語日", 3), ("🙂", 1), ("a🙂", 2)],
)
def test_char_estimator_counts_utf8_bytes(text: str, tokens: int) -> None:
    assert CharEstimator().count_tokens(text) == tokens


@pytest.mark.parametrize("text", ["\udcff", "a\ud83d", "\udc80\udc81 ok", "é\udfff🙂"])
def test_char_estimator_is_total_over_any_str(text: str) -> None:
    """A lone surrogate (from ``os.fsdecode``, a JSON escape) counts as its three bytes."""
    assert CharEstimator().count_tokens(text) == -(-len(text.encode("utf-8", "surrogatepass")) // 4)


def test_truncate_tool_result_with_lone_surrogates_gives_valid_text() -> None:
    w = window(100, share=0.1)
    content = "name-\udcff.txt\n" * 50
    result = w.truncate_tool_result(content)
    assert result.endswith("limit is 10]")
    result.encode("utf-8")  # no lone surrogate survives the cut


def test_char_estimator_custom_ratio() -> None:
    assert CharEstimator(chars_per_token=1).count_tokens("日本") == 6
    assert CharEstimator(chars_per_token=3).count_tokens("abcdefg") == 3


@pytest.mark.parametrize("ratio", [0, -1])
def test_chars_per_token_must_be_positive(ratio: int) -> None:
    with pytest.raises(
        ConfigurationError, match=f"chars_per_token must be at least 1, got {ratio}"
    ):
        CharEstimator(chars_per_token=ratio)


def test_char_estimator_is_a_tokenizer() -> None:
    assert isinstance(CharEstimator(), Tokenizer)
    assert isinstance(CountingTokenizer(), Tokenizer)


def test_available_for_input_saturates_at_zero() -> None:
    assert ContextBudget(max_tokens=10, reserved_for_output=50).available_for_input == 0
    assert ContextBudget(max_tokens=10, reserved_for_output=50).max_tool_result_tokens == 0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_tokens": 0}, "max_tokens >= 1"),
        ({"reserved_for_output": -1}, "reserved_for_output >= 0"),
        ({"tool_result_share": 0.0}, "tool_result_share must be in"),
        ({"tool_result_share": 1.5}, "tool_result_share must be in"),
    ],
)
def test_budget_validation(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        ContextBudget(**kwargs)  # type: ignore[arg-type]


# -- orra's estimates ------------------------------------------------------------


def test_estimate_with_tool_calls() -> None:
    w = ContextWindow(CharEstimator())
    msg = Message.assistant("", [ToolCall(id="c1", name="search", arguments={"q": "rust"})])
    # content 0 + name "search" 2 + compact '{"q":"rust"}' (12 bytes) 3 + 5 + framing 4
    assert w.estimate_message_tokens(msg) == 14
    two = Message.assistant(
        "ok",
        [
            ToolCall(id="c1", name="search", arguments={"q": "rust"}),
            ToolCall(id="c2", name="t", arguments=None),  # "null" -> 1
        ],
    )
    # 1 + (2 + 3 + 5) + (1 + 1 + 5) + 4
    assert w.estimate_message_tokens(two) == 22


def test_estimate_with_tool_results() -> None:
    w = ContextWindow(CharEstimator())
    msg = Message.tool_result(
        [ToolResult(call_id="c1", content="ok"), ToolResult(call_id="c2", content="x" * 9)]
    )
    # content 0 + (1 + 5) + (3 + 5) + 4
    assert w.estimate_message_tokens(msg) == 18


def test_tool_call_arguments_count_as_compact_non_ascii_json() -> None:
    w = ContextWindow(CharEstimator(chars_per_token=1))
    msg = Message.assistant("", [ToolCall(id="c", name="t", arguments={"q": "é", "n": [1, 2]})])
    compact = '{"q":"é","n":[1,2]}'
    assert w.estimate_message_tokens(msg) == 1 + len(compact.encode()) + 5 + 4


# -- truncate_to_fit keeps what matters --------------------------------------------


def test_truncate_keeps_leading_system_messages() -> None:
    w = window(40)
    messages = [
        Message.system("Rules part one."),
        Message.system("Rules part two."),
        Message.user("Task"),
        *[Message.assistant("x" * 40) for _ in range(5)],
        Message.user("Latest"),
    ]
    result = w.truncate_to_fit(messages)
    assert result[:3] == messages[:3]
    assert result[-1] == messages[-1]
    assert w.estimate_total_tokens(result) <= 40


def test_truncate_keeps_first_user_message_without_system_prompt() -> None:
    w = window(30)
    messages = [
        Message.user("The task"),
        Message.assistant("a" * 60),
        Message.user("b" * 60),
        Message.assistant("Short"),
        Message.user("Newest"),
    ]
    result = w.truncate_to_fit(messages)
    assert result == [messages[0], messages[3], messages[4]]


def test_truncate_pins_the_first_plain_user_message_not_a_tool_result() -> None:
    # A tool-result message has the user role but is not the task.
    w = window(30)
    messages = [
        Message.system("S"),
        *tool_exchange("c1", "a" * 80, "r" * 80),
        Message.user("Task"),
        Message.assistant("m" * 200),
        Message.user("Newest"),
    ]
    result = w.truncate_to_fit(messages)
    assert result == [messages[0], messages[3], messages[-1]]


def test_truncate_never_separates_tool_calls_from_results() -> None:
    # The tool result alone would fit; the assistant call before it would not.
    # orra kept the result and dropped the call (provider 400). Both go together.
    messages = [
        Message.system("S"),
        Message.user("Task"),
        *tool_exchange("c1", "a" * 200, "ok"),
        Message.user("Newest question"),
    ]
    w = ContextWindow(CharEstimator())
    pinned = w.estimate_total_tokens([messages[0], messages[1], messages[-1]])
    result_only = w.estimate_message_tokens(messages[3])
    small = window(pinned + result_only)
    result = small.truncate_to_fit(messages)
    assert result == [messages[0], messages[1], messages[-1]]

    # One message more than the budget holds: the whole exchange goes, not half of it.
    extra = Message.assistant("extra " * 10)
    roomy = window(w.estimate_total_tokens(messages))
    assert roomy.truncate_to_fit([*messages, extra]) == [
        messages[0],
        messages[1],
        messages[4],
        extra,
    ]


def test_truncate_keeps_the_newest_exchange_whole() -> None:
    # The newest message is a tool result: its assistant call is kept with it.
    messages = [
        Message.system("S"),
        Message.user("Task"),
        Message.assistant("m" * 100),
        *tool_exchange("c9", "query", "result"),
    ]
    w = window(5)
    result = w.truncate_to_fit(messages)
    assert result == [messages[0], messages[1], messages[3], messages[4]]


def test_truncate_multiple_results_after_one_call_stay_together() -> None:
    call = Message.assistant(
        "",
        [
            ToolCall(id="a", name="t", arguments={}),
            ToolCall(id="b", name="t", arguments={}),
        ],
    )
    res_a = Message.tool_result([ToolResult(call_id="a", content="x" * 40)])
    res_b = Message.tool_result([ToolResult(call_id="b", content="y" * 40)])
    messages = [
        Message.user("Task"),
        call,
        res_a,
        res_b,
        Message.user("u" * 400),
        Message.user("N"),
    ]
    w = ContextWindow(CharEstimator())
    exchange = w.estimate_total_tokens([call, res_a, res_b])
    pinned = w.estimate_total_tokens([messages[0], messages[-1]])
    # Room for the exchange but not for the big message after it: the walk stops there.
    result = window(pinned + exchange).truncate_to_fit(messages)
    assert result == [messages[0], messages[-1]]
    # Without the big message, the whole exchange fits and is kept whole.
    short = [Message.user("Task"), call, res_a, res_b, Message.user("N")]
    assert window(pinned + exchange).truncate_to_fit(short) == short
    # One token less and none of it is kept.
    assert window(pinned + exchange - 1).truncate_to_fit(short) == [short[0], short[-1]]


def test_truncate_stops_at_the_first_exchange_that_does_not_fit() -> None:
    # Newest-first walk; an older small message behind a big one is not picked.
    messages = [
        Message.system("S"),
        Message.user("Task"),
        Message.assistant("old small"),
        Message.assistant("b" * 400),
        Message.assistant("recent"),
        Message.user("Newest"),
    ]
    w = ContextWindow(CharEstimator())
    budget = w.estimate_total_tokens([messages[i] for i in (0, 1, 2, 4, 5)])
    result = window(budget).truncate_to_fit(messages)
    assert result == [messages[0], messages[1], messages[4], messages[5]]


def test_truncate_keeps_chronological_order() -> None:
    messages = [Message.system("S"), Message.user("Task")]
    messages += [Message.assistant(f"step {i}") for i in range(30)]
    messages.append(Message.user("Newest"))
    result = window(60).truncate_to_fit(messages)
    positions = [next(i for i, m in enumerate(messages) if m is r) for r in result]
    assert positions == sorted(positions)
    assert len(result) < len(messages)


def test_truncate_returns_the_pinned_part_when_it_alone_is_over_budget() -> None:
    messages = [
        Message.system("s" * 100),
        Message.user("t" * 100),
        Message.assistant("middle"),
        Message.user("n" * 100),
    ]
    assert window(10).truncate_to_fit(messages) == [messages[0], messages[1], messages[3]]


def test_truncate_empty_and_single() -> None:
    assert window(0).truncate_to_fit([]) == []
    only = [Message.user("x" * 100)]
    assert window(1).truncate_to_fit(only) == only


# -- truncate_tool_result -----------------------------------------------------------


def test_truncate_tool_result_marker_is_exact() -> None:
    w = window(100, share=0.1)
    content = "x" * 400  # 100 tokens, no newline
    result = w.truncate_tool_result(content)
    assert result == "x" * 40 + "\n\n[truncated — original was 100 tokens, limit is 10]"


def test_truncate_tool_result_cuts_at_last_newline() -> None:
    w = window(100, share=0.1)
    content = "abcdefghi\n" * 50  # 500 bytes, 125 tokens; keeps 40 bytes = 4 lines
    result = w.truncate_tool_result(content)
    assert result == (
        "abcdefghi\nabcdefghi\nabcdefghi\nabcdefghi"
        "\n\n[truncated — original was 125 tokens, limit is 10]"
    )


def test_truncate_tool_result_at_the_limit_is_unchanged() -> None:
    w = window(100, share=0.1)
    assert w.truncate_tool_result("x" * 40) == "x" * 40
    assert w.truncate_tool_result("x" * 41).endswith("limit is 10]")


@pytest.mark.parametrize("unit", ["é", "日本語", "🙂", "aé", "ab日"])
def test_truncate_tool_result_cuts_on_a_character_boundary(unit: str) -> None:
    w = window(100, share=0.1)
    content = unit * 300
    result = w.truncate_tool_result(content)
    prefix, marker = result.split("\n\n[truncated — ", 1)
    assert content.startswith(prefix)
    assert "\ufffd" not in prefix
    assert prefix.encode("utf-8").decode("utf-8") == prefix
    assert len(prefix.encode("utf-8")) <= len(
        content.encode("utf-8")
    ) * 10 // w.tokenizer.count_tokens(content)
    assert len(prefix) > 0
    assert marker == f"original was {w.tokenizer.count_tokens(content)} tokens, limit is 10]"


def test_truncate_tool_result_zero_limit() -> None:
    w = window(1, share=0.5)
    assert w.budget.max_tool_result_tokens == 0
    assert w.truncate_tool_result("") == ""
    assert w.truncate_tool_result("abc") == "\n\n[truncated — original was 1 tokens, limit is 0]"


# -- the per-message estimate is cached ------------------------------------------------


def test_estimate_is_cached_per_message() -> None:
    tok = CountingTokenizer()
    w = ContextWindow(tok)
    messages = [
        Message.user("Hello"),
        Message.assistant("", [ToolCall(id="c", name="t", arguments={"a": 1})]),
        Message.tool_result([ToolResult(call_id="c", content="r")]),
    ]
    first = w.estimate_total_tokens(messages)
    calls = tok.calls
    assert calls == 1 + 3 + 2  # content; content, name, args; content, result
    for _ in range(5):
        assert w.estimate_total_tokens(messages) == first
        w.is_over_budget(messages)
        w.tokens_remaining(messages)
    assert tok.calls == calls

    # The cache belongs to the window: another window counts for itself.
    assert ContextWindow(tok).estimate_total_tokens(messages) == first
    assert tok.calls == 2 * calls


def test_a_different_tokenizer_recounts() -> None:
    msg = Message.user("Hello world")
    a, b = CountingTokenizer(), CountingTokenizer()
    assert ContextWindow(a).estimate_message_tokens(msg) == 7
    assert ContextWindow(b).estimate_message_tokens(msg) == 7
    assert (a.calls, b.calls) == (1, 1)
    # Switching back recounts too: one cached estimate per message.
    assert ContextWindow(CharEstimator(chars_per_token=1)).estimate_message_tokens(msg) == 15


def test_an_equal_but_distinct_message_is_counted_once_itself() -> None:
    tok = CountingTokenizer()
    w = ContextWindow(tok)
    w.estimate_message_tokens(Message.user("Hi"))
    w.estimate_message_tokens(Message.user("Hi"))
    assert tok.calls == 2


def test_a_changed_copy_is_recounted() -> None:
    w = ContextWindow(CharEstimator())
    msg = Message.user("Hello world")
    assert w.estimate_message_tokens(msg) == 7
    bigger = msg.model_copy(update={"content": "x" * 400})
    assert w.estimate_message_tokens(bigger) == 104
    assert w.estimate_message_tokens(msg) == 7


# -- the running total of a session's history ----------------------------------------------


def session_of(*messages: Message) -> Session:
    return Session(namespace=Namespace("tally"), messages=list(messages))


def test_history_tokens_counts_only_what_a_session_gained() -> None:
    tok = CountingTokenizer()
    w = ContextWindow(tok)
    session = session_of(Message.user("one"), Message.assistant("two"))
    assert w.history_tokens(session) == w.estimate_total_tokens(session.messages)
    before = tok.calls
    session.push_message(Message.user("three and more"))
    assert w.history_tokens(session) == w.estimate_total_tokens(session.messages)
    assert tok.calls == before + 1  # the new message only


def test_history_tokens_of_a_rewritten_history_with_the_same_last_message() -> None:
    """A reload after ``store.save`` rewrote an earlier message is a new count."""
    w = ContextWindow(CharEstimator())
    last = Message.assistant("the end")
    assert w.history_tokens(session_of(Message.user("short"), last)) == 2 + 4 + 2 + 4
    rewritten = session_of(Message.user("x" * 400), last)
    assert w.history_tokens(rewritten) == 100 + 4 + 2 + 4


def test_history_tokens_notices_a_replaced_message_list() -> None:
    """A hook may assign ``session.messages``; the old total must not be reused."""
    w = ContextWindow(CharEstimator())
    last = Message.assistant("the end")
    session = session_of(Message.user("short"), last)
    w.history_tokens(session)
    session.messages = [Message.user("x" * 400), last]
    assert w.history_tokens(session) == 100 + 4 + 2 + 4


def test_a_sessions_running_total_goes_away_with_the_session() -> None:
    memory = ContextMemory()
    w = ContextWindow(CharEstimator(), memory=memory)
    session = session_of(Message.user("hello"))
    w.history_tokens(session)
    assert len(memory.tallies) == 1
    del session
    gc.collect()
    assert len(memory.tallies) == 0


# -- the total carried from one load of a session to the next ------------------------------


def forgetful_window() -> tuple[ContextWindow, CountingTokenizer]:
    """A window that remembers almost no per-message estimate, so a recount of the
    history shows as tokenizer calls."""
    tok = CountingTokenizer()
    memory = ContextMemory()
    memory.max_estimates = 2
    return ContextWindow(tok, memory=memory), tok


async def loaded(store: InMemoryStore, key: str = "tally") -> Session:
    session = await store.load(key)
    assert session is not None
    return session


@pytest.mark.anyio
async def test_a_reload_counts_only_the_messages_stored_since_the_last_load() -> None:
    """W3: each run loads its session anew; recounting 4,000 messages per run made
    the cost of a message grow with the session."""
    store = InMemoryStore()
    await store.append("tally", [Message.user(f"message {i}") for i in range(100)])
    w, tok = forgetful_window()
    first = await loaded(store)
    assert w.history_tokens(first) == w.estimate_total_tokens(first.messages)
    await store.append("tally", [Message.assistant("one more"), Message.user("and another")])
    second = await loaded(store)
    before = tok.calls
    total = w.history_tokens(second)
    assert tok.calls - before == 2  # the two new messages, not the 102
    assert total == ContextWindow(CharEstimator()).estimate_total_tokens(second.messages)


@pytest.mark.anyio
async def test_a_reload_after_a_rewrite_keeping_the_last_message_is_counted_whole() -> None:
    store = InMemoryStore()
    last = Message.assistant("the end")
    await store.append("tally", [Message.user("short"), last])
    w, _ = forgetful_window()
    w.history_tokens(await loaded(store))
    rewritten = await loaded(store)
    rewritten.messages = [Message.user("x" * 400), last]
    await store.save(rewritten)
    assert w.history_tokens(await loaded(store)) == 100 + 4 + 2 + 4


@pytest.mark.anyio
async def test_a_reload_of_a_trimmed_session_is_counted_whole() -> None:
    store = InMemoryStore()
    await store.append("tally", [Message.user("x" * 400), Message.user("y"), Message.user("z")])
    w, _ = forgetful_window()
    w.history_tokens(await loaded(store))
    await store.trim("tally", 2)
    await store.append("tally", [Message.user("w")])
    assert w.history_tokens(await loaded(store)) == 3 * (1 + 4)


@pytest.mark.anyio
async def test_a_loaded_history_changed_in_place_is_counted_whole() -> None:
    """A hook may rewrite the loaded list in place (``after_session_load``)."""
    store = InMemoryStore()
    await store.append("tally", [Message.user("short"), Message.assistant("the end")])
    w, _ = forgetful_window()
    w.history_tokens(await loaded(store))
    await store.append("tally", [Message.user("more")])
    session = await loaded(store)
    session.messages[0] = Message.user("x" * 400)
    assert w.history_tokens(session) == 100 + 4 + 2 + 4 + 1 + 4


def test_a_history_copy_is_a_plain_list_without_provenance() -> None:
    session = session_of(Message.user("a"))
    loaded_copy = session.snapshot().snapshot()
    assert isinstance(loaded_copy.messages, History)
    for copied in (copy.copy(loaded_copy.messages), copy.deepcopy(loaded_copy.messages)):
        assert type(copied) is list and copied == loaded_copy.messages
    assert type(pickle.loads(pickle.dumps(loaded_copy)).messages) is list
    assert loaded_copy == session


def test_tool_definitions_cost_their_compact_json_plus_framing_every_time() -> None:
    w = ContextWindow(CharEstimator())
    tools = [
        ToolDefinition(name="lookup", description="Find a key.", input_schema={"type": "object"}),
        ToolDefinition(name="save", description="Store it.", input_schema={"type": "object"}),
    ]
    each = [w.estimate_tools_tokens([t]) for t in tools]
    compact = '{"name":"lookup","description":"Find a key.","input_schema":{"type":"object"}}'
    assert each[0] == CharEstimator().count_tokens(compact) + 5
    # Remembered estimates add up the same as fresh ones, call after call.
    assert w.estimate_tools_tokens(tools) == sum(each)
    assert w.estimate_tools_tokens(tools) == sum(each)


def test_calibration_is_clamped_and_ignores_empty_observations() -> None:
    w = ContextWindow(CharEstimator())
    assert w.calibrate("m", 1, 2) == 2.0  # a one-token estimate is an observation too
    assert w.calibrate("n", 100, 1) == 0.25  # clamped from 0.01
    assert w.calibrate("o", 100, 0) == 1.0  # no usage reported: nothing learned
    assert w.scale("o") == 1.0


def test_a_truncated_result_is_cut_at_its_last_line_break_but_never_to_nothing() -> None:
    w = window(1000, share=0.1)  # 100 tokens for a tool result
    # A line break at 0 would leave nothing: the prefix is kept whole instead.
    kept = w.truncate_tool_result("\n" + "x" * 2000).split("\n\n[truncated")[0]
    assert kept.startswith("\nxxx")
    # A line break at 1 is a line boundary like any other.
    assert w.truncate_tool_result("a\n" + "x" * 2000).startswith("a\n\n[truncated")


def _forgetful_window(tokenizer: CountingTokenizer, *, max_tallies: int = 10_000) -> ContextWindow:
    """A window whose per-message estimates are not remembered: only session totals are."""
    memory = ContextMemory()
    memory.max_estimates = 0
    memory.max_tallies = max_tallies
    return ContextWindow(tokenizer, memory=memory)


def _session(name: str, n: int) -> Session:
    return Session(namespace=Namespace(name), messages=[Message.user(f"m{i}") for i in range(n)])


def test_a_session_total_counts_only_the_messages_added_since_last_time() -> None:
    tokenizer = CountingTokenizer()
    w = _forgetful_window(tokenizer)
    session = _session("u", 3)
    first = w.history_tokens(session)
    assert tokenizer.calls == 3
    session.push_message(Message.assistant("answer"))
    second = w.history_tokens(session)
    assert tokenizer.calls == 4  # the new message only
    assert second == first + ContextWindow(CharEstimator()).estimate_message_tokens(
        session.messages[-1]
    )
    assert w.history_tokens(session) == second
    assert tokenizer.calls == 4


def test_the_oldest_session_total_is_forgotten_first() -> None:
    tokenizer = CountingTokenizer()
    w = _forgetful_window(tokenizer, max_tallies=2)
    a, b, c = _session("a", 2), _session("b", 2), _session("c", 2)
    for session in (a, b, c):
        w.history_tokens(session)
    assert tokenizer.calls == 6
    w.history_tokens(b)
    w.history_tokens(c)
    assert tokenizer.calls == 6  # the two newest are remembered
    w.history_tokens(a)
    assert tokenizer.calls == 8  # the oldest was not


def test_tool_definitions_are_measured_once() -> None:
    tokenizer = CountingTokenizer()
    w = ContextWindow(tokenizer)
    tools = [
        ToolDefinition(name="lookup", description="Find a key.", input_schema={"type": "object"}),
        ToolDefinition(name="save", description="Store it.", input_schema={"type": "object"}),
    ]
    w.estimate_tools_tokens(tools)
    w.estimate_tools_tokens(tools)
    assert tokenizer.calls == 2
    # Another tokenizer sharing the memory measures them again, with its own counts.
    other = CountingTokenizer()
    ContextWindow(other, memory=w.memory).estimate_tools_tokens(tools)
    assert other.calls == 2


def test_budget_bounds_are_inclusive() -> None:
    assert ContextBudget(max_tokens=1, reserved_for_output=0).available_for_input == 1
    assert ContextBudget(tool_result_share=1.0).tool_result_share == 1.0


def test_fresh_tool_estimates_add_up() -> None:
    tools = [
        ToolDefinition(name=name, description="A tool.", input_schema={"type": "object"})
        for name in ("a", "b", "c")
    ]
    singles = sum(ContextWindow(CharEstimator()).estimate_tools_tokens([t]) for t in tools)
    assert ContextWindow(CharEstimator()).estimate_tools_tokens(tools) == singles


def test_the_oldest_message_estimate_is_forgotten_first() -> None:
    tokenizer = CountingTokenizer()
    memory = ContextMemory()
    memory.max_estimates = 2
    w = ContextWindow(tokenizer, memory=memory)
    a, b, c = (Message.user(t) for t in ("a", "b", "c"))
    for message in (a, b, c):
        w.estimate_message_tokens(message)
    w.estimate_message_tokens(b)
    w.estimate_message_tokens(c)
    assert tokenizer.calls == 3  # the two newest are remembered
    w.estimate_message_tokens(a)
    assert tokenizer.calls == 4


def test_a_one_message_session_total_is_reused() -> None:
    tokenizer = CountingTokenizer()
    w = _forgetful_window(tokenizer)
    session = _session("u", 1)
    w.history_tokens(session)
    session.push_message(Message.assistant("answer"))
    w.history_tokens(session)
    assert tokenizer.calls == 2
