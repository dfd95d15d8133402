"""Messages: the crate's tests (src/message.rs) and the Python value semantics."""

from __future__ import annotations

import copy
import json
import pickle

import pytest
from pydantic import ValidationError

from orra_di.context import CharEstimator, ContextWindow
from orra_di.message import Message, Role, ToolCall, ToolResult, VendorData

# -- the crate's tests ------------------------------------------------------


def test_create_system_message() -> None:
    msg = Message.system("You are helpful.")
    assert msg.role is Role.SYSTEM
    assert msg.content == "You are helpful."
    assert msg.tool_calls == ()
    assert msg.tool_results == ()


def test_create_user_message() -> None:
    msg = Message.user("Hello")
    assert msg.role is Role.USER
    assert msg.content == "Hello"
    assert msg.tool_calls == ()
    assert msg.tool_results == ()


def test_create_assistant_message() -> None:
    msg = Message.assistant("Hi there!")
    assert msg.role is Role.ASSISTANT
    assert msg.content == "Hi there!"
    assert msg.tool_calls == ()


def test_assistant_with_tool_calls() -> None:
    calls = [ToolCall(id="call_1", name="search", arguments={"query": "rust"})]
    msg = Message.assistant("Let me search.", calls)
    assert msg.role is Role.ASSISTANT
    assert len(msg.tool_calls) == 1
    assert msg.tool_calls[0].name == "search"
    assert msg.tool_calls[0].arguments == {"query": "rust"}
    # A list goes in, a tuple is stored: the message stays immutable.
    assert isinstance(msg.tool_calls, tuple)


def test_tool_result_message() -> None:
    msg = Message.tool_result([ToolResult(call_id="call_1", content="found it")])
    # There is no tool role: results travel on a user message with no text.
    assert msg.role is Role.USER
    assert msg.content == ""
    assert len(msg.tool_results) == 1
    assert msg.tool_results[0].call_id == "call_1"
    assert msg.tool_results[0].content == "found it"
    assert not msg.tool_results[0].is_error


def test_serialization_skips_empty_vecs() -> None:
    text = Message.user("Hello").model_dump_json()
    assert "tool_calls" not in text
    assert "tool_results" not in text
    assert json.loads(text) == {"role": "user", "content": "Hello"}
    assert Message.user("Hello").model_dump() == {"role": "user", "content": "Hello"}


def test_serialization_roundtrip() -> None:
    msg = Message.assistant(
        "Checking.",
        [
            ToolCall(id="c1", name="search", arguments={"q": "é", "n": [1, 2]}),
            ToolCall(id="c2", name="noop", arguments=None),
        ],
    )
    restored = Message.model_validate_json(msg.model_dump_json())
    assert restored == msg
    assert restored.tool_calls[0].arguments == {"q": "é", "n": [1, 2]}

    result = Message.tool_result([ToolResult(call_id="c1", content="boom", is_error=True)])
    assert Message.model_validate_json(result.model_dump_json()) == result


# -- more of the contract ------------------------------------------------------


def test_roles_serialise_lower_case() -> None:
    assert [r.value for r in Role] == ["system", "user", "assistant"]
    assert json.loads(Message.system("x").model_dump_json())["role"] == "system"
    assert json.loads(Message.assistant("x").model_dump_json())["role"] == "assistant"


def test_missing_tool_lists_default_to_empty() -> None:
    msg = Message.model_validate_json('{"role": "assistant", "content": "hi"}')
    assert msg.tool_calls == ()
    assert msg.tool_results == ()
    assert msg.vendor_data == ()  # messages stored before vendor data existed
    assert Message.model_validate({"role": "user"}).content == ""


def test_non_empty_tool_lists_are_serialised() -> None:
    msg = Message.assistant("", [ToolCall(id="1", name="t", arguments={"a": 1})])
    data = json.loads(msg.model_dump_json())
    assert data["tool_calls"] == [{"id": "1", "name": "t", "arguments": {"a": 1}}]
    assert "tool_results" not in data
    res = json.loads(Message.tool_result([ToolResult(call_id="1", content="ok")]).model_dump_json())
    assert res["tool_results"] == [{"call_id": "1", "content": "ok", "is_error": False}]
    assert "tool_calls" not in res


THINKING = VendorData(
    vendor="anthropic",
    data={"model": "m", "content": [{"type": "thinking", "thinking": "", "signature": "Eq=="}]},
)


def test_vendor_data_round_trips_and_only_its_vendor_finds_it() -> None:
    msg = Message.assistant("", [ToolCall(id="1", name="t")], vendor_data=[THINKING])
    restored = Message.model_validate_json(msg.model_dump_json())
    assert restored == msg
    assert restored.vendor_data == (THINKING,)
    assert restored.vendor("anthropic") == THINKING.data
    assert restored.vendor("openai") is None
    assert msg != Message.assistant("", [ToolCall(id="1", name="t")])


def test_no_vendor_data_leaves_the_stored_form_as_it_was() -> None:
    msg = Message.assistant("", [ToolCall(id="1", name="t", arguments={"a": 1})])
    assert "vendor_data" not in json.loads(msg.model_dump_json())
    assert "vendor_data" not in msg.model_dump()


def test_vendor_data_is_frozen_with_its_message() -> None:
    with pytest.raises(ValidationError):
        THINKING.vendor = "openai"  # type: ignore[misc]


def test_unknown_role_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Message.model_validate({"role": "tool", "content": "x"})


def test_messages_are_frozen() -> None:
    msg = Message.user("Hello")
    with pytest.raises(ValidationError):
        msg.content = "changed"  # type: ignore[misc]
    call = ToolCall(id="1", name="t")
    with pytest.raises(ValidationError):
        call.name = "other"  # type: ignore[misc]
    assert call.arguments is None


def test_equality_is_by_value() -> None:
    a, b = Message.user("Hello world"), Message.user("Hello world")
    ContextWindow(CharEstimator()).estimate_message_tokens(a)
    assert a == b
    assert b == a
    assert a != Message.user("Hello")
    assert a != Message.assistant("Hello world")
    assert a != "Hello world"


def test_pickle_and_deepcopy_keep_the_value() -> None:
    msg = Message.assistant("x", [ToolCall(id="1", name="t", arguments={"a": [1, 2]})])
    ContextWindow(CharEstimator()).estimate_message_tokens(msg)

    restored = pickle.loads(pickle.dumps(msg))
    assert restored == msg

    deep = copy.deepcopy(msg)
    assert deep == msg
    assert deep.tool_calls[0].arguments is not msg.tool_calls[0].arguments


def test_tool_result_accepts_a_tuple() -> None:
    results = (ToolResult(call_id="a", content="1"), ToolResult(call_id="b", content="2"))
    msg = Message.tool_result(results)
    assert [r.call_id for r in msg.tool_results] == ["a", "b"]


def test_lone_surrogates_become_replacement_characters() -> None:
    """No store or vendor accepts them; one bad code point must not fail a whole step."""
    msg = Message.user("ok \udcff then é")
    assert msg.content == "ok \ufffd then é"
    assert Message.model_validate_json(msg.model_dump_json()) == msg
    result = ToolResult(call_id="c", content="\ud800")
    assert result.content == "\ufffd"
    assert Message.user("plain ascii").content == "plain ascii"


def test_lone_surrogates_in_a_tool_calls_id_name_and_arguments_become_replacements() -> None:
    """A JSON ``"\\ud83d"`` escape in the model's arguments decodes to a lone surrogate."""
    arguments = json.loads('{"t": "\\ud83d", "\\udc80": ["ok", {"k": "\\udcff!"}], "n": 1}')
    tool_call = ToolCall(id="c\udc80", name="look\udcff", arguments=arguments)
    assert tool_call.id == "c\ufffd"
    assert tool_call.name == "look\ufffd"
    assert tool_call.arguments == {"t": "\ufffd", "\ufffd": ["ok", {"k": "\ufffd!"}], "n": 1}
    msg = Message.assistant("", [tool_call])
    assert Message.model_validate_json(msg.model_dump_json()) == msg
    assert ToolCall(id="c", name="t", arguments="raw \udcff").arguments == "raw \ufffd"


def test_clean_arguments_are_kept_as_they_are() -> None:
    arguments = {"city": "Zürich", "days": [1, 2], "opts": {"units": "C"}}
    assert ToolCall(id="c", name="t", arguments=arguments).arguments is arguments
