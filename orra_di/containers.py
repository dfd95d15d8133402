"""The composition root: the one module that imports dependency_injector.

Singletons: ``settings``, ``llm`` (the LLM provider, chosen by ``llm.kind``),
``store`` (chosen by the store URL's scheme), ``tokenizer``, ``policies`` and
``context_memory`` (shared by every agent, so token estimates and the usage
calibration one agent learns serve all), ``metrics`` (orra's
``MetricsCollector``) and ``instrumentation`` (what ``telemetry`` switches on, or
``None``). The ``logging`` and ``working_directory`` settings add their hooks to
every agent, before the ``hook_factory``'s.
Factories: ``agent_runtime`` (called with ``profile=``) and ``prompt_builder``.
``plugins`` is the :class:`~orra_di.plugins.PluginRegistry` of the enabled
plugins (a Singleton, started and stopped by :func:`lifespan`); their tools,
hooks and agents reach every runtime. ``project_store`` and ``projects`` (a
:class:`~orra_di.projects.ProjectManager`) are Factories over ``store``: projects
live beside the sessions, and every runtime applies them (``ProjectHook``).
``approval_store`` (approvals beside the sessions) and ``approval_hook`` (set up from
``settings.approval``, registered after the ``hook_factory``'s hooks; override
``approver`` to answer in-process as well as through the store).
``cron_store`` (jobs beside the sessions), ``cron_service`` (a Singleton running them
with the container's agents; :func:`lifespan` serves it while ``cron.enabled``) and
``cron_deliver`` (override with a callback to receive announced answers).
``channel_adapter`` (the concurrency bound and busy policy of ``settings.channels``),
``channel_manager`` (a Factory: enter it, start a channel) and ``discord_channel``
(the bot of ``channels.discord``); ``orra_di.channels.service.channels_running``
serves them.
``mcp`` (:class:`~orra_di.mcp.client.McpClients`, a Singleton): the ``mcp.servers``
whose tools every agent gets, opened and closed by :func:`lifespan`.
``memory_store`` (memories beside the sessions), ``memory_embedder`` and ``memory`` (the
:class:`~orra_di.memory.MemoryManager` the memory tools and automatic recall use).
``document_store`` (documents beside the sessions, chunked as ``settings.documents``
says; its three tools reach every agent while ``documents.tools`` is on).
``runtimes`` is the late-bound :class:`~orra_di.runtime_set.RuntimeMap`: it is
given the ``agent_runtime`` provider itself and calls it when an agent is
asked for, so delegation tools can hold the map while the map builds them,
and an override of ``llm``, ``store``, ``tokenizer``, ``policies`` or any factory
shows through the map at once (``settings`` is read when the map is built:
override it first, or ``reset_singletons()``).

The provider is named ``llm`` on purpose: every dependency-injector provider
already has a ``.provider`` attribute, so a provider named ``provider``
would silently return the wrong object.

Entry points open and close resources with :func:`lifespan`; providers stay
synchronous constructors.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import anyio
from dependency_injector import providers

from orra_di.agent import AgentProfile
from orra_di.channels.adapter import ChannelAdapter
from orra_di.channels.base import Channel
from orra_di.channels.manager import ChannelManager
from orra_di.context import ContextMemory, ContextWindow, Tokenizer
from orra_di.cron.service import CronService, Deliver
from orra_di.cron.stores import CronStore, cron_store_for
from orra_di.delegation import delegate_to_agent_tool, spawn_agent_tool
from orra_di.errors import ConfigurationError, StoreError
from orra_di.hook import Hook
from orra_di.mcp.client import McpClients
from orra_di.memory.manager import MemoryManager
from orra_di.memory.stores import memory_store_for
from orra_di.memory.wiring import make_embedder, make_manager
from orra_di.namespace import Namespace
from orra_di.observability.instrumentation import Instrumentation, combine
from orra_di.plugins.registry import PluginRegistry, registry_from_settings
from orra_di.policy import PolicyRegistry
from orra_di.projects.hook import ProjectHook
from orra_di.projects.manager import ProjectManager
from orra_di.projects.stores import project_store_for
from orra_di.prompt import PromptBuilder
from orra_di.provider import Provider, close_provider
from orra_di.providers.offline import OfflineModel, TestModel
from orra_di.providers.resilience import RetryingProvider
from orra_di.runtime import Runtime
from orra_di.runtime_set import RuntimeMap, build_runtime
from orra_di.settings import (
    LLMKind,
    LLMSettings,
    OrraSettings,
    StoreSettings,
    load_settings,
    secret_values,
)
from orra_di.store import SessionStore
from orra_di.stores import open_store
from orra_di.stores.file import FileStore
from orra_di.stores.memory import InMemoryStore
from orra_di.stores.sqlite import SQLiteStore
from orra_di.tool import Tool
from orra_di.tools.build import approval_required, settings_tools
from orra_di.usage import Budgets, UsageHook, UsageLedger, usage_ledger_for
from orra_di.voice.settings import make_speech_to_text, make_text_to_speech

if TYPE_CHECKING:  # imported where used: a run without approvals or metrics loads neither
    from orra_di.approvals import ApprovalStore, Approver
    from orra_di.documents.stores import DocumentStore
    from orra_di.observability.metrics import MetricsCollector

__all__ = [
    "Container",
    "lifespan",
    "no_hooks",
    "no_tools",
    "override_agent",
    "shared_policies",
]


def _import_containers_without_wiring() -> ModuleType:
    """``dependency_injector.containers``, without importing ``dependency_injector.wiring``.

    ``containers`` imports ``wire`` and ``unwire`` from ``wiring`` at import time,
    and ``wiring`` imports FastAPI, Starlette and Werkzeug whenever they are
    installed: 0.3–0.6 s that every ``orra-di`` command would pay and none uses.
    ``containers`` uses nothing else from ``wiring``, so while it loads, a stand-in
    module gives it two functions that import the real ``wiring`` when called;
    the stand-in is then removed, so ``from dependency_injector.wiring import
    inject`` in a host application imports the real module as usual.
    """
    if "dependency_injector.containers" in sys.modules or "dependency_injector.wiring" in (
        sys.modules
    ):
        return importlib.import_module("dependency_injector.containers")

    def wiring() -> Any:
        return importlib.import_module("dependency_injector.wiring")

    def wire(*args: Any, **kwargs: Any) -> Any:
        return wiring().wire(*args, **kwargs)

    def unwire(*args: Any, **kwargs: Any) -> Any:
        return wiring().unwire(*args, **kwargs)

    stand_in = ModuleType("dependency_injector.wiring", "Stand-in while containers loads.")
    stand_in.wire = wire  # type: ignore[attr-defined]
    stand_in.unwire = unwire  # type: ignore[attr-defined]
    sys.modules["dependency_injector.wiring"] = stand_in
    try:
        return importlib.import_module("dependency_injector.containers")
    finally:
        if sys.modules.get("dependency_injector.wiring") is stand_in:
            del sys.modules["dependency_injector.wiring"]
        package = sys.modules.get("dependency_injector")
        if getattr(package, "wiring", None) is stand_in:
            delattr(package, "wiring")


if TYPE_CHECKING:
    from dependency_injector import containers
else:
    containers = _import_containers_without_wiring()


def no_tools(profile: AgentProfile) -> Sequence[Tool]:
    """The default tool factory: no application tools (settings' built-ins still apply)."""
    return ()


def no_hooks(profile: AgentProfile) -> Sequence[Hook]:
    """The default hook factory."""
    return ()


def shared_policies(profile: AgentProfile, policies: PolicyRegistry) -> PolicyRegistry:
    """The default per-agent policy factory: every agent uses the configured registry."""
    return policies


def _unavailable(what: str, how: str) -> Any:
    raise ConfigurationError(f"{what} is not available: {how}")


def _sqlite_store(settings: StoreSettings) -> SQLiteStore:
    """The SQLite store; the default file's directory is created on first use.

    An explicit ``sqlite:///`` path is used as given, so a typo fails at start-up
    instead of silently creating directories.
    """
    path = settings.path
    assert path is not None  # the selector only picks this provider for sqlite URLs
    if "url" not in settings.model_fields_set:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the data directory {path.parent}: {exc.strerror or exc}"
            ) from exc
    return SQLiteStore(
        path,
        lease_seconds=settings.lease_seconds,
        synchronous=settings.sqlite_synchronous,
    )


def _server_store(store: Any, *, session_ttl: bool = False) -> providers.Singleton[SessionStore]:
    """A PostgreSQL or Redis store from the URL, with the lease (and Redis's native TTL)."""
    options: dict[str, Any] = {"lease_seconds": store.lease_seconds}
    if session_ttl:
        options["session_ttl"] = store.session_ttl
    return providers.Singleton(open_store, store.url, **options)


def _vendor(kind: LLMKind, llm: LLMSettings) -> Provider:
    """The vendor adapter for ``kind``, its SDK retries off and ours (bounded) around it.

    Imported on use, so the container loads without the vendor extras. The key
    and model rules (a missing key named by its variables, a local server asked
    for its model) are :mod:`orra_di.providers.choice`'s, which ``orra-di config``
    shows in words.
    """
    from orra_di.providers.choice import require_key, vendor_key, vendor_model

    adapter: Provider
    # With llm.auth, the token provider's bearer token replaces every key (bug 39).
    tokens = llm.auth.token_provider() if llm.auth else None
    if tokens is None:
        require_key(kind, llm)
    if kind == "anthropic":
        from orra_di.providers import anthropic

        adapter = anthropic.AnthropicProvider(
            None if tokens else vendor_key(kind, llm),
            model=vendor_model(kind, llm) or anthropic.DEFAULT_MODEL,
            base_url=llm.base_url,
            timeout=llm.timeout,
            max_retries=0,
            token_provider=tokens,
        )
    else:
        from orra_di.providers import openai

        adapter = openai.OpenAIProvider(
            None if tokens else vendor_key(kind, llm),
            model=vendor_model(kind, llm),
            base_url=llm.base_url,
            timeout=llm.timeout,
            max_retries=0,
            token_provider=tokens,
        )
    return RetryingProvider(adapter, max_retries=llm.max_retries, max_wait=llm.max_retry_wait)


def _plugin_registry(settings: OrraSettings) -> PluginRegistry:
    """The enabled plugins, loaded and configured; :func:`lifespan` starts and stops them."""
    if not settings.plugins.enabled:
        return PluginRegistry()  # nothing to look for: skip scanning the installed packages
    return registry_from_settings(settings.plugins)


def _agents(settings: OrraSettings, plugins: PluginRegistry) -> list[AgentProfile]:
    """The configured agents, then the running plugins' agents."""
    return [*settings.agents, *plugins.agents()]


def _project_hooks(
    settings: OrraSettings, store: SessionStore, policies: PolicyRegistry
) -> list[Hook]:
    """The hook applying projects to runs, when they are on and the store can keep them."""
    if not settings.projects.enabled:
        return []
    try:
        return [ProjectHook(project_store_for(store), policies)]
    except ConfigurationError:  # an application's own store: no projects can live there
        return []


def _approval_store(settings: OrraSettings, store: SessionStore) -> ApprovalStore:
    """Approvals beside the sessions, in the same backend (one per session store object)."""
    from orra_di.approvals.stores import approval_store_for  # only where approvals are used

    return approval_store_for(store, poll_interval=settings.approval.poll_interval)


def _approval_hook(
    settings: OrraSettings, approval_store: Callable[[], ApprovalStore], approver: Approver | None
) -> Hook | None:
    """The ApprovalHook when ``approval.enabled``; answered through the store unless the
    application gives an ``approver`` (e.g. an InProcessApprover), which then races it.

    ``approval_store`` is the provider, called only when approvals are on: a run
    without them neither imports nor opens anything of theirs (``orra-di ask``
    starts faster, see benchmarks/bench_startup.py)."""
    section = settings.approval
    if not section.enabled:
        return None
    from orra_di.approvals.hook import ApprovalHook

    return ApprovalHook(
        approver,
        store=approval_store(),
        tools=[*section.tools, *approval_required(settings.tools)],
        timeout=section.timeout,
    )


def _metrics_collector() -> MetricsCollector:
    """orra's metrics (``container.metrics()``), imported when first asked for."""
    from orra_di.observability.metrics import MetricsCollector

    return MetricsCollector()


def _instrumentation(
    settings: OrraSettings, metrics: Callable[[], MetricsCollector]
) -> Instrumentation | None:
    """What ``telemetry`` switches on: OpenTelemetry and orra's metrics (each imported, and
    ``metrics`` built, only when switched on), or both."""
    otel: Instrumentation | None = None
    if settings.telemetry.enabled:
        from orra_di.observability.otel import OpenTelemetryInstrumentation

        otel = OpenTelemetryInstrumentation(provider_name=settings.llm.resolved_kind)
    counted: Instrumentation | None = None
    if settings.telemetry.prometheus:
        from orra_di.observability.metrics import MetricsInstrumentation

        counted = MetricsInstrumentation(metrics())
    return combine(otel, counted)


def _settings_hooks(settings: OrraSettings, tools: list[Tool]) -> list[Hook]:
    """The built-in hooks the settings switch on (before the application's own), adding
    the ``set_working_directory`` tool to ``tools`` when the working directory is on."""
    hooks: list[Hook] = []
    if settings.logging.enabled:
        from orra_di.hooks.logging import LoggingHook

        key = settings.llm.resolved_api_key
        hooks.append(
            LoggingHook(
                settings.logging.logger,
                level=logging.getLevelNamesMapping()[settings.logging.level],
                preview_chars=settings.logging.preview_chars,
                # every secret of the settings, not only the model's: a tool's output
                # (a command printing tools.exec.env, an error echoing a tool's token)
                # is logged as plain text
                secrets=[key.get_secret_value() if key else None, *secret_values(settings)],
            )
        )
    if settings.working_directory.enabled:
        from orra_di.hooks import working_directory as wd

        tools.append(wd.working_directory_tool())
        aware = [t for t in tools if wd.takes_working_directory(t)]
        hooks.append(wd.WorkingDirectoryHook(aware, default=settings.working_directory.default))
    return hooks


def _prompt_builder(settings: OrraSettings) -> PromptBuilder:
    builder = PromptBuilder(settings.prompt.channel_context)
    for section in settings.prompt.sections:
        builder.add_section(section)
    return builder


def _usage_hook(
    settings: OrraSettings,
    ledger: Callable[[], UsageLedger],
    tokenizer: Tokenizer,
    context_memory: ContextMemory,
) -> UsageHook | None:
    """The hook that records usage and enforces budgets; ``None`` when both are off.

    ``ledger`` is the ledger's provider, called only when the hook is wanted, so
    a store without a usage backend works as long as usage is off.
    """
    if not settings.usage.enabled and not settings.budgets:
        return None
    return UsageHook(
        ledger(),
        budgets=Budgets(settings.budgets),
        prices=settings.prices,
        default_model=_priced_model(settings.llm),
        window=ContextWindow(tokenizer, None, context_memory),
        output_allowance=settings.usage.output_allowance,
        reservation_ttl=settings.usage.reservation_ttl,
        free=settings.llm.resolved_kind in ("offline", "test"),
    )


def _priced_model(llm: LLMSettings) -> str | None:
    """The name a call without a model of its own is priced under.

    ``llm.model`` when set; else, for a vendor, the default model its adapter is built
    with (``gpt-4o``, as ``orra-di config`` says), so ``ORRA_PRICES`` for that model
    counts without ``ORRA_LLM__MODEL``. A local server's model is only known by asking
    it, and the offline and test models cost nothing: ``None`` there.
    """
    kind = llm.resolved_kind
    if kind not in ("anthropic", "openai"):
        return llm.model
    from orra_di.providers.choice import vendor_model

    return vendor_model(kind, llm)


def _cron_service(
    settings: OrraSettings,
    cron_store: CronStore,
    store: SessionStore,
    runtimes: RuntimeMap,
    deliver: Deliver | None,
) -> CronService:
    """The service that runs the jobs beside the sessions with the container's agents."""
    section = settings.cron
    return CronService(
        cron_store,
        store,
        runtimes,
        lease=section.lease,
        poll_interval=section.poll_interval,
        deliver=deliver,
        prune_every=section.prune_every,
        session_ttl=settings.store.session_ttl,
    )


def _channel_adapter(settings: OrraSettings) -> ChannelAdapter:
    section = settings.channels
    return ChannelAdapter(
        max_concurrency=section.max_concurrency,
        on_busy=section.on_busy,
        busy_reply=section.busy_reply,
        max_message_chars=section.max_message_chars,
        max_waiting=section.max_waiting,
    )


def _channel_manager(
    settings: OrraSettings, runtimes: RuntimeMap, adapter: ChannelAdapter
) -> ChannelManager:
    timeout = settings.channels.shutdown_timeout
    return ChannelManager(runtimes, adapter=adapter, shutdown_timeout=timeout)


def _discord_channel(settings: OrraSettings, runtimes: RuntimeMap) -> Channel:
    """The Discord bot of ``channels.discord`` (imports discord.py only now)."""
    section = settings.channels.discord
    if section.token is None:
        raise ConfigurationError(
            "channels.discord.token is not set (ORRA_CHANNELS__DISCORD__TOKEN)"
        )
    from orra_di.channels.discord_channel import DiscordChannel

    return DiscordChannel(
        section.token,
        filter=section.filter,
        allowed_users=section.allowed_users,
        namespace_prefix=section.namespace_prefix,
        agent_names=[profile.name for profile in runtimes.profiles],
        api_base=section.api_base,
        gateway_url=section.gateway_url,
        connect_timeout=section.connect_timeout,
    )


def _discord_tools(settings: OrraSettings) -> list[Tool]:
    """The six Discord REST tools when ``channels.discord.tools`` is on."""
    section = settings.channels.discord
    if not section.tools:
        return []
    if section.token is None:
        raise ConfigurationError(
            "channels.discord.tools needs channels.discord.token (ORRA_CHANNELS__DISCORD__TOKEN)"
        )
    from orra_di.channels.discord_tools import DiscordConfig, discord_tools

    return discord_tools(DiscordConfig(section.token, section.api_base))


def _cron_tools(settings: OrraSettings, cron_service: Callable[[], CronService]) -> list[Tool]:
    """The ``cron`` tool when ``cron.tool`` is on (the service built only then)."""
    if not settings.cron.tool:
        return []
    from orra_di.cron.tool import CronTool

    section = settings.cron
    tool = CronTool(
        cron_service(), default_timezone=section.default_timezone, missed=section.missed_runs
    )
    return [tool]


def _memory_parts(
    settings: OrraSettings, memory: Callable[[], MemoryManager], tokenizer: Tokenizer
) -> tuple[list[Tool], list[Hook]]:
    """The memory tools (``memory.enabled``) and the automatic-memory hook (``auto_recall``)."""
    section = settings.memory
    if not section.enabled:
        return [], []
    from orra_di.memory.hook import AutoMemoryHook
    from orra_di.memory.tool import memory_tools

    manager = memory()
    hooks: list[Hook] = []
    if section.auto_recall:
        hooks.append(
            AutoMemoryHook(
                manager,
                top_k=section.auto_top_k,
                max_tokens=section.auto_max_tokens,
                tokenizer=tokenizer,
            )
        )
    return memory_tools(manager), hooks


def _one_tool_per_name(*sources: tuple[str, Sequence[Tool]]) -> list[Tool]:
    """Every source's tools in order, refusing two tools of one name.

    A registry keeps the last tool of a name, so a clash would silently hide one tool
    (an app's ``search`` behind an MCP server's): say which two and how to part them.
    """
    seen: dict[str, str] = {}
    tools: list[Tool] = []
    for source, offered in sources:
        for tool in offered:
            name = tool.definition.name
            if name in seen:
                raise ConfigurationError(
                    f"two tools are named {name!r}: one from {seen[name]}, one from {source}; "
                    "rename one, give the MCP server a prefix, or switch the built-in off "
                    f"([tools.{name}] enabled = false)"
                )
            seen[name] = source
            tools.append(tool)
    return tools


def _document_store(settings: OrraSettings, store: SessionStore) -> DocumentStore:
    """The document store beside the sessions, chunked as ``settings.documents`` says."""
    from orra_di.documents.stores import document_store_for

    section = settings.documents
    return document_store_for(store, chunk_size=section.chunk_size, overlap=section.chunk_overlap)


def _document_tools(
    settings: OrraSettings, document_store: Callable[[], DocumentStore]
) -> list[Tool]:
    """The three document tools when ``documents.tools`` is on (the store built only then)."""
    section = settings.documents
    if not section.tools:
        return []
    from orra_di.documents.tool import document_tools

    return document_tools(
        document_store(), default_limit=section.search_limit, excerpt_chars=section.excerpt_chars
    )


def _agent_runtime(
    profile: AgentProfile,
    *,
    settings: OrraSettings,
    llm: Provider,
    store: SessionStore,
    tokenizer: Tokenizer,
    context_memory: ContextMemory,
    policies: PolicyRegistry,
    prompt_builder: PromptBuilder,
    tool_factory: Callable[[AgentProfile], Sequence[Tool]],
    hook_factory: Callable[[AgentProfile], Sequence[Hook]],
    policy_factory: Callable[[AgentProfile, PolicyRegistry], PolicyRegistry],
    runtimes: RuntimeMap,
    plugins: PluginRegistry,
    usage_hook: UsageHook | None = None,
    approval_hook: Hook | None = None,
    instrumentation: Instrumentation | None = None,
    cron_service: Callable[[], CronService] | None = None,
    mcp: McpClients | None = None,
    memory: Callable[[], MemoryManager] | None = None,
    document_store: Callable[[], DocumentStore] | None = None,
) -> Runtime:
    rt = settings.runtime
    budget = settings.context.budget()
    memory_tools, memory_hooks = (
        ([], []) if memory is None else _memory_parts(settings, memory, tokenizer)
    )
    if memory_hooks:  # the memory section's tokens come out of the history's share
        budget = dataclasses.replace(
            budget, reserved_for_output=budget.reserved_for_output + settings.memory.auto_max_tokens
        )
    config = rt.runtime_config(None, settings.llm.model, budget)
    context_window = ContextWindow(tokenizer, config.context_budget, context_memory)
    mcp_tools: list[Tool] = list(mcp.tools()) if mcp is not None else []
    tools = _one_tool_per_name(
        ("the built-in tools ([tools] settings)", settings_tools(settings.tools)),
        ("the container's tool_factory", tool_factory(profile)),
        ("the plugins", plugins.tools(profile)),
        ("cron (cron.tool)", [] if cron_service is None else _cron_tools(settings, cron_service)),
        ("the Discord tools (channels.discord.tools)", _discord_tools(settings)),
        ("memory (memory.tools)", memory_tools),
        (
            "the document tools (documents.tools)",
            [] if document_store is None else _document_tools(settings, document_store),
        ),
    )
    if mcp_tools:  # a server's tool must not silently replace another of the agent's
        from orra_di.mcp.client import refuse_shadowing

        refuse_shadowing(mcp_tools, tools)  # names the server and its prefix setting
        tools += mcp_tools
    agent_policies = policy_factory(profile, policies)
    hooks = [
        *_settings_hooks(settings, tools),
        *memory_hooks,
        *_project_hooks(settings, store, agent_policies),
        *hook_factory(profile),
        *plugins.hooks(profile),
        # approval after the others: it approves the call as they left it
        *([approval_hook] if approval_hook is not None else []),
        *([usage_hook] if usage_hook else []),  # budgets: the last word before a call
    ]
    if rt.enable_delegation and len(runtimes) > 1:
        delegate = delegate_to_agent_tool(runtimes, profile.name, max_depth=rt.max_delegation_depth)
        tools.append(delegate)
    if rt.enable_spawn:

        def sub_agent(system_prompt: str) -> Runtime:
            sub = profile.model_copy(update={"system_prompt": system_prompt})
            return build_runtime(
                sub,
                llm=llm,
                store=store,
                config=config,
                tools=[
                    *settings_tools(settings.tools),
                    *tool_factory(profile),
                    *plugins.tools(profile),
                    *mcp_tools,
                ],
                hooks=hooks,
                policies=agent_policies,
                tokenizer=tokenizer,
                context=context_window,
                instrumentation=instrumentation,
            )

        tools.append(spawn_agent_tool(sub_agent, max_depth=rt.max_delegation_depth))
    runtime = build_runtime(
        profile,
        llm=llm,
        store=store,
        config=config,
        tools=tools,
        hooks=hooks,
        policies=agent_policies,
        tokenizer=tokenizer,
        context=context_window,
        prompt_builder=prompt_builder,
        instrumentation=instrumentation,
    )
    if mcp is not None and mcp.servers:
        mcp.attach(runtime.tools)  # a server's tools/list_changed reaches this agent
    return runtime


class Container(containers.DeclarativeContainer):
    """Everything orra-di needs, configured from :class:`OrraSettings`."""

    settings = providers.Singleton(load_settings)

    llm = providers.Selector(
        settings.provided.llm.resolved_kind,
        offline=providers.Singleton(OfflineModel),
        test=providers.Singleton(TestModel),
        scripted=providers.Singleton(
            _unavailable,
            "llm.kind 'scripted'",
            "override container.llm with orra_di.testing.ScriptedProvider([...]) in your test",
        ),
        anthropic=providers.Singleton(_vendor, "anthropic", settings.provided.llm),
        openai=providers.Singleton(_vendor, "openai", settings.provided.llm),
    )

    store = providers.Selector(
        settings.provided.store.scheme,
        sqlite=providers.Singleton(_sqlite_store, settings.provided.store),
        memory=providers.Singleton(InMemoryStore),
        file=providers.Singleton(FileStore, settings.provided.store.path),
        postgresql=_server_store(settings.provided.store),
        postgres=_server_store(settings.provided.store),
        redis=_server_store(settings.provided.store, session_ttl=True),
        rediss=_server_store(settings.provided.store, session_ttl=True),
    )

    tokenizer = providers.Singleton(settings.provided.context.make_tokenizer.call())
    context_memory = providers.Singleton(ContextMemory)
    policies = providers.Singleton(settings.provided.policy_registry.call())
    prompt_builder = providers.Factory(_prompt_builder, settings)

    tool_factory = providers.Object(no_tools)
    hook_factory = providers.Object(no_hooks)
    policy_factory = providers.Object(shared_policies)

    plugins = providers.Singleton(_plugin_registry, settings)
    project_store = providers.Factory(project_store_for, store)
    projects = providers.Factory(ProjectManager, project_store, store)

    runtimes = providers.Singleton(RuntimeMap, providers.Callable(_agents, settings, plugins))

    # Voice adapters (orra-di[voice]), one per use: the caller closes it.
    speech_to_text = providers.Factory(
        make_speech_to_text, settings.provided.voice, settings.provided.llm
    )
    text_to_speech = providers.Factory(
        make_text_to_speech, settings.provided.voice, settings.provided.llm
    )

    usage_ledger = providers.Singleton(usage_ledger_for, store)
    usage_hook = providers.Singleton(
        _usage_hook, settings, usage_ledger.provider, tokenizer, context_memory
    )

    approver: providers.Object[Approver | None] = providers.Object(None)
    approval_store = providers.Factory(_approval_store, settings, store)
    approval_hook = providers.Factory(_approval_hook, settings, approval_store.provider, approver)

    metrics = providers.Singleton(_metrics_collector)
    instrumentation = providers.Singleton(_instrumentation, settings, metrics.provider)

    cron_store = providers.Factory(cron_store_for, store)
    cron_deliver: providers.Object[Deliver | None] = providers.Object(None)
    cron_service = providers.Singleton(
        _cron_service, settings, cron_store, store, runtimes, cron_deliver
    )

    channel_adapter = providers.Factory(_channel_adapter, settings)
    channel_manager = providers.Factory(
        _channel_manager, settings=settings, runtimes=runtimes, adapter=channel_adapter
    )
    discord_channel = providers.Factory(_discord_channel, settings, runtimes)
    # MCP servers' tools for every agent (orra-di[mcp]); lifespan opens and closes them.
    mcp = providers.Singleton(McpClients, settings.provided.mcp)
    memory_store = providers.Factory(memory_store_for, store)
    memory_embedder = providers.Singleton(make_embedder, settings.provided.memory)
    memory = providers.Singleton(
        make_manager, settings.provided.memory, memory_store, memory_embedder
    )
    document_store = providers.Factory(_document_store, settings, store)

    agent_runtime = providers.Factory(
        _agent_runtime,
        settings=settings,
        llm=llm,
        store=store,
        tokenizer=tokenizer,
        context_memory=context_memory,
        policies=policies,
        prompt_builder=prompt_builder,
        tool_factory=tool_factory,
        hook_factory=hook_factory,
        policy_factory=policy_factory,
        runtimes=runtimes,
        plugins=plugins,
        usage_hook=usage_hook,
        approval_hook=approval_hook,
        instrumentation=instrumentation,
        cron_service=cron_service.provider,
        mcp=mcp,
        memory=memory.provider,
        document_store=document_store.provider,
    )

    runtimes.add_kwargs(build=agent_runtime.provider)


@contextmanager
def override_agent(
    container: Container,
    name: str,
    runtime: Runtime | Callable[[AgentProfile], Runtime],
) -> Iterator[None]:
    """Within the block, agent ``name`` is ``runtime`` (or what ``runtime(profile)`` builds).

    The other agents are built as before, with every other override in force,
    and everything that looks agents up through ``container.runtimes()``
    (delegation tools included, and a map fetched before the block) sees the
    replacement. It works by overriding the ``agent_runtime`` Factory with one
    that has the same injections and falls back to the default builder, which
    is what a hand-written ``agent_runtime.override(...)`` would have to do:
    calling ``container.agent_runtime`` from inside its own override would
    recurse. Leaving the block removes the override. Raises
    :class:`ConfigurationError` when no agent has that name (case-insensitive).
    """
    agents = container.settings().agents
    key = name.lower()
    if all(profile.key != key for profile in agents):
        known = ", ".join(profile.name for profile in agents)
        raise ConfigurationError(f"no agent named {name!r} to override; the agents are: {known}")
    default = container.agent_runtime
    build_default = cast(Callable[..., Runtime], default.provides)  # _agent_runtime

    def one_agent(profile: AgentProfile, **injected: Any) -> Runtime:
        if profile.key != key:
            return build_default(profile, **injected)
        return runtime if isinstance(runtime, Runtime) else runtime(profile)

    with default.override(providers.Factory(one_agent, **default.kwargs)):
        yield


_STARTUP_CHECK = Namespace("orra-di", "startup-check")


@asynccontextmanager
async def lifespan(container: Container) -> AsyncIterator[Container]:
    """Open the store and the LLM client for the duration of the block, then close them.

    Building them up front and reading from the store once makes a bad store
    URL or path, or a missing extra, fail at start-up, not on the first
    message. On exit the store and the LLM client are closed
    and its singleton reset, like a dependency-injector ``Resource`` after
    ``shutdown_resources()``: entering the lifespan again opens a fresh one.
    Keep a reference (``store = container.store()`` inside the block) to
    inspect an in-memory store afterwards.
    """
    store: SessionStore = container.store()
    llm: object = None
    plugins: PluginRegistry | None = None
    try:
        llm = container.llm()
        await store.load(_STARTUP_CHECK)  # opens the connection (SQLite: and migrates)
        plugins = container.plugins()
        if await plugins.start() and plugins.agents():
            container.runtimes.reset()  # a map built before the start lacks their agents
        async with _mcp_running(container), _cron_running(container):
            yield container
    finally:
        with anyio.CancelScope(shield=True):
            try:
                if plugins is not None:
                    await plugins.shutdown()
                    container.plugins.reset()  # entering again loads and starts them afresh
                await store.aclose()
            finally:
                _reset(container.store)
                container.usage_hook.reset()  # both hold the store just closed
                container.usage_ledger.reset()
                container.cron_service.reset()
                await close_provider(llm)
                _reset(container.llm)


@asynccontextmanager
async def _mcp_running(container: Container) -> AsyncIterator[None]:
    """Open the configured MCP servers for the block (a server that cannot start stops
    the start-up unless ``optional``), then close them and forget the clients."""
    clients: McpClients = container.mcp()
    if not clients.servers:
        yield
        return
    try:
        async with clients:
            if clients.tools():
                container.runtimes.reset()  # a map built before the start lacks their tools
            yield
    finally:
        container.mcp.reset()


@asynccontextmanager
async def _cron_running(container: Container) -> AsyncIterator[None]:
    """With ``cron.enabled``, run the cron service for the block; on exit, stop it and let
    the runs in flight finish (so they are recorded, not abandoned)."""
    if not container.settings().cron.enabled:
        yield
        return
    service: CronService = container.cron_service()
    async with anyio.create_task_group() as tg:
        await tg.start(service.serve)
        try:
            yield
        finally:
            service.stop()


def _reset(selector: providers.Provider[Any]) -> None:
    """Forget the instances a selector's singletons built (overrides are left alone)."""
    for choice in getattr(selector, "providers", {}).values():
        if isinstance(choice, providers.BaseSingleton):
            choice.reset()
