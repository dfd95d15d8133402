"""Tools the model may call: the protocol, the registry and the ``@tool`` decorator.

A tool returns a string for the model to read. It signals failure by raising
:class:`~orra_di.errors.ToolError`; the runtime turns that (and any other
exception) into an error result, so one tool can never crash a run.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import json
import math
import os
import re
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from queue import Empty, SimpleQueue
from types import UnionType
from typing import (
    Annotated,
    Any,
    Protocol,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    overload,
    runtime_checkable,
)

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import to_jsonable_python

from orra_di.errors import ToolInputError
from orra_di.message import JsonValue
from orra_di.namespace import Namespace, NamespaceLike

__all__ = [
    "FunctionTool",
    "Tool",
    "ToolContext",
    "ToolDefinition",
    "ToolRegistry",
    "ToolTimedOut",
    "tool",
]


class ToolTimedOut(Exception):
    """The per-tool timeout passed before a blocking tool's thread answered.

    Its own class, so a tool that raises ``TimeoutError`` itself (a socket
    timeout, say) is reported as the tool's failure, not as the timeout.
    """


class ToolDefinition(BaseModel):
    """What the model is told about a tool: its name, purpose and JSON schema."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True, init=False)
class ToolContext:
    """Who is calling: the session's namespace and the call being answered.

    orra passed tools nothing (spec §5.6/34), so tools that needed the session
    asked the model for it; here the runtime supplies it. A test may build one
    from a key: ``ToolContext("acme:alice")``.
    """

    namespace: Namespace
    call_id: str = ""

    def __init__(self, namespace: NamespaceLike, call_id: str = "") -> None:
        object.__setattr__(self, "namespace", Namespace.coerce(namespace))
        object.__setattr__(self, "call_id", call_id)


@runtime_checkable
class Tool(Protocol):
    @property
    def definition(self) -> ToolDefinition: ...

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str: ...


class ToolRegistry:
    """Tools by name, in registration order (orra's HashMap order was random, §5.1/9)."""

    def __init__(self, tools: Iterator[Tool] | list[Tool] | tuple[Tool, ...] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(self, tool: Tool) -> None:
        """Add ``tool``; a tool of the same name is replaced (keeping its position)."""
        self._tools[tool.definition.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def remove(self, name: str) -> bool:
        return self._tools.pop(name, None) is not None

    def definitions(self) -> list[ToolDefinition]:
        return [t.definition for t in self._tools.values()]

    def names(self) -> list[str]:
        return list(self._tools)

    def copy(self) -> ToolRegistry:
        return ToolRegistry(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())


def _is_context(annotation: Any) -> bool:
    """``ToolContext``, ``ToolContext | None`` or either wrapped in ``Annotated``.

    Such a parameter is injected and never shown to the model, which could
    otherwise fill it in and claim another namespace.
    """
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if annotation is ToolContext:
        return True
    members = set(get_args(annotation)) if get_origin(annotation) in (Union, UnionType) else set()
    return ToolContext in members and members <= {ToolContext, type(None)}


def _describe(errors: ValidationError) -> str:
    parts = []
    for err in errors.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(to_jsonable_python(value), ensure_ascii=False)


_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""What both vendors accept as a tool name (OpenAI and Anthropic alike); used with
``fullmatch``, since ``$`` would let a trailing newline through."""


class FunctionTool:
    """A typed Python function (sync or async) exposed as a tool.

    The arguments model is built from the signature, so the JSON schema the
    model sees and the validation of what it sends come from the same types.
    A parameter annotated :class:`ToolContext` receives the calling context
    and is hidden from the schema.

    A sync function runs in a worker thread, so a blocking one (file or network
    I/O, a subprocess) cannot stall other sessions, and the per-tool timeout
    abandons it when it hangs (an idle event loop waits a moment for a quick
    one's answer on its own thread: see :func:`_in_thread`). ``blocking=False``
    declares a sync function quick and non-blocking (pure computation of
    microseconds): it then runs inline on the event loop, saving the thread hop
    (about 50-150 µs), but
    nothing can interrupt it, so a timeout cannot fire while it runs.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        schema_extra: Mapping[str, Mapping[str, Any]] | None = None,
        blocking: bool = True,
    ) -> None:
        """``schema_extra`` adds JSON-schema keywords per parameter, for what is only
        known at run time (e.g. ``{"agent": {"enum": names}}``); ``blocking`` is
        explained in the class docstring (it only matters for a sync function)."""
        self._func = func
        self._is_async = inspect.iscoroutinefunction(func)
        self.blocking = blocking and not self._is_async
        self._pace = _Pace()  # whether the loop may wait briefly for this tool's thread
        label = getattr(func, "__name__", repr(func))
        # An explicit name="" is refused like any other bad name, not replaced.
        tool_name = label if name is None else name
        if not isinstance(tool_name, str) or not _TOOL_NAME.fullmatch(tool_name):
            raise ValueError(
                f"tool name {tool_name!r}: the model vendors accept 1 to 64 letters, digits, "
                "'_' and '-' only; give the tool a name with @tool(name=...)"
            )
        try:
            hints = get_type_hints(func, include_extras=True)
            parameters = inspect.signature(func).parameters.values()
        except NameError as exc:
            raise TypeError(
                f"tool {tool_name}: the annotation {exc.name!r} cannot be resolved; import "
                "it where the function is defined (not only under TYPE_CHECKING)"
            ) from exc
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"tool {tool_name}: {label} has no Python signature to describe; wrap it in a "
                f"def with typed parameters ({exc})"
            ) from exc
        fields: dict[str, Any] = {}
        # Model fields get neutral names and the parameter name as alias, so a
        # parameter may be called ``schema``, ``json``, ``model_config`` or ``_x``
        # (names BaseModel reserves or treats as private).
        self._params: dict[str, str] = {}
        self._context_param: str | None = None
        for index, param in enumerate(parameters):
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise TypeError(f"tool {tool_name}: *args/**kwargs cannot be described")
            annotation = hints.get(param.name, Any)
            if _is_context(annotation):
                self._context_param = param.name
                continue
            default = ... if param.default is param.empty else param.default
            self._params[f"p{index}"] = param.name
            fields[f"p{index}"] = (Annotated[annotation, Field(alias=param.name)], default)
        self._model: type[BaseModel] = create_model(
            f"{tool_name}_arguments", __config__=ConfigDict(extra="forbid"), **fields
        )
        schema = self._model.model_json_schema()
        schema.pop("title", None)
        for name_, extra in (schema_extra or {}).items():
            if name_ not in schema["properties"]:
                raise TypeError(
                    f"tool {tool_name}: schema_extra names {name_!r}, which is not one of its "
                    f"parameters ({', '.join(schema['properties']) or 'none'})"
                )
            schema["properties"][name_].update(extra)
        doc = inspect.getdoc(func) or ""
        self._definition = ToolDefinition(
            name=tool_name,
            description=description or doc.split("\n\n")[0].replace("\n", " ").strip(),
            input_schema=schema,
        )

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    @property
    def is_coroutine(self) -> bool:
        """An ``async def``: it runs on the event loop, so a timeout around it is a
        cancel scope (a sync function's is handled by :meth:`execute_within`)."""
        return self._is_async

    @property
    def runs_inline(self) -> bool:
        """A sync function declared non-blocking: ``execute`` never suspends, so no
        timeout can fire while it runs and the runtime opens no cancel scope for it."""
        return not self._is_async and not self.blocking

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        return await self.execute_within(arguments, context, None)

    async def execute_within(
        self, arguments: JsonValue, context: ToolContext, limit: float | None
    ) -> str:
        """``execute``, giving up after ``limit`` seconds with :class:`ToolTimedOut`.

        Only a blocking function can time out here (its worker thread is then
        abandoned): the wait for its thread is a timer on the event loop, with no
        cancel scope entered and left around it, the runtime's per-call cost of a
        per-tool timeout. An async or inline function runs on the loop, so a
        timeout around it is the caller's cancel scope; ``limit`` is ignored.
        """
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise ToolInputError(f"expected a JSON object of arguments, got {_as_text(arguments)}")
        try:
            parsed = self._model.model_validate(arguments)
        except ValidationError as exc:
            raise ToolInputError(_describe(exc)) from None
        kwargs = {param: getattr(parsed, field) for field, param in self._params.items()}
        if self._context_param:
            kwargs[self._context_param] = context
        if self._is_async:
            result = await self._func(**kwargs)
        elif not self.blocking:
            result = self._func(**kwargs)
        else:
            result = await _in_thread(functools.partial(self._func, **kwargs), limit, self._pace)
        return _as_text(result)

    async def __call__(self, **kwargs: Any) -> Any:
        """Call the wrapped function directly (handy in tests)."""
        result = self._func(**kwargs)
        return await result if isinstance(result, Awaitable) else result

    def __repr__(self) -> str:
        return f"FunctionTool({self._definition.name!r})"


class _ToolThreads:
    """Worker threads for sync tools, fed by one queue; about 60% of the cost of a
    ``ThreadPoolExecutor`` hop (no concurrent Future, no work-item wrapper, no
    future chaining through the loop) and 30-40% of ``anyio.to_thread``'s.

    At most ``limit`` threads (anyio's default limit); more calls queue. A
    thread idle for ``idle_seconds`` ends. The threads are daemons, so a tool
    abandoned by a timeout cannot keep the process from exiting.
    ``_idle`` counts the threads that will take queued work without a new one
    being started; a submission reserves one or starts one, under ``_lock``.
    """

    limit = 40
    idle_seconds = 10.0

    def __init__(self) -> None:
        self._queue: SimpleQueue[tuple[_Waiters, asyncio.Future[Any], Any, _Handoff | None]] = (
            SimpleQueue()
        )
        self._lock = threading.Lock()
        self._idle = 0
        self._threads = 0

    def submit(
        self,
        waiters: _Waiters,
        future: asyncio.Future[Any],
        call: Any,
        handoff: _Handoff | None = None,
    ) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1
            elif self._threads < self.limit:
                self._threads += 1
                threading.Thread(target=self._work, name="orra-di-tool", daemon=True).start()
            self._queue.put((waiters, future, call, handoff))

    def _work(self) -> None:
        while True:
            try:
                waiters, future, call, handoff = self._queue.get(timeout=self.idle_seconds)
            except Empty:
                with self._lock:
                    if self._queue.empty():  # else work came in meanwhile: take it
                        self._idle -= 1
                        self._threads -= 1
                        return
                continue
            try:
                outcome: tuple[Any, BaseException | None] = (call(), None)
            except StopIteration as exc:
                # A Future refuses StopIteration (``_deliver`` would fail and the call
                # wait for its timeout): the error an async tool raising it gives.
                error = RuntimeError("coroutine raised StopIteration")
                error.__cause__ = exc
                outcome = (None, error)
            except BaseException as exc:
                outcome = (None, exc)
            with self._lock:  # idle before the caller hears back and may submit again
                self._idle += 1
            if handoff is None or not handoff.give(outcome):
                waiters.answer(future, *outcome)
            del waiters, future, call, outcome, handoff


class _Pace:
    """Whether the event loop may wait a moment for this tool's thread (see :func:`_in_thread`).

    A call that outlasts the wait makes the next ``skip_after_miss`` calls go
    straight to the future: a tool that is regularly slower than the wait
    would otherwise hold the loop for the whole wait on every call.
    """

    __slots__ = ("skip",)
    skip_after_miss = 32

    def __init__(self) -> None:
        self.skip = 0


_handoff_flip = threading.Lock()
"""Orders a worker's ``give`` against the loop thread giving up its wait."""


def _new_handoff_flip() -> None:
    """In a forked child: a worker of the parent's may have held the lock at the fork,
    and no thread of the child would ever release it (its first handoff would hang)."""
    global _handoff_flip
    _handoff_flip = threading.Lock()


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_new_handoff_flip)


class _Handoff:
    """One call's outcome handed from its worker thread straight to the loop thread.

    The loop thread waits on a plain lock (the GIL released) instead of going
    back to its selector and being woken through the self-pipe: one futex wake
    instead of an event-loop wake-up and a callback, about half the cost of the
    round trip on a VM where waking a thread on the other vCPU is dear. If the
    wait ends first, the worker answers through the future as usual.
    """

    __slots__ = ("_given", "_waiting", "outcome")

    def __init__(self) -> None:
        self._given = threading.Lock()
        self._given.acquire()
        self._waiting = True
        self.outcome: tuple[Any, BaseException | None] | None = None

    def give(self, outcome: tuple[Any, BaseException | None]) -> bool:
        """From the worker: hand ``outcome`` over if the loop still waits for it."""
        with _handoff_flip:
            if not self._waiting:
                return False
            self.outcome = outcome
        self._given.release()
        return True

    def wait(self, seconds: float) -> tuple[Any, BaseException | None] | None:
        """From the loop thread: the outcome within ``seconds``, else None (then the
        worker answers the future)."""
        if self._given.acquire(timeout=seconds):
            return self.outcome
        with _handoff_flip:
            self._waiting = False
            return self.outcome  # given between the timeout and the flip, or None


class _Waiters:
    """What one event loop waits for from the worker threads.

    Answers come back in batches: a worker adds its answer to the inbox and
    wakes the loop (``call_soon_threadsafe``, a write to its self-pipe) only
    if the inbox was empty, so answers that arrive while the loop is busy (many
    sessions at once) cost one wake-up between them. Deadlines (the per-tool
    timeouts) share one timer, set for the earliest: a call that has one adds
    and removes a dict entry instead of scheduling and cancelling its own timer
    on the loop's heap. When the timer fires it fails the calls that are due
    and sets itself for the next. The loop is held weakly, so this goes away
    with it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)
        self._lock = threading.Lock()
        self._inbox: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        self._deadlines: dict[asyncio.Future[Any], float] = {}  # loop thread only
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self.handed = 0  # answers taken on the loop thread since it last yielded for one

    def answer(self, future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
        """From a worker thread: hand ``future`` its outcome."""
        with self._lock:
            self._inbox.append((future, result, exc))
            if len(self._inbox) > 1:
                return  # the loop has a wake-up coming that takes this one too
        loop = self._loop()
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting
                loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            inbox, self._inbox = self._inbox, []
        for future, result, exc in inbox:
            if future.done():  # cancelled or timed out: the tool was abandoned
                continue
            if exc is None:
                future.set_result(result)
            else:
                future.set_exception(exc)

    def expire_at(self, future: asyncio.Future[Any], deadline: float) -> None:
        """Fail ``future`` with :class:`ToolTimedOut` at ``deadline`` (loop time)."""
        self._deadlines[future] = deadline
        if deadline < self._timer_at:
            loop = self._loop()
            if loop is None:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = loop.call_at(deadline, self._expire_due)

    def forget(self, future: asyncio.Future[Any]) -> None:
        self._deadlines.pop(future, None)

    def _expire_due(self) -> None:
        loop = self._loop()
        self._timer, self._timer_at = None, math.inf
        if loop is None:
            return
        now, earliest = loop.time(), math.inf
        for future, deadline in list(self._deadlines.items()):
            if deadline <= now:
                del self._deadlines[future]
                if not future.done():  # the thread answered first: its answer stands
                    future.set_exception(ToolTimedOut())
            elif deadline < earliest:
                earliest = deadline
        if earliest < math.inf:
            self._timer_at = earliest
            self._timer = loop.call_at(earliest, self._expire_due)


_waiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waiters] = (
    weakref.WeakKeyDictionary()
)


_pools: dict[int, _ToolThreads] = {}
"""The pool by process id: a forked child must not use its parent's (its threads
did not survive the fork, and work queued to them would never run)."""


QUICK_WAIT = 0.0005
"""Seconds the event loop, when idle, waits on its own thread for a sync tool's
worker before going back to its selector (see :class:`_Handoff`)."""

HANDOFFS_PER_YIELD = 16
"""An answer taken on the loop thread returns without the task suspending: every this
many, the call yields to the loop once, so that calls back to back still let timers
(timeouts, cancel scopes), I/O and other tasks run (at most this many waits between)."""


async def _in_thread(
    call: Callable[[], Any], limit: float | None = None, pace: _Pace | None = None
) -> Any:
    """``call()`` in a worker thread, in a copy of the caller's context.

    With ``pace`` (the tool's), an idle loop first waits up to :data:`QUICK_WAIT`
    for the answer on its own thread (:class:`_Handoff`), which halves the cost
    of a quick tool's hop; the wait counts against ``limit``. Such an answer returns
    without suspending, so every :data:`HANDOFFS_PER_YIELD`-th yields to the loop once.

    Abandoned after ``limit`` seconds (:class:`ToolTimedOut`) or cancellation: the run goes
    on and the thread finishes on its own (Python cannot stop it). On asyncio
    this goes straight to :class:`_ToolThreads`, the timeout a deadline that
    fails the awaited future (see :class:`_Waiters`); other event loops take
    ``anyio.to_thread`` (which looks up the backend, takes its capacity limiter
    and opens a cancel scope on every call) inside ``anyio.move_on_after``.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio)
        with anyio.move_on_after(math.inf if limit is None else limit):
            return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        raise ToolTimedOut from None  # only a timeout leaves the block without a result
    pool = _pools.get(os.getpid())
    if pool is None:
        _pools.clear()
        pool = _pools[os.getpid()] = _ToolThreads()
    waiters = _waiters.get(loop)
    if waiters is None:
        waiters = _waiters[loop] = _Waiters(loop)
    future = loop.create_future()
    bound = functools.partial(contextvars.copy_context().run, call)
    # From the call: the loop thread may come back from its wait late (descheduled on a
    # busy machine), and the time it was away counts against the limit all the same.
    deadline = None if limit is None else loop.time() + limit
    # Wait briefly on the loop thread only when the loop has nothing else ready to
    # run (asyncio's own loop; others expose no ready queue): then the wait delays
    # no other task, and a quick tool's answer needs no event-loop wake-up.
    if pace is None or pace.skip or getattr(loop, "_ready", True):
        if pace is not None and pace.skip:
            pace.skip -= 1
        pool.submit(waiters, future, bound)
    else:
        handoff = _Handoff()
        pool.submit(waiters, future, bound, handoff)
        wait = QUICK_WAIT if limit is None else min(QUICK_WAIT, limit)
        outcome = handoff.wait(wait)
        if outcome is not None:
            waiters.handed += 1
            if waiters.handed >= HANDOFFS_PER_YIELD:
                waiters.handed = 0
                await asyncio.sleep(0)
            result, exc = outcome
            if exc is not None:
                raise exc
            return result
        pace.skip = pace.skip_after_miss
    if deadline is None:
        return await future
    waiters.expire_at(future, deadline)
    try:
        return await future
    finally:
        waiters.forget(future)


@overload
def tool(
    func: Callable[..., Any],
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    blocking: bool = True,
) -> FunctionTool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None, blocking: bool = True
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(
    func: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    blocking: bool = True,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Turn a typed function into a :class:`FunctionTool`.

    The first paragraph of the docstring is the description; use
    ``Annotated[int, Field(description=...)]`` to describe a parameter.
    ``@tool(blocking=False)`` runs a quick sync function inline instead of in a
    worker thread (see :class:`FunctionTool`).
    """
    if func is not None:
        return FunctionTool(func, name=name, description=description, blocking=blocking)
    return lambda f: FunctionTool(f, name=name, description=description, blocking=blocking)
