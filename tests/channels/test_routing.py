"""Router: orra's routing tests as behaviour; the prefix rule splits on ':' (bug 18)."""

from __future__ import annotations

import pytest

from orra_di.channels import (
    InboundMessage,
    NoChannelsError,
    Router,
    RoutingRule,
    UnknownAgentError,
)
from orra_di.namespace import Namespace
from orra_di.runtime import Runtime
from orra_di.stores.memory import InMemoryStore
from orra_di.testing import ScriptedProvider

from .helpers import QueueChannel


def _msg(ns: str, **metadata: str) -> InboundMessage:
    return InboundMessage.text(ns, "hi", metadata)


def test_static_routing() -> None:
    router = Router(RoutingRule.static("main"))
    assert router.resolve_target(_msg("a:b"), "discord") == "main"


def test_namespace_prefix_routing() -> None:
    router = Router(RoutingRule.namespace_prefix())
    assert router.resolve_target(_msg("discord:guild-1:channel-2"), "x") == "discord"
    assert router.resolve_target(InboundMessage.text(Namespace("simple"), "hi"), "x") == "simple"


def test_metadata_key_routing_and_fallback_to_source() -> None:
    router = Router(RoutingRule.metadata_key("target"))
    assert router.resolve_target(_msg("a", target="api"), "discord") == "api"
    assert router.resolve_target(_msg("a"), "discord") == "discord"


@pytest.mark.anyio
async def test_add_channels() -> None:
    router = Router(RoutingRule.static("main"))
    assert router.channels == []
    channel = QueueChannel()
    router.add_channel("one", channel)
    assert [name for name, _ in router.channels] == ["one"]
    await channel.close()
    assert await channel.receive() is None


@pytest.mark.anyio
async def test_run_with_no_channels_returns_error() -> None:
    with pytest.raises(NoChannelsError, match="no channels registered"):
        await Router(RoutingRule.static("main")).run({})


def _runtime(answer: str) -> Runtime:
    return Runtime(ScriptedProvider(lambda _r: answer), InMemoryStore())


def test_runtime_lookup_ignores_case_and_refuses_an_unknown_named_agent() -> None:
    runtimes = {"codebot": _runtime("code"), "atlas": _runtime("atlas")}
    router = Router(RoutingRule.metadata_key("agent"))
    assert (
        router.runtime_for(_msg("a", agent="CodeBot"), "src", runtimes, "atlas")
        is runtimes["codebot"]
    )
    assert router.runtime_for(_msg("a"), "src", runtimes, "Atlas") is runtimes["atlas"]
    with pytest.raises(UnknownAgentError, match=r"'Nobody'.*codebot, atlas"):
        router.runtime_for(_msg("a", agent="Nobody"), "src", runtimes, "atlas")


@pytest.mark.anyio
async def test_router_serves_several_channels_and_routes_by_prefix() -> None:
    router = Router(RoutingRule.namespace_prefix())
    web, chat = QueueChannel(), QueueChannel()
    router.add_channel("web", web)
    router.add_channel("chat", chat)
    web.feed(_msg("web:alice"))
    chat.feed(_msg("chat:bob"), _msg("other:carol"))
    await web.close()
    await chat.close()
    await router.run({"web": _runtime("from web"), "chat": _runtime("from chat")}, "chat")
    assert [r.message.content for r in web.replies] == ["from web"]
    assert sorted(r.message.content for r in chat.replies) == ["from chat", "from chat"]
