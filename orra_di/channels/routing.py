"""Several channels, several agents: which runtime answers which message.

orra's ``RoutingRule::NamespacePrefix`` split the key on ``/`` while keys use
``:``, so it returned the whole key (spec §5.4/18); here it is the first
segment of the namespace. Runtime names are matched case-insensitively, so an
``agent`` written ``CodeBot`` reaches the runtime kept as ``codebot``
(spec §5.4/20).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from orra_di.channels.adapter import ChannelAdapter, UnknownAgentError
from orra_di.channels.base import Channel, ChannelError, InboundMessage
from orra_di.runtime import Runtime

__all__ = ["NoChannelsError", "Router", "RoutingRule"]


class NoChannelsError(ChannelError):
    """``Router.run`` was called with no channel registered."""

    def __init__(self) -> None:
        super().__init__("no channels registered; add one with Router.add_channel(name, channel)")


@dataclass(frozen=True)
class RoutingRule:
    """How a message's target runtime name is found.

    - ``RoutingRule.static("main")``: always that runtime;
    - ``RoutingRule.namespace_prefix()``: the namespace's first segment
      (``discord:guild:chan:user`` → ``discord``);
    - ``RoutingRule.metadata_key("agent")``: that metadata value, else the
      name of the channel the message came from.
    """

    kind: Literal["static", "namespace_prefix", "metadata_key"]
    value: str = ""

    @classmethod
    def static(cls, name: str) -> RoutingRule:
        return cls("static", name)

    @classmethod
    def namespace_prefix(cls) -> RoutingRule:
        return cls("namespace_prefix")

    @classmethod
    def metadata_key(cls, key: str) -> RoutingRule:
        return cls("metadata_key", key)


class Router:
    """Serves several named channels, routing each message by ``rule``.

    A target that names no runtime falls back to ``default``; a message whose
    metadata names an agent explicitly (metadata-key rule) that does not exist
    is answered with an error rather than by another agent.
    """

    def __init__(self, rule: RoutingRule, *, adapter: ChannelAdapter | None = None) -> None:
        self.rule = rule
        self.adapter = adapter or ChannelAdapter()
        self.channels: list[tuple[str, Channel]] = []

    def add_channel(self, name: str, channel: Channel) -> None:
        self.channels.append((name, channel))

    def resolve_target(self, message: InboundMessage, source: str) -> str:
        rule = self.rule
        if rule.kind == "static":
            return rule.value
        if rule.kind == "namespace_prefix":
            return message.namespace.root
        value = message.metadata.get(rule.value)
        return value if isinstance(value, str) and value else source

    def runtime_for(
        self,
        message: InboundMessage,
        source: str,
        runtimes: Mapping[str, Runtime],
        default: str | None = None,
    ) -> Runtime:
        """The runtime that answers ``message``; :class:`UnknownAgentError` when none does."""
        target = self.resolve_target(message, source)
        found = _lookup(runtimes, target)
        if found is not None:
            return found
        explicit = self.rule.kind == "metadata_key" and isinstance(
            message.metadata.get(self.rule.value), str
        )
        fallback = _lookup(runtimes, default) if default is not None else None
        if fallback is None or explicit:
            profiles = getattr(runtimes, "profiles", None)  # a RuntimeMap: names as configured
            known = [p.name for p in profiles] if profiles is not None else list(runtimes)
            raise UnknownAgentError(target, known)
        return fallback

    async def run(self, runtimes: Mapping[str, Runtime], default: str | None = None) -> None:
        """Serve every channel until all have closed (and their runs ended)."""
        if not self.channels:
            raise NoChannelsError
        await self.adapter.serve(
            dict(self.channels),
            lambda message, source: self.runtime_for(message, source, runtimes, default),
        )


def _lookup(runtimes: Mapping[str, Runtime], name: str) -> Runtime | None:
    """``runtimes[name]``, ignoring case (a ``RuntimeMap`` does; a plain dict may not)."""
    for candidate in (name, name.lower()):
        if candidate in runtimes:
            return runtimes[candidate]
    lowered = name.lower()
    for key, runtime in runtimes.items():
        if key.lower() == lowered:
            return runtime
    return None
