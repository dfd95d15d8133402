"""``POST /v1/chat/completions``: any OpenAI client talks to an orra-di agent.

The mapping (also in docs/gateway.md):

- ``model`` names the agent (case-insensitive); an unknown one is a 404 ``unknown_agent``.
- The server keeps the conversation, so only the **last** ``user`` message of
  ``messages`` is taken; earlier messages, system messages and tool definitions the
  client sends are ignored (the agent has its own prompt and tools, run server-side).
- The session is ``X-Orra-Session`` (header) or else the ``user`` field, placed under the
  key's tenant (``<tenant>:<session>``) unless it already lies there; with neither, a
  one-off session is made. The namespace used comes back in the ``X-Orra-Session``
  response header (beyond ASCII, and ``%``, percent-encoded UTF-8: a header carries
  ASCII only), and sending it back continues that session.
- Sampling fields (``temperature``, ``max_tokens``...) are ignored: the agent's settings
  apply. ``stream_options.include_usage`` adds the usage chunk at the end of a stream.
- A streamed answer carries the text of every turn as it is written (what the model says
  before a tool call too), turns apart by a blank line; a non-streamed one is the run's
  final answer only.
- ``GET /v1/models`` lists the agents as models (``GET /v1/models/{name}`` one of them),
  so clients that pick a model from the server's list find the agents there.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, unquote

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from orra_di.gateway.core import Gateway, GatewayError, bad_request, last_user_text
from orra_di.store import in_subtree

__all__ = ["chat_completions", "get_model", "list_models"]


_HEADER_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


def session_header(key: str) -> str:
    """``key`` as an ``X-Orra-Session`` value: a header carries ASCII only, so other
    characters (and ``%``) are percent-encoded UTF-8; a request's header is decoded back."""
    return quote(key, safe=_HEADER_SAFE)


def openai_error(exc: GatewayError) -> JSONResponse:
    body = {"error": {"message": exc.message, "type": exc.code, "code": exc.code, "param": None}}
    return JSONResponse(body, status_code=exc.status)


def _usage(usage: dict[str, int]) -> dict[str, int]:
    return {
        "prompt_tokens": usage["input_tokens"],
        "completion_tokens": usage["output_tokens"],
        "total_tokens": usage["total_tokens"],
    }


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "orra-di"}


async def list_models(gateway: Gateway, request: Request) -> Response:
    """The agents in OpenAI's model-list shape (``created`` is 0: agents have no date)."""
    from orra_di.gateway.app import authenticate

    try:
        authenticate(gateway, request)
    except GatewayError as exc:
        return openai_error(exc)
    data = [_model(p.name) for p in gateway.agents.profiles]
    return JSONResponse({"object": "list", "data": data})


async def get_model(gateway: Gateway, request: Request) -> Response:
    """One agent as a model; an unknown name is OpenAI's 404 error shape."""
    from orra_di.gateway.app import authenticate

    try:
        authenticate(gateway, request)
        name, _ = gateway.agent(request.path_params["model"])
    except GatewayError as exc:
        return openai_error(exc)
    return JSONResponse(_model(name))


async def chat_completions(gateway: Gateway, request: Request, limit: int) -> Response:
    from orra_di.gateway.app import authenticate, read_json

    try:
        caller = authenticate(gateway, request)
        body = await read_json(request, limit)
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise bad_request("model must name an agent (GET /v1/agents lists them)")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise bad_request("messages must be a non-empty list")
        text = last_user_text(messages)
        if text is None or not text.strip():
            raise bad_request("messages has no user message with text content")
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise bad_request("stream must be true or false")
        header = request.headers.get("x-orra-session")
        if header and not header.isascii():  # raw UTF-8 bytes read as Latin-1: mojibake
            raise bad_request(
                "X-Orra-Session carries ASCII only: percent-encode other characters as "
                "UTF-8 (acme:%C5%81ukasz is acme:Łukasz), or send the name in the user field"
            )
        session = unquote(header) if header else body.get("user")
        if session is not None and not isinstance(session, str):
            raise bad_request("user must be a string")
        if session:
            relative = gateway.parse_namespace(session, "session").key
            # the namespace the response header named is taken back as it is, so a
            # client can continue a session by echoing that header
            inside = caller.tenant is None or in_subtree(relative, caller.tenant)
            raw = relative if inside else f"{caller.tenant}:{relative}"
            namespace = gateway.chat_namespace(caller, raw)
        else:
            namespace = gateway.chat_namespace(caller, None)
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        handle = gateway.start(caller, text, namespace=namespace, agent=model, stream=stream)
    except GatewayError as exc:
        return openai_error(exc)

    created = int(time.time())
    completion_id = "chatcmpl-" + os.urandom(12).hex()
    headers = {"X-Orra-Session": session_header(namespace.key)}
    if not stream:
        try:
            outcome = await handle.outcome()
        except GatewayError as exc:
            return openai_error(exc)
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": handle.agent,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": outcome["message"]},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": _usage(outcome["usage"]),
            },
            headers=headers,
        )

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, str]:
        data = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": handle.agent,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }
        return {"data": json.dumps(data)}

    async def events() -> AsyncIterator[dict[str, str]]:
        yield chunk({"role": "assistant", "content": ""}, None)
        wrote, gap = False, False  # text in this turn; a turn with text has ended
        async for name, data in handle.events():
            if name == "text_delta":
                # Each turn's text streams as it is written (the model's "let me look" before
                # a tool call too); a blank line keeps the turns apart.
                yield chunk({"content": ("\n\n" if gap else "") + data["text"]}, None)
                wrote, gap = True, False
            elif name == "turn":
                gap, wrote = gap or wrote, False
            elif name == "end":
                yield chunk({}, "stop")
                if include_usage:
                    tail = {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": handle.agent,
                        "choices": [],
                        "usage": _usage(data["usage"]),
                    }
                    yield {"data": json.dumps(tail)}
            elif name == "error":
                error = {"message": data["error"], "type": data["code"], "code": data["code"]}
                yield {"data": json.dumps({"error": error})}
        yield {"data": "[DONE]"}

    return EventSourceResponse(events(), headers=headers, ping=15)
