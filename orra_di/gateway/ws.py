"""``GET /v1/ws``: orra's ``WsMessage`` protocol, several chats at once per connection.

Each chat the client starts runs as a gateway run (see :mod:`orra_di.gateway.core`); its
events are forwarded with the ``chat_id`` the client chose. Garbage (not JSON, not an
object, an unknown ``type``, an oversized frame) is answered with an ``error`` message
and the connection stays open; a client silent for ``ws_idle_timeout`` with no chat
running is closed (code 4408). Runs whose connection closes go on and are stored.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from orra_di.gateway.auth import Caller, bearer
from orra_di.gateway.core import Gateway, GatewayError, RunHandle, bad_request
from orra_di.store import in_subtree

__all__ = ["websocket_endpoint"]

log = logging.getLogger("orra_di.gateway")

CLOSE_UNAUTHORIZED = 4401
CLOSE_IDLE = 4408


class _Connection:
    def __init__(self, gateway: Gateway, websocket: WebSocket, caller: Caller) -> None:
        self.gateway = gateway
        self.websocket = websocket
        self.caller = caller
        self.lock = anyio.Lock()
        self.running: set[str] = set()
        self.approvals: dict[str, set[str]] = {}  # call id -> approval ids, from requests sent
        self.own_runs: set[str] = set()  # runs this connection started: not echoed again
        self.subscription: anyio.CancelScope | None = None
        self.closed = False

    async def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        async with self.lock:
            try:
                await self.websocket.send_text(json.dumps(message))
            except Exception:  # the peer went away: stop sending, runs go on
                self.closed = True

    async def error(self, message: str, code: str, chat_id: Any = None) -> None:
        await self.send({"type": "error", "chat_id": chat_id, "error": message, "code": code})

    async def handle(self, tg: anyio.abc.TaskGroup, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "pong":
            pass
        elif kind == "chat":
            await self.chat(tg, message)
        elif kind == "tool_approval_response":
            await self.approval(message)
        elif kind == "subscribe":
            await self.subscribe(tg, message)
        elif kind == "auth":
            await self.error("already authenticated", "bad_request")
        else:
            await self.error(
                f"unknown message type {kind!r}; send chat, tool_approval_response or ping",
                "bad_request",
            )

    async def chat(self, tg: anyio.abc.TaskGroup, message: dict[str, Any]) -> None:
        chat_id = message.get("chat_id")
        if chat_id is not None and (
            isinstance(chat_id, bool) or not isinstance(chat_id, str | int)
        ):
            await self.error("chat_id must be a string or an integer", "bad_request")
            return
        try:
            unknown = sorted(
                set(message) - {"type", "chat_id", "message", "namespace", "agent", "model"}
            )
            if unknown:
                raise bad_request(f"unknown field(s) {', '.join(unknown)} in a chat message")
            text = message.get("message")
            if not isinstance(text, str) or not text.strip():
                raise bad_request("message must be a non-empty string")
            if message.get("model") is not None:
                raise bad_request("model cannot be chosen by a client; the agent's model is used")
            agent = message.get("agent")
            if agent is not None and not isinstance(agent, str):
                raise bad_request("agent must be a string or null")
            key = _chat_key(chat_id)
            if chat_id is not None and key in self.running:
                raise bad_request(f"chat {key} is still running; use another chat_id")
            if len(self.running) >= self.gateway.settings.ws_max_chats:
                raise GatewayError(
                    429, "busy", "too many chats running on this connection; wait for one to end"
                )
            namespace = self.gateway.chat_namespace(self.caller, message.get("namespace"))
            handle = self.gateway.start(
                self.caller, text, namespace=namespace, agent=agent, stream=True
            )
        except GatewayError as exc:
            await self.error(exc.message, exc.code, chat_id)
            return
        if chat_id is None:  # each chat without an id counts (and runs) on its own
            key = "\x00" + handle.run
        self.running.add(key)
        self.own_runs.add(handle.run)
        tg.start_soon(self.forward, chat_id, key, handle)

    async def forward(self, chat_id: Any, key: str, handle: RunHandle) -> None:
        try:
            async for name, data in handle.events():
                out = _ws_message(name, data, chat_id)
                if out is None or out["type"] == "run_started":
                    continue
                if out["type"] == "tool_approval_request":
                    self.approvals.setdefault(data["call_id"], set()).add(data["id"])
                await self.send(out)
        finally:
            self.running.discard(key)
            self.own_runs.discard(handle.run)

    async def subscribe(self, tg: anyio.abc.TaskGroup, message: dict[str, Any]) -> None:
        """Events of the runs in a subtree, from every replica (replaces any earlier one)."""
        raw = message.get("namespace")
        if raw is None:
            prefix = self.caller.tenant
        else:
            namespace = self.gateway.parse_namespace(raw)
            if not self.caller.owns(namespace):
                raise GatewayError(
                    403, "namespace_forbidden",
                    f"this key may only use namespaces under {self.caller.tenant!r}",
                )  # fmt: skip
            prefix = namespace.key
        if self.subscription is not None:
            self.subscription.cancel()
        scope = self.subscription = anyio.CancelScope()
        ready = anyio.Event()

        async def relay() -> None:
            with scope:
                async with self.gateway.bus().subscribe() as messages:
                    ready.set()
                    async for published in messages:
                        key = published.get("namespace")
                        if not isinstance(key, str) or published.get("run") in self.own_runs:
                            continue
                        if prefix is not None and not in_subtree(key, prefix):
                            continue
                        data = published.get("data")
                        out = _ws_message(str(published.get("event")), data or {}, None)
                        if out is not None:
                            await self.send({**out, "namespace": key})
            ready.set()

        tg.start_soon(relay)
        await ready.wait()
        await self.send({"type": "subscribed", "namespace": prefix})

    async def approval(self, message: dict[str, Any]) -> None:
        approved = message.get("approved")
        call_id = message.get("call_id")
        approval_id = message.get("approval_id")
        reason = message.get("reason")
        if not isinstance(approved, bool):
            await self.error("approved must be true or false", "bad_request")
            return
        if reason is not None and not isinstance(reason, str):
            await self.error("reason must be a string", "bad_request")
            return
        if approval_id is None and isinstance(call_id, str):
            # call ids come from the model: two runs may share one, and a guess must not
            # decide the other run's call; the approval's id is never ambiguous. Only
            # requests still waiting count (one decided earlier may have had the same id),
            # those this connection was shown first; with none waiting, the one it was
            # shown gets the answer, which returns that decision as it stands.
            pending = await self.gateway.approval_store().pending(self.caller.tenant)
            waiting = {r.id for r in pending if r.call_id == call_id}
            shown = self.approvals.get(call_id, set())
            matches = (shown & waiting) or waiting or shown
            if len(matches) > 1:
                await self.error(
                    f"several approval requests have call_id {call_id!r}; give approval_id",
                    "bad_request",
                )
                return
            approval_id = next(iter(matches), None)
        if not isinstance(approval_id, str):
            await self.error("no pending approval for that call_id; give approval_id", "not_found")
            return
        try:
            record = await self.gateway.answer_approval(
                self.caller, approval_id, approved=approved, reason=reason
            )
        except GatewayError as exc:
            await self.error(exc.message, exc.code)
            return
        await self.send(
            {
                "type": "tool_approval_decided",
                "approval_id": record.id,
                "call_id": record.call_id,
                "status": record.status.value,
                "decided_by": record.decided_by,
            }
        )


def _chat_key(chat_id: str | int | None) -> str:
    """A chat's key among those running on a connection: the id's JSON text.

    JSON ``1`` and ``"1"`` are two ids a client may use for two chats (``str()`` made them
    one, and refused the second as still running); events carry the id back as sent.
    """
    return json.dumps(chat_id)


def _ws_message(name: str, data: dict[str, Any], chat_id: Any) -> dict[str, Any] | None:
    if name == "text_delta":
        return {"type": "text_delta", "chat_id": chat_id, "content": data["text"]}
    if name in ("tool_call_started", "tool_call_completed"):
        return {"type": name, "chat_id": chat_id, **data}
    if name == "start":
        return {"type": "run_started", "chat_id": chat_id, **data}
    if name == "announcement":  # a cron job's answer (orra-di serve with cron.enabled)
        return {"type": "announcement", "chat_id": chat_id, **data}
    if name == "tool_approval_request":
        return {
            "type": "tool_approval_request",
            "chat_id": chat_id,
            "call_id": data["call_id"],
            "tool_name": data["tool_name"],
            "arguments": data["arguments"],
            "approval_id": data["id"],
            "namespace": data["namespace"],
            "expires_at": data["expires_at"],
        }
    if name == "end":
        return {
            "type": "response",
            "chat_id": chat_id,
            "message": data["message"],
            "namespace": data["namespace"],
            "usage": data["usage"],
            "agent": data["agent"],
        }
    if name == "error":
        return {"type": "error", "chat_id": chat_id, "error": data["error"], "code": data["code"]}
    return None  # turn: not part of the WebSocket protocol


GONE = "\x00gone"
"""What ``_receive`` returns once the client left (no JSON text can equal it)."""


async def _receive(websocket: WebSocket, seconds: float) -> str | None:
    """The next text (or UTF-8 bytes) frame; None when the client stayed silent."""
    with anyio.move_on_after(seconds):
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return GONE
        text = message.get("text")
        if text is None:
            raw = message.get("bytes") or b""
            text = raw.decode("utf-8", "replace")
        return str(text)
    return None


def _parse(text: str, limit: int) -> dict[str, Any]:
    if len(text) > limit // 4 and len(text.encode("utf-8", "surrogatepass")) > limit:
        raise GatewayError(413, "payload_too_large", f"message over {limit} bytes")
    try:
        message = json.loads(text)
    except ValueError:
        raise bad_request('not JSON; send objects like {"type": "ping"}') from None
    except RecursionError:  # it would end the connection, and log a traceback
        raise bad_request("the message's JSON is nested too deeply") from None
    if not isinstance(message, dict):
        raise bad_request("a message must be a JSON object with a type")
    return message


async def websocket_endpoint(gateway: Gateway, websocket: WebSocket) -> None:
    settings = gateway.settings
    await websocket.accept()
    connection: _Connection | None = None
    try:
        header = bearer(websocket.headers.get("authorization"))
        caller = gateway.keys.authenticate(header)
        if caller is None and header is None:
            text = await _receive(websocket, settings.ws_auth_timeout)
            if text is None or text == GONE:
                if text is None:
                    await websocket.close(CLOSE_IDLE)
                return
            try:
                first = _parse(text, settings.max_body_bytes)
            except GatewayError:
                first = {}
            key = first.get("api_key") if first.get("type") == "auth" else None
            # surrounding whitespace is not part of a key (as in the HTTP Bearer header)
            caller = gateway.keys.authenticate(key.strip() if isinstance(key, str) else None)
        if caller is None:
            await websocket.send_text(
                json.dumps(
                    {
                        "type": "error",
                        "chat_id": None,
                        "code": "unauthorized",
                        "error": "missing, wrong or revoked API key",
                    }
                )
            )
            await websocket.close(CLOSE_UNAUTHORIZED)
            return
        connection = _Connection(gateway, websocket, caller)
        await connection.send({"type": "ready", "tenant": caller.tenant})
        async with anyio.create_task_group() as tg:
            while True:
                text = await _receive(websocket, settings.ws_idle_timeout)
                if text == GONE:
                    break
                if text is None:
                    if connection.running:
                        continue  # chats are running: the client is waiting, not gone
                    await websocket.close(CLOSE_IDLE)
                    break
                try:
                    message = _parse(text, settings.max_body_bytes)
                    await connection.handle(tg, message)
                except GatewayError as exc:
                    await connection.error(exc.message, exc.code)
            tg.cancel_scope.cancel()
    except WebSocketDisconnect:
        pass
    finally:
        if connection is not None:
            connection.closed = True
        if websocket.application_state == WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await websocket.close()
