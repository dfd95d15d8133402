"""``create_app(container)``: the gateway as a Starlette ASGI application.

Routes are thin: they authenticate, parse and check the JSON, and hand the work to
:class:`~orra_di.gateway.core.Gateway`. Every error leaves as JSON with a ``code``.
"""

from __future__ import annotations

import bisect
import functools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orra_di.errors import ConfigurationError, install_hint

try:
    from sse_starlette import EventSourceResponse
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.cors import CORSMiddleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route, WebSocketRoute
    from starlette.staticfiles import StaticFiles
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ConfigurationError(
        f"the gateway needs starlette, sse-starlette and uvicorn: {install_hint('gateway')}"
    ) from exc

from orra_di.gateway.auth import Caller, bearer
from orra_di.gateway.core import (
    Gateway,
    GatewayError,
    approval_json,
    bad_request,
    not_found,
    session_json,
)
from orra_di.gateway.openapi import OPENAPI
from orra_di.gateway.settings import GatewaySettings
from orra_di.store import in_subtree

if TYPE_CHECKING:
    from orra_di.containers import Container

__all__ = ["create_app"]

log = logging.getLogger("orra_di.gateway")

STATIC = Path(__file__).parent / "static"

_CHAT_FIELDS = frozenset({"message", "namespace", "agent"})


def error_response(exc: GatewayError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def authenticate(gateway: Gateway, request: Request) -> Caller:
    caller = gateway.keys.authenticate(bearer(request.headers.get("authorization")))
    if caller is None:
        raise GatewayError(
            401,
            "unauthorized",
            "missing, wrong or revoked API key; send 'Authorization: Bearer <key>'",
        )
    return caller


async def read_json(request: Request, limit: int) -> Any:
    """The request's JSON body, at most ``limit`` bytes (413 past it, 400 if not JSON)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise GatewayError(413, "payload_too_large", f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise GatewayError(413, "payload_too_large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"the body is not valid JSON: {exc}") from None
    except RecursionError:  # "[[[[..." within the size limit: the client's fault, not a 500
        raise bad_request("the body's JSON is nested too deeply") from None


SESSIONS_PAGE = 1000
"""Session keys per ``GET /v1/sessions`` page unless ``limit`` says otherwise."""
SESSIONS_PAGE_MAX = 10_000


def page_of(request: Request) -> tuple[int, str | None]:
    """``limit`` and ``after`` of a session listing (keys come sorted; ``after`` is the last
    key of the previous page, as ``next`` gave it)."""
    raw = request.query_params.get("limit")
    if raw is None:
        limit = SESSIONS_PAGE
    else:
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= SESSIONS_PAGE_MAX:
            raise bad_request(f"limit must be a whole number from 1 to {SESSIONS_PAGE_MAX}")
    return limit, request.query_params.get("after") or None


def chat_fields(body: Any) -> tuple[str, Any, str | None]:
    """``(message, namespace or None, agent or None)`` of a chat body, checked."""
    if not isinstance(body, dict):
        raise bad_request('the body must be a JSON object like {"message": "hi"}')
    unknown = sorted(set(body) - _CHAT_FIELDS)
    if unknown:
        raise bad_request(
            f"unknown field(s) {', '.join(unknown)}; a chat takes message, namespace, agent"
        )
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        raise bad_request("message must be a non-empty string")
    agent = body.get("agent")
    if agent is not None and not isinstance(agent, str):
        raise bad_request("agent must be a string (an agent's name) or null")
    return message, body.get("namespace"), agent


Endpoint = Callable[[Request], Awaitable[Response]]


def guarded(endpoint: Endpoint) -> Endpoint:
    """Every failure of ``endpoint`` becomes a JSON error response (never a bare 500)."""

    @functools.wraps(endpoint)
    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except GatewayError as exc:
            return error_response(exc)
        except Exception:
            log.exception("request %s %s failed", request.method, request.url.path)
            return JSONResponse(
                {
                    "error": "internal error; the server log has the details",
                    "code": "internal_error",
                },
                status_code=500,
            )

    return run


def create_app(container: Container, settings: GatewaySettings | None = None) -> Starlette:
    """The gateway for ``container``'s agents and store.

    The app does not open the container's resources: run it inside
    ``async with lifespan(container)`` (``orra-di serve`` does), or give your own
    application's lifespan that job when you mount it
    (``app.mount("/agents", create_app(container))``).
    """
    gateway = Gateway(container, settings)
    limit = gateway.settings.max_body_bytes

    async def chat(request: Request) -> Response:
        caller = authenticate(gateway, request)
        message, raw_ns, agent = chat_fields(await read_json(request, limit))
        namespace = gateway.chat_namespace(caller, raw_ns)
        handle = gateway.start(caller, message, namespace=namespace, agent=agent, stream=False)
        return JSONResponse(await handle.outcome())

    async def chat_stream(request: Request) -> Response:
        caller = authenticate(gateway, request)
        message, raw_ns, agent = chat_fields(await read_json(request, limit))
        namespace = gateway.chat_namespace(caller, raw_ns)
        handle = gateway.start(caller, message, namespace=namespace, agent=agent, stream=True)

        async def events() -> AsyncIterator[dict[str, str]]:
            async for name, data in handle.events():
                yield {"event": name, "data": json.dumps(data)}

        return EventSourceResponse(events(), ping=15)

    async def list_sessions(request: Request) -> Response:
        caller = authenticate(gateway, request)
        raw = request.query_params.get("prefix")
        prefix = gateway.parse_namespace(raw, "prefix").key if raw else None
        tenant = caller.tenant
        if tenant is not None:
            if prefix is None or in_subtree(tenant, prefix):
                prefix = tenant
            elif not in_subtree(prefix, tenant):
                return JSONResponse({"sessions": [], "next": None})
        limit, after = page_of(request)
        keys = [ns.key for ns in await gateway.store().list(prefix)]
        if after is not None:
            keys = keys[bisect.bisect_right(keys, after) :]
        page, more = keys[:limit], len(keys) > limit
        return JSONResponse({"sessions": page, "next": page[-1] if more else None})

    async def get_session(request: Request) -> Response:
        caller = authenticate(gateway, request)
        namespace = gateway.owned_namespace(caller, request.path_params["namespace"])
        session = await gateway.store().load(namespace)
        if session is None:
            raise not_found(f"no session {namespace.key!r}")
        return JSONResponse(session_json(session))

    async def delete_session(request: Request) -> Response:
        caller = authenticate(gateway, request)
        namespace = gateway.owned_namespace(caller, request.path_params["namespace"])
        tree = request.query_params.get("tree", "false").lower()
        if tree not in ("true", "false", "1", "0"):
            raise bad_request("tree must be true or false")
        store = gateway.store()
        if tree in ("true", "1"):
            from orra_di.cron.service import erase_tenant

            count, jobs = await erase_tenant(store, namespace, container.cron_store())
        else:
            count, jobs = int(await store.delete(namespace)), 0
        if not count and not jobs:
            raise not_found(f"no session {namespace.key!r}")
        return JSONResponse({"deleted": count, "cron_jobs_deleted": jobs})

    async def erase_namespace(request: Request) -> Response:
        """Everything stored under a namespace of the caller's subtree, in every store
        (the GDPR erasure of ``orra_di.erasure``); counts per kind, zero when nothing was
        there, so a retry after a failure is safe."""
        from orra_di.erasure import erase

        caller = authenticate(gateway, request)
        namespace = gateway.owned_namespace(caller, request.path_params["namespace"])
        report = await erase(container, namespace)
        return JSONResponse(
            {"namespace": namespace.key, "erased": report.counts, "skipped": report.skipped}
        )

    async def list_agents(request: Request) -> Response:
        authenticate(gateway, request)
        agents = gateway.agents
        return JSONResponse(
            {
                "agents": [
                    {
                        "name": p.name,
                        "personality": p.personality,
                        "model": p.model,
                        "default": p.name == agents.default_agent,
                    }
                    for p in agents.profiles
                ],
                "default": agents.default_agent,
            }
        )

    async def whoami(request: Request) -> Response:
        caller = authenticate(gateway, request)
        return JSONResponse({"tenant": caller.tenant, "key": caller.key})

    async def list_approvals(request: Request) -> Response:
        caller = authenticate(gateway, request)
        raw = request.query_params.get("namespace")
        namespace = gateway.parse_namespace(raw).key if raw else caller.tenant
        if namespace is not None and caller.tenant is not None:
            if in_subtree(caller.tenant, namespace):
                namespace = caller.tenant
            elif not in_subtree(namespace, caller.tenant):
                return JSONResponse({"approvals": []})
        records = await gateway.approval_store().pending(namespace)
        return JSONResponse({"approvals": [approval_json(r) for r in records]})

    async def answer_approval(request: Request) -> Response:
        caller = authenticate(gateway, request)
        body = await read_json(request, limit)
        if not isinstance(body, dict) or not isinstance(body.get("approved"), bool):
            raise bad_request('the body must be {"approved": true|false, "reason": optional}')
        if set(body) - {"approved", "reason"}:
            raise bad_request("an answer takes only approved and reason")
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise bad_request("reason must be a string")
        record = await gateway.answer_approval(
            caller, request.path_params["approval_id"], approved=body["approved"], reason=reason
        )
        return JSONResponse(approval_json(record))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            await gateway.store().list("orra-di:readyz")
        except Exception as exc:
            log.warning("readiness check failed: %s: %s", type(exc).__name__, exc)
            return JSONResponse(
                {
                    "error": f"the session store is unreachable ({type(exc).__name__})",
                    "code": "not_ready",
                },
                status_code=503,
            )
        return JSONResponse({"status": "ready"})

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

    static_dir = Path(gateway.settings.static_dir) if gateway.settings.static_dir else STATIC

    async def index(request: Request) -> Response:
        page = static_dir / "index.html"
        if page.is_file():
            return FileResponse(page, media_type="text/html")
        return JSONResponse(
            {
                "status": "ok",
                "api": "v1",
                "openapi": "openapi.json",
                "note": "no chat page is installed in this build",
            }
        )

    from orra_di.gateway.openai_compat import chat_completions, get_model, list_models
    from orra_di.gateway.ws import websocket_endpoint

    async def completions(request: Request) -> Response:
        return await chat_completions(gateway, request, limit)

    async def models(request: Request) -> Response:
        return await list_models(gateway, request)

    async def model(request: Request) -> Response:
        return await get_model(gateway, request)

    async def ws(websocket: Any) -> None:
        await websocket_endpoint(gateway, websocket)

    routes = [
        Route("/", guarded(index), methods=["GET"]),
        Route("/healthz", guarded(healthz), methods=["GET"]),
        Route("/readyz", guarded(readyz), methods=["GET"]),
        Route("/openapi.json", guarded(openapi), methods=["GET"]),
        Route("/v1/chat", guarded(chat), methods=["POST"]),
        Route("/v1/chat/stream", guarded(chat_stream), methods=["POST"]),
        Route("/v1/chat/completions", guarded(completions), methods=["POST"]),
        Route("/v1/models", guarded(models), methods=["GET"]),
        Route("/v1/models/{model}", guarded(model), methods=["GET"]),
        Route("/v1/sessions", guarded(list_sessions), methods=["GET"]),
        Route("/v1/sessions/{namespace:path}", guarded(get_session), methods=["GET"]),
        Route("/v1/sessions/{namespace:path}", guarded(delete_session), methods=["DELETE"]),
        Route("/v1/namespaces/{namespace:path}", guarded(erase_namespace), methods=["DELETE"]),
        Route("/v1/agents", guarded(list_agents), methods=["GET"]),
        Route("/v1/whoami", guarded(whoami), methods=["GET"]),
        Route("/v1/approvals", guarded(list_approvals), methods=["GET"]),
        Route("/v1/approvals/{approval_id}", guarded(answer_approval), methods=["POST"]),
        WebSocketRoute("/v1/ws", ws),
        Mount("/static", StaticFiles(directory=static_dir, check_dir=False), name="static"),
    ]

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        codes = {404: "not_found", 405: "method_not_allowed"}
        where = f"{request.method} {request.url.path}"
        if exc.status_code == 404 and request.url.path.rstrip("/").endswith("/v1/ws"):
            message = f"{where}: /v1/ws speaks WebSocket only; connect with a WebSocket client"
        elif exc.status_code == 404:
            message = f"no endpoint {where}; the endpoints are listed at /openapi.json"
        elif exc.status_code == 405:
            # Starlette builds Allow from a set: sorted, the message is the same every time.
            allow = (exc.headers or {}).get("Allow", "")
            allowed = ", ".join(sorted(m.strip() for m in allow.split(",") if m.strip()))
            message = f"{where} is not allowed" + (
                f"; this path takes {allowed}" if allowed else ""
            )
        else:
            message = str(exc.detail)
        return JSONResponse(
            {"error": message, "code": codes.get(exc.status_code, "http_error")},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    middleware = []
    if gateway.settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=gateway.settings.cors_origins,
                allow_methods=["GET", "POST", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "X-Orra-Session"],
                expose_headers=["X-Orra-Session"],
            )
        )
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: on_http_error},
    )
    app.state.gateway = gateway
    return app
