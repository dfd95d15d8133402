"""The HTTP routes. Their collaborators come from the container through wiring.

``Annotated[RuntimeMap, Depends(Provide[Container.runtimes])]`` has no default
value, so the function never silently keeps a placeholder: called without
wiring and without the argument it raises ``TypeError``; served by an app
whose container was not wired to this module, FastAPI hands it the marker and
:func:`fastapi_app.app.create_app`'s start-up check refuses to start instead.

No ``from __future__ import annotations`` here: dependency-injector does not
evaluate string annotations, so it would not see the ``Provide`` markers at all
(the start-up check then refuses to start).
"""

from typing import Annotated

from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from orra_di import Message, Namespace
from orra_di.containers import Container
from orra_di.runtime_set import RuntimeMap
from orra_di.store import SessionStore

from .errors import ApiError, ErrorBody

__all__ = [
    "ErasedOut",
    "HistoryOut",
    "MessageIn",
    "RunOut",
    "UsageOut",
    "delete_session",
    "get_session",
    "post_message",
    "router",
    "wired_container",
]

router = APIRouter(prefix="/sessions", tags=["sessions"])


# -- bodies --------------------------------------------------------------------


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, description="What the user says; '@Agent' picks an agent.")
    agent: str | None = Field(None, description="The agent to ask (default: routed by mention).")


class UsageOut(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class RunOut(BaseModel):
    agent: str
    namespace: str
    answer: str
    turns: int
    usage: UsageOut


class HistoryOut(BaseModel):
    namespace: str
    messages: list[Message]


class ErasedOut(BaseModel):
    namespace: str
    tree: bool
    deleted: int


def _errors(*codes: int) -> dict[int | str, dict[str, object]]:
    return {code: {"model": ErrorBody} for code in codes}


def session_key(namespace: str) -> Namespace:
    """The ``{namespace}`` path segment, e.g. ``acme:alice``; a bad key is a 422."""
    return Namespace.parse(namespace)  # NamespaceError -> 422 in errors.py


SessionKey = Annotated[Namespace, Depends(session_key)]
Runtimes = Annotated[RuntimeMap, Depends(Provide[Container.runtimes])]
Store = Annotated[SessionStore, Depends(Provide[Container.store])]


# -- routes --------------------------------------------------------------------


@router.post("/{namespace}/messages", response_model=RunOut, responses=_errors(404, 409, 422, 502))
@inject
async def post_message(ns: SessionKey, body: MessageIn, runtimes: Runtimes) -> RunOut:
    """Send a message to an agent in the session ``namespace`` and return its answer."""
    if body.agent is not None:
        if body.agent not in runtimes:
            names = ", ".join(p.name for p in runtimes.profiles)
            message = f"agent {body.agent!r} not found; available agents: {names}"
            raise ApiError(404, "unknown_agent", message)
        agent, text = runtimes.profile(body.agent).name, body.message
    else:
        agent, text = runtimes.route(body.message)
    result = await runtimes[agent].run(ns, text)
    usage = result.total_usage
    return RunOut(
        agent=agent,
        namespace=ns.key,
        answer=result.final_message.content,
        turns=len(result.turns),
        usage=UsageOut(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
        ),
    )


@router.get("/{namespace}", response_model=HistoryOut, responses=_errors(404, 422))
@inject
async def get_session(ns: SessionKey, store: Store) -> HistoryOut:
    """The stored messages of one session, tool calls and results included."""
    session = await store.load(ns)
    if session is None:
        raise ApiError(404, "session_not_found", f"no session is stored under {ns.key!r}")
    return HistoryOut(namespace=ns.key, messages=session.messages)


@router.delete("/{namespace}", response_model=ErasedOut, responses=_errors(422))
@inject
async def delete_session(
    ns: SessionKey,
    store: Store,
    tree: Annotated[bool, Query(description="Also erase every session below it.")] = False,
) -> ErasedOut:
    """Erase a session, or with ``tree=true`` it and every session below it."""
    deleted = await store.delete_tree(ns) if tree else int(await store.delete(ns))
    return ErasedOut(namespace=ns.key, tree=tree, deleted=deleted)


# -- start-up check ------------------------------------------------------------


@inject
def wired_container(container: Annotated[Container, Provide[Container]]) -> Container:
    """The container this module is wired to; ``TypeError`` when it is wired to none."""
    return container
