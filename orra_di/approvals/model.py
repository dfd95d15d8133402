"""What an approval is: a request bound to one tool call, and the decision on it.

A request is bound to ``(namespace, call id, hash of the canonical arguments)``.
The canonical arguments are the call's arguments as sorted-key, compact JSON
(``{"b":1,"a":[2]}`` and ``{"a": [2], "b": 1}`` are one form), hashed with
SHA-256: an approval given for one call can never release another call, nor the
same tool with other arguments, whatever ids the model reuses.

Records are the audit trail too: a decided record says who decided, when, what
(approved or denied) and why, for which call. They are plain pydantic models,
stored as JSON by every backend (:mod:`orra_di.approvals.stores`).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from orra_di.errors import ApprovalError
from orra_di.message import ToolCall
from orra_di.namespace import Namespace, NamespaceLike
from orra_di.session import utc_now

__all__ = [
    "SYSTEM",
    "ApprovalRecord",
    "ApprovalStatus",
    "Decision",
    "arguments_hash",
    "canonical_arguments",
    "check_request_id",
]

SYSTEM = "orra-di"
"""Who "decides" when nobody did: a timeout, a failed approver, a cancelled run."""

_ID = re.compile(r"[0-9a-f]{32}")


def canonical_arguments(arguments: Mapping[str, Any]) -> str:
    """The arguments as sorted-key, compact, ASCII-only JSON: one text per value."""
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def arguments_hash(arguments: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of :func:`canonical_arguments`."""
    return hashlib.sha256(canonical_arguments(arguments).encode("ascii")).hexdigest()


def check_request_id(request_id: str) -> str:
    """``request_id`` if it has the form of one (32 hex digits), else ApprovalError.

    Ids come from people (``orra-di approvals approve ID``) and become file names
    and keys, so their form is checked at every entry.
    """
    if not isinstance(request_id, str) or not _ID.fullmatch(request_id):
        raise ApprovalError(
            f"{request_id!r} is not an approval id (32 hex digits); "
            "`orra-di approvals list` shows the pending ones"
        )
    return request_id


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"


class ApprovalRecord(BaseModel):
    """One approval request and, once decided, its decision (the audit entry)."""

    model_config = ConfigDict(frozen=True)

    id: str
    namespace: str
    """The session's namespace key."""
    call_id: str
    tool: str
    arguments: dict[str, Any]
    arguments_hash: str
    agent: str | None = None
    run_id: str | None = None
    requested_at: datetime
    expires_at: datetime
    """When the waiting run gives up (and the call is denied)."""
    status: ApprovalStatus = ApprovalStatus.PENDING
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None

    @classmethod
    def for_call(
        cls,
        namespace: NamespaceLike,
        call: ToolCall,
        *,
        timeout: float,
        agent: str | None = None,
        run_id: str | None = None,
    ) -> ApprovalRecord:
        """A new pending request for ``call``, with a fresh random id."""
        now = utc_now()
        return cls(
            id=uuid.uuid4().hex,
            namespace=Namespace.coerce(namespace).key,
            call_id=call.id,
            tool=call.name,
            arguments=dict(call.arguments),
            arguments_hash=arguments_hash(call.arguments),
            agent=agent,
            run_id=run_id,
            requested_at=now,
            expires_at=now + timedelta(seconds=timeout),
        )

    @property
    def pending(self) -> bool:
        return self.status is ApprovalStatus.PENDING

    @property
    def approved(self) -> bool:
        return self.status is ApprovalStatus.APPROVED

    def expired(self, now: datetime | None = None) -> bool:
        """Pending past ``expires_at``: the run that asked has stopped waiting."""
        return self.pending and (now or utc_now()) >= self.expires_at

    def binds(self, namespace: NamespaceLike, call: ToolCall) -> bool:
        """Whether this record is about exactly ``call`` in ``namespace`` (or its key)."""
        return (
            self.namespace == Namespace.coerce(namespace).key
            and self.call_id == call.id
            and self.tool == call.name
            and self.arguments_hash == arguments_hash(call.arguments)
        )

    def decide(self, *, approved: bool, by: str, reason: str | None = None) -> ApprovalRecord:
        """This record decided now (a new object; stores apply it only if still pending)."""
        return self.model_copy(
            update={
                "status": ApprovalStatus.APPROVED if approved else ApprovalStatus.DENIED,
                "decided_by": by,
                "decided_at": utc_now(),
                "reason": reason,
            }
        )

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> ApprovalRecord:
        return cls.model_validate_json(text)

    def describe(self) -> str:
        """``run `exec` with {"cmd":"ls"}`` — what a person is asked to approve."""
        return f"run `{self.tool}` with {canonical_arguments(self.arguments)}"


@dataclass(frozen=True)
class Decision:
    """An approver's answer, bound to the request it answers.

    Build one with :meth:`approve` / :meth:`deny` from the request; a decision
    whose id or arguments hash is not the request's releases nothing.
    """

    request_id: str
    arguments_hash: str
    approved: bool
    by: str
    reason: str | None = None

    @classmethod
    def approve(cls, request: ApprovalRecord, *, by: str, reason: str | None = None) -> Decision:
        return cls(request.id, request.arguments_hash, True, by, reason)

    @classmethod
    def deny(cls, request: ApprovalRecord, *, by: str, reason: str | None = None) -> Decision:
        return cls(request.id, request.arguments_hash, False, by, reason)

    def answers(self, request: ApprovalRecord) -> bool:
        return (self.request_id, self.arguments_hash) == (request.id, request.arguments_hash)

    @classmethod
    def of(cls, record: ApprovalRecord) -> Decision:
        """The decision a decided record holds."""
        if record.pending:
            raise ApprovalError(f"approval {record.id} is still pending")
        return cls(
            record.id,
            record.arguments_hash,
            record.approved,
            record.decided_by or "",
            record.reason,
        )
