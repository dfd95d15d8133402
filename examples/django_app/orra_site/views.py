"""JSON views: chat with an agent, list a user's sessions, read one.

A user is authenticated with HTTP Basic credentials checked by Django's auth, and
everything they say lives under the namespace ``site:<user id>:<conversation>``, so
one user can neither read nor continue another's conversations. The views are
``csrf_exempt`` because they never use cookies: the credentials come with each
request, so a forged cross-site request carries none.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from orra_di import (
    MaxTurnsExceeded,
    Namespace,
    NamespaceError,
    OrraError,
    ProviderError,
    SessionBusyError,
    StoreError,
)

from .agents import get_orra

MAX_MESSAGE = 20_000
"""Characters a user may send in one message."""

View = Callable[[HttpRequest, AbstractBaseUser], HttpResponse]


def error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": code, "message": message}, status=status)


def basic_auth(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Calls ``view(request, user, ...)`` for valid credentials, else answers 401."""

    @wraps(view)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        kind, _, encoded = request.headers.get("Authorization", "").partition(" ")
        user = None
        if kind.lower() == "basic":
            try:
                name, _, password = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                name = password = ""
            user = authenticate(request, username=name, password=password)
        if user is None:
            response = error(401, "unauthorized", "send HTTP Basic credentials of a user")
            response["WWW-Authenticate"] = 'Basic realm="orra-di"'
            return response
        return view(request, user, *args, **kwargs)

    return checked


def user_namespace(user: AbstractBaseUser, *conversation: str) -> Namespace:
    return Namespace("site", str(user.pk), *conversation)


def orra_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """orra-di's errors as JSON with a status; details of a store failure stay in the log."""

    @wraps(view)
    def handled(*args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(*args, **kwargs)
        except NamespaceError as exc:
            return error(400, "invalid_conversation", str(exc))
        except SessionBusyError as exc:
            return error(409, "session_busy", str(exc))
        except (ProviderError, MaxTurnsExceeded) as exc:
            return error(502, "agent_failed", str(exc))
        except StoreError:
            return error(503, "store_unavailable", "the session store is unavailable")
        except OrraError as exc:
            return error(500, "agent_error", str(exc))

    return handled


@csrf_exempt
@require_POST
@basic_auth
@orra_errors
def chat(request: HttpRequest, user: AbstractBaseUser) -> HttpResponse:
    """``{"message": ..., "conversation": "default", "agent": null}`` → the agent's answer."""
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return error(400, "invalid_request", "the body is not JSON")
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE:
        return error(400, "invalid_request", f"message: a string of 1 to {MAX_MESSAGE} characters")
    conversation = str(body.get("conversation") or "default")
    orra = get_orra()
    ns = user_namespace(user, conversation)
    if body.get("agent"):
        if str(body["agent"]) not in orra.runtimes:
            agents = ", ".join(p.name for p in orra.runtimes.profiles)
            return error(404, "unknown_agent", f"no agent {body['agent']!r}; agents: {agents}")
        agent, content = orra.runtimes.profile(str(body["agent"])).name, message
    else:
        agent, content = orra.runtimes.route(message)  # "@Scout ..." picks Scout
    result = orra.call(orra.runtimes[agent].run, ns, content)
    usage = result.total_usage
    return JsonResponse(
        {
            "agent": agent,
            "conversation": conversation,
            "answer": result.final_message.content,
            "turns": len(result.turns),
            "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
        }
    )


@require_GET
@basic_auth
@orra_errors
def sessions(request: HttpRequest, user: AbstractBaseUser) -> HttpResponse:
    """The user's conversations, with how many messages each holds."""
    orra = get_orra()
    mine = user_namespace(user)

    async def listing() -> list[dict[str, Any]]:
        found = []
        for ns in await orra.store.list(mine):
            session = await orra.store.load(ns)
            if session is not None and ns != mine:
                conversation = ":".join(ns.segments[len(mine.segments) :])
                found.append({"conversation": conversation, "messages": len(session.messages)})
        return found

    return JsonResponse({"sessions": orra.call(listing)})


@require_GET
@basic_auth
@orra_errors
def session(request: HttpRequest, user: AbstractBaseUser, conversation: str) -> HttpResponse:
    """One conversation's messages."""
    orra = get_orra()
    found = orra.call(orra.store.load, user_namespace(user, conversation))
    if found is None:
        return error(404, "session_not_found", f"no conversation {conversation!r}")
    messages = [m.model_dump(mode="json", exclude={"vendor_data"}) for m in found.messages]
    return JsonResponse({"conversation": conversation, "messages": messages})
