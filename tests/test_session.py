"""Session: the crate's store.rs tests for the Session value (the stores are tested elsewhere)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from orra_di.message import Message
from orra_di.namespace import Namespace
from orra_di.session import Session, utc_now


def test_session_creation() -> None:
    before = datetime.now(UTC)
    session = Session(namespace=Namespace("acme", "alice"))
    assert session.namespace == Namespace("acme", "alice")
    assert session.messages == []
    assert session.message_count == 0
    assert session.metadata == {}
    assert timedelta(0) <= session.updated_at - session.created_at < timedelta(seconds=1)
    assert before - timedelta(seconds=1) <= session.created_at <= datetime.now(UTC)
    assert session.created_at.tzinfo is not None
    assert session.created_at.utcoffset() == timedelta(0)


def test_session_push_message() -> None:
    session = Session(namespace=Namespace("acme"))
    before = session.updated_at
    session.push_message(Message.user("Hello"))
    assert session.message_count == 1
    assert session.messages[0] == Message.user("Hello")
    assert session.updated_at >= before
    assert session.created_at <= session.updated_at


def test_session_metadata() -> None:
    session = Session(namespace=Namespace("acme"))
    session.metadata["working_directory"] = "/tmp/project"
    session.metadata["chaos_mode"] = True
    assert session.metadata["working_directory"] == "/tmp/project"
    assert session.metadata["chaos_mode"] is True
    # Metadata is per session, never shared through a default.
    assert Session(namespace=Namespace("other")).metadata == {}


def test_session_serialization_roundtrip() -> None:
    session = Session(namespace=Namespace("acme", "alice"))
    session.push_message(Message.user("Hello"))
    session.push_message(Message.assistant("Hi!"))
    session.metadata["key"] = {"nested": [1, "two"]}

    text = session.model_dump_json()
    restored = Session.model_validate_json(text)
    assert restored == session
    assert restored.namespace == Namespace("acme", "alice")
    assert restored.message_count == 2
    assert restored.created_at == session.created_at
    assert restored.updated_at == session.updated_at

    data = json.loads(text)
    assert data["namespace"] == {"segments": ["acme", "alice"]}
    # RFC 3339 timestamps in UTC.
    assert data["created_at"].endswith("Z")
    assert datetime.fromisoformat(data["created_at"]) == session.created_at


def test_metadata_defaults_when_absent() -> None:
    now = utc_now().isoformat()
    session = Session.model_validate_json(
        json.dumps(
            {
                "namespace": {"segments": ["acme"]},
                "messages": [{"role": "user", "content": "hi"}],
                "created_at": now,
                "updated_at": now,
            }
        )
    )
    assert session.metadata == {}
    assert session.messages == [Message.user("hi")]


def test_snapshot_is_independent() -> None:
    session = Session(namespace=Namespace("acme"))
    session.push_message(Message.user("one"))
    session.metadata["nested"] = {"a": [1]}

    snap = session.snapshot()
    session.push_message(Message.user("two"))
    session.metadata["nested"]["a"].append(2)

    assert snap.message_count == 1
    assert snap.metadata == {"nested": {"a": [1]}}
    # The frozen messages themselves are shared, not copied.
    assert snap.messages[0] is session.messages[0]


def test_utc_now_is_aware() -> None:
    assert utc_now().tzinfo is UTC
