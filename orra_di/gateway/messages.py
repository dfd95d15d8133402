"""The gateway's wire types, orra's ``channels::gateway`` DTOs as pydantic models.

orra defined these (``ChatRequest``, ``ChatResponse``, ``ChatUsage``, ``ErrorResponse``,
``WsMessage``) but served nothing; here the server speaks them. Additions, all
optional so orra's JSON still validates: ``agent`` on a chat request, ``chat_id`` on
WebSocket messages (to tell concurrent chats apart), ``code`` on a WebSocket error,
``approval_id`` on approval messages, and the message types orra did not have
(``ready``, ``auth``, ``tool_call_started``, ``tool_call_completed``,
``tool_approval_decided``, ``subscribe``, ``subscribed``, ``run_started``,
``announcement``).
``WsMessage.validate_json(text)`` parses any of them by its ``type``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter

__all__ = [
    "ChatRequest",
    "ChatResponse",
    "ChatUsage",
    "ErrorResponse",
    "WsMessage",
]

ChatId = str | StrictInt | None
"""Chosen by the client, echoed as sent: ``1`` and ``"1"`` are two chats; never a bool."""


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChatUsage(_Wire):
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


class ChatRequest(_Wire):
    message: str
    namespace: str | None = None
    agent: str | None = None


class ChatResponse(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)  # turns, tool_calls besides

    message: str
    namespace: str
    usage: ChatUsage
    agent: str | None = None


class ErrorResponse(_Wire):
    error: str
    code: str


class WsChat(_Wire):
    type: Literal["chat"] = "chat"
    message: str
    namespace: str | None = None
    model: str | None = None
    agent: str | None = None
    chat_id: ChatId = None


class WsTextDelta(_Wire):
    type: Literal["text_delta"] = "text_delta"
    content: str
    chat_id: ChatId = None


class WsResponse(_Wire):
    type: Literal["response"] = "response"
    message: str
    namespace: str
    usage: ChatUsage
    agent: str | None = None
    chat_id: ChatId = None


class WsError(_Wire):
    type: Literal["error"] = "error"
    error: str
    code: str | None = None
    chat_id: ChatId = None
    namespace: str | None = None


class WsApprovalRequest(_Wire):
    type: Literal["tool_approval_request"] = "tool_approval_request"
    call_id: str
    tool_name: str
    arguments: Any = None
    approval_id: str | None = None
    namespace: str | None = None
    expires_at: str | None = None
    chat_id: ChatId = None


class WsApprovalResponse(_Wire):
    type: Literal["tool_approval_response"] = "tool_approval_response"
    call_id: str | None = None
    approved: bool
    approval_id: str | None = None
    reason: str | None = None


class WsApprovalDecided(_Wire):
    type: Literal["tool_approval_decided"] = "tool_approval_decided"
    approval_id: str
    call_id: str
    status: str
    decided_by: str | None = None


class WsToolCallStarted(_Wire):
    type: Literal["tool_call_started"] = "tool_call_started"
    id: str
    name: str
    chat_id: ChatId = None
    namespace: str | None = None


class WsToolCallCompleted(_Wire):
    type: Literal["tool_call_completed"] = "tool_call_completed"
    id: str
    content: str
    is_error: bool = False
    chat_id: ChatId = None
    namespace: str | None = None


class WsRunStarted(_Wire):
    type: Literal["run_started"] = "run_started"
    namespace: str
    agent: str
    chat_id: ChatId = None


class WsAnnouncement(_Wire):
    type: Literal["announcement"] = "announcement"
    job_id: str
    job_name: str
    message: str
    namespace: str | None = None
    chat_id: ChatId = None


class WsPing(_Wire):
    type: Literal["ping"] = "ping"


class WsPong(_Wire):
    type: Literal["pong"] = "pong"


class WsAuth(_Wire):
    type: Literal["auth"] = "auth"
    api_key: str


class WsReady(_Wire):
    type: Literal["ready"] = "ready"
    tenant: str | None = None


class WsSubscribe(_Wire):
    type: Literal["subscribe"] = "subscribe"
    namespace: str | None = None


class WsSubscribed(_Wire):
    type: Literal["subscribed"] = "subscribed"
    namespace: str | None = None


WsMessage: TypeAdapter[Any] = TypeAdapter(
    Annotated[
        WsChat
        | WsTextDelta
        | WsResponse
        | WsError
        | WsApprovalRequest
        | WsApprovalResponse
        | WsApprovalDecided
        | WsToolCallStarted
        | WsToolCallCompleted
        | WsRunStarted
        | WsAnnouncement
        | WsPing
        | WsPong
        | WsAuth
        | WsReady
        | WsSubscribe
        | WsSubscribed,
        Field(discriminator="type"),
    ]
)
"""Every WebSocket message, told apart by ``type`` (orra's serde tag)."""
