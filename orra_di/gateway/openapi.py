"""The OpenAPI description served at ``GET /openapi.json`` (written by hand, kept short)."""

from __future__ import annotations

from typing import Any

__all__ = ["OPENAPI"]

_ERROR = {
    "type": "object",
    "required": ["error", "code"],
    "properties": {"error": {"type": "string"}, "code": {"type": "string"}},
}
_USAGE = {
    "type": "object",
    "properties": {
        "input_tokens": {"type": "integer"},
        "output_tokens": {"type": "integer"},
        "total_tokens": {"type": "integer"},
    },
}
_CHAT_REQUEST = {
    "type": "object",
    "required": ["message"],
    "additionalProperties": False,
    "properties": {
        "message": {"type": "string", "minLength": 1},
        "namespace": {"type": "string", "description": "full key, e.g. acme:alice; omitted: new"},
        "agent": {"type": "string", "description": "agent name (default: the first agent)"},
    },
}
_CHAT_RESPONSE = {
    "type": "object",
    "properties": {
        "message": {"type": "string"},
        "namespace": {"type": "string"},
        "agent": {"type": "string"},
        "usage": {"$ref": "#/components/schemas/Usage"},
        "turns": {"type": "integer"},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
    },
}


def _json(schema: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): {"description": "error", **_json("Error")} for code in codes}


def _op(summary: str, ok: dict[str, Any], *errors: int, body: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": {"description": "ok", **ok}, **_errors(401, *errors)},
    }
    if body:
        op["requestBody"] = {"required": True, **_json(body)}
    return op


_NS_PARAM = {"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "orra-di gateway",
        "version": "1",
        "description": "Chat with orra-di agents over HTTP, SSE, WebSocket (GET /v1/ws) and "
        "the OpenAI chat completions API. Auth: Authorization: Bearer <key>.",
    },
    "components": {
        "schemas": {
            "Error": _ERROR,
            "Usage": _USAGE,
            "ChatRequest": _CHAT_REQUEST,
            "ChatResponse": _CHAT_RESPONSE,
        },
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/chat": {
            "post": _op(
                "Run one chat turn and return its answer",
                _json("ChatResponse"),
                400,
                403,
                404,
                409,
                413,
                502,
                504,
                body="ChatRequest",
            )
        },
        "/v1/chat/stream": {
            "post": _op(
                "Run one chat turn as Server-Sent Events: start, text_delta, "
                "tool_call_started, tool_call_completed, tool_approval_request, turn, end | error",
                {"content": {"text/event-stream": {"schema": {"type": "string"}}}},
                400,
                403,
                404,
                413,
                body="ChatRequest",
            )
        },
        "/v1/chat/completions": {
            "post": {
                "summary": "OpenAI-compatible chat completions (model = agent name; only the "
                "last user message is used; session from X-Orra-Session or user)",
                "responses": {"200": {"description": "an OpenAI chat.completion or its stream"}},
            }
        },
        "/v1/models": {
            "get": {
                "summary": "The agents as OpenAI models (id = agent name)",
                "responses": {"200": {"description": "an OpenAI model list"}},
            }
        },
        "/v1/models/{model}": {
            "get": {
                "summary": "One agent as an OpenAI model; 404 for an unknown name",
                "parameters": [
                    {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "an OpenAI model"}},
            }
        },
        "/v1/sessions": {
            "get": {
                **_op("Session keys at or below prefix (within the key's tenant)", {}),
                "parameters": [
                    {"name": "prefix", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer"}},
                    {"name": "after", "in": "query", "schema": {"type": "string"}},
                ],
            }
        },
        "/v1/sessions/{namespace}": {
            "get": {**_op("One session with its messages", {}, 404), "parameters": [_NS_PARAM]},
            "delete": {
                **_op("Delete a session (tree=true: and everything below it)", {}, 404),
                "parameters": [
                    _NS_PARAM,
                    {"name": "tree", "in": "query", "schema": {"type": "boolean"}},
                ],
            },
        },
        "/v1/namespaces/{namespace}": {
            "delete": {
                **_op(
                    "Erase everything under a namespace: sessions, memories, documents, "
                    "cron jobs and runs, approvals, usage",
                    {},
                    404,
                ),
                "parameters": [_NS_PARAM],
            }
        },
        "/v1/agents": {"get": _op("The agents", {})},
        "/v1/whoami": {"get": _op("The caller's tenant (null: the whole store) and key name", {})},
        "/v1/approvals": {
            "get": {
                **_op("Pending approvals in the key's tenant (or a namespace of it)", {}),
                "parameters": [{"name": "namespace", "in": "query", "schema": {"type": "string"}}],
            }
        },
        "/v1/approvals/{approval_id}": {
            "post": {
                **_op("Approve or deny a pending tool call", {}, 400, 404),
                "parameters": [
                    {
                        "name": "approval_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["approved"],
                                "properties": {
                                    "approved": {"type": "boolean"},
                                    "reason": {"type": "string"},
                                },
                            }
                        }
                    },
                },
            }
        },
        "/healthz": {
            "get": {"summary": "Alive", "security": [], "responses": {"200": {"description": "ok"}}}
        },
        "/readyz": {
            "get": {
                "summary": "The store answers",
                "security": [],
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
            }
        },
    },
}
