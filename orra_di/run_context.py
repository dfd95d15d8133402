"""What a hook (or a tool) may know about the run it is called from.

orra kept per-session state on the hook object (spec §5.2/11): one hook served
every session, so an approval "auto mode" switched on by one user applied to all.
Here the runtime opens a :class:`RunContext` for each run and makes it current
for the run's task (a :mod:`contextvars` variable, so tools running in parallel
tasks see it too). The six hook points keep their signatures; a hook that needs
the run calls :func:`current_run`.

Per-session state is kept in the session's metadata under ``"state"`` and is
written through the store with the run's next step, under the single-writer
lock — never on the hook, never shared between sessions.
"""

from __future__ import annotations

import contextvars
import copy
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from orra_di.errors import OrraError
from orra_di.namespace import Namespace
from orra_di.provider import Usage
from orra_di.session import Session

__all__ = ["STATE_KEY", "RunContext", "current_run", "maybe_current_run"]

STATE_KEY = "state"
"""The session-metadata key under which :meth:`RunContext.set_state` keeps its values."""

_NO_METADATA: Mapping[str, Any] = MappingProxyType({})

_current: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar(
    "orra_di_current_run", default=None
)


class RunContext:
    """One run, read-only for hooks, with a per-session state they may write.

    ``metadata`` is the session's metadata as it was loaded, frozen for the run;
    ``usage`` is what the provider billed so far in this run.
    """

    __slots__ = ("_session", "agent", "metadata", "model", "namespace", "run_id", "usage")

    def __init__(
        self,
        *,
        namespace: Namespace,
        run_id: str,
        session: Session,
        agent: str | None = None,
        model: str | None = None,
    ) -> None:
        self.namespace = namespace
        self.run_id = run_id
        self.agent = agent
        self.model = model
        self.usage = Usage.zero()
        self._session = session
        metadata = session.metadata
        # Most sessions have none: then no deep copy, one shared empty view.
        self.metadata: Mapping[str, Any] = (
            MappingProxyType(copy.deepcopy(metadata)) if metadata else _NO_METADATA
        )

    def state(self, key: str, default: Any = None) -> Any:
        """The session's current value for ``key`` (what this run set, or what was stored)."""
        section = self._session.metadata.get(STATE_KEY)
        if isinstance(section, dict) and key in section:
            return copy.deepcopy(section[key])
        return default

    def set_state(self, key: str, value: Any) -> None:
        """Keep ``value`` for this session; it is persisted with the run's next write.

        ``value`` must be JSON-serialisable (it is stored with the session).
        ``None`` removes the key.
        """
        section = self._session.metadata.setdefault(STATE_KEY, {})
        if not isinstance(section, dict):
            raise OrraError(
                f"session metadata {STATE_KEY!r} holds {type(section).__name__}, not a mapping; "
                "it is reserved for per-session hook state"
            )
        if value is None:
            section.pop(key, None)
            return
        try:  # refused here, where the mistake is, not at the run's next write
            json.dumps(value, allow_nan=False)  # the stores' rules for metadata
        except (TypeError, ValueError, RecursionError) as exc:  # the last: nested too deep
            raise OrraError(
                f"state {key!r} must be JSON-serialisable, since it is stored with the "
                f"session ({exc}); keep text, numbers, booleans, None, lists and dicts"
            ) from None
        section[key] = copy.deepcopy(value)

    def __repr__(self) -> str:
        return (
            f"RunContext(namespace={self.namespace.key!r}, agent={self.agent!r}, "
            f"run_id={self.run_id!r}, model={self.model!r})"
        )


def current_run() -> RunContext:
    """The run the caller is part of; raises :class:`OrraError` outside a run."""
    run = _current.get()
    if run is None:
        raise OrraError(
            "no run is in progress: current_run() works inside hooks and tools "
            "called by Runtime.run / run_streaming"
        )
    return run


def maybe_current_run() -> RunContext | None:
    """The current run, or ``None`` outside one (for code used in and out of runs)."""
    return _current.get()


class running:
    """Make ``run`` current for the block (the runtime's side of the contract).

    A class rather than a ``@contextmanager`` generator: it is entered on every
    run, and this costs a third as much.
    """

    __slots__ = ("_run", "_token")

    def __init__(self, run: RunContext) -> None:
        self._run = run

    def __enter__(self) -> RunContext:
        self._token = _current.set(self._run)
        return self._run

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)
