"""orra-di in a sync host: one container and one event loop per process, built on first use.

Django's views here are synchronous (WSGI), orra-di is async. Each process gets an
event loop in a thread of its own (an anyio blocking portal) on which the container's
:func:`~orra_di.containers.lifespan` is entered once: the store's connections, locks
and the LLM client's HTTP pool are opened on that loop and only ever used from it. A
view hands a coroutine to the loop with ``portal.call(...)`` and waits for the result,
so any number of request threads share one set of connections.

The container is built lazily, in the process that serves requests: under gunicorn
that is each worker after the fork (a connection opened before a fork must not be
shared by the children), and a forked child that finds its parent's instance builds
its own.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal
from dependency_injector import providers
from django.conf import settings

from orra_di import SessionStore
from orra_di.containers import Container, lifespan
from orra_di.runtime_set import RuntimeMap
from orra_di.settings import load_settings

__all__ = ["Orra", "build_container", "get_orra", "install", "shutdown"]

T = TypeVar("T")


def build_container() -> Container:
    """The container, configured from ``settings.ORRA`` over the ``ORRA_*`` variables."""
    container = Container()
    overrides: dict[str, Any] = getattr(settings, "ORRA", {})
    container.settings.override(providers.Object(load_settings(**overrides)))
    return container


class Orra:
    """A started container: its event loop thread, its store and its agents."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.pid = os.getpid()
        self._stack = ExitStack()
        try:
            self.portal: BlockingPortal = self._stack.enter_context(start_blocking_portal())
            self._stack.enter_context(self.portal.wrap_async_context_manager(lifespan(container)))
        except BaseException:
            self._stack.close()
            raise
        self.store: SessionStore = container.store()
        self.runtimes: RuntimeMap = container.runtimes()

    def call(self, func: Callable[..., Awaitable[T]], *args: object) -> T:
        """Run ``func(*args)`` on the container's loop and wait for its result."""
        return self.portal.call(func, *args)

    def close(self) -> None:
        """Close the store and the LLM client, then stop the loop."""
        self._stack.close()


_lock = threading.Lock()
_orra: Orra | None = None


def get_orra() -> Orra:
    """This process's started container (built on the first call, by one thread)."""
    global _orra
    with _lock:
        if _orra is None or _orra.pid != os.getpid():
            _orra = Orra(build_container())
        return _orra


def install(container: Container) -> Orra:
    """Start ``container`` as this process's (tests: one overridden with a scripted LLM)."""
    global _orra
    shutdown()
    with _lock:
        _orra = Orra(container)
        return _orra


def shutdown() -> None:
    """Close this process's container, if one was started here."""
    global _orra
    with _lock:
        if _orra is not None and _orra.pid == os.getpid():
            _orra.close()
        _orra = None


atexit.register(shutdown)
