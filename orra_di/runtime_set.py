"""Many named agents sharing one provider and store, found by name at call time.

orra filled a shared ``HashMap`` after building every runtime so delegation
tools could see agents built after them. Here the map holds the agent
profiles and a ``build`` callable (the container's runtime Factory, or
:func:`build_runtime` in plain Python) and builds the runtime when an agent is
asked for. That breaks the cycle "delegation tools need the runtimes, runtimes
need their tools" without a second pass, and an override of the Factory shows
through the map at once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from orra_di.agent import AgentProfile, detect_agent_mention
from orra_di.context import ContextWindow, Tokenizer
from orra_di.errors import ConfigurationError
from orra_di.hook import Hook, HookRegistry
from orra_di.observability.instrumentation import Instrumentation
from orra_di.policy import PolicyRegistry
from orra_di.prompt import PromptBuilder
from orra_di.provider import Provider
from orra_di.runtime import Runtime, RuntimeConfig
from orra_di.store import SessionStore
from orra_di.tool import Tool, ToolRegistry

__all__ = ["RuntimeMap", "build_runtime"]

BuildRuntime = Callable[..., Runtime]
"""Called as ``build(profile=AgentProfile)``; returns that agent's runtime."""


class RuntimeMap(Mapping[str, Runtime]):
    """Agent runtimes by lower-cased name; the first profile is the default agent."""

    def __init__(self, agents: Sequence[AgentProfile], build: BuildRuntime | None = None) -> None:
        if not agents:
            raise ConfigurationError(
                "at least one agent is required: configure ORRA_AGENTS or [[agents]] in orra.toml"
            )
        self._profiles: dict[str, AgentProfile] = {}
        for profile in agents:
            if profile.key in self._profiles:
                raise ConfigurationError(
                    f"two agents are named {profile.name!r} (names are case-insensitive); "
                    "rename one"
                )
            self._profiles[profile.key] = profile
        self.default_agent = agents[0].name
        self._build = build

    def bind(self, build: BuildRuntime) -> None:
        """Set how runtimes are built (for callers that create the map first)."""
        self._build = build

    def profile(self, name: str) -> AgentProfile:
        try:
            return self._profiles[name.lower()]
        except KeyError:
            raise KeyError(
                f"agent {name!r} not found. Available agents: "
                + ", ".join(p.name for p in self._profiles.values())  # as configured
            ) from None

    @property
    def profiles(self) -> list[AgentProfile]:
        return list(self._profiles.values())

    @property
    def default(self) -> Runtime:
        return self[self.default_agent]

    def __getitem__(self, name: str) -> Runtime:
        profile = self.profile(name)
        if self._build is None:
            raise ConfigurationError("RuntimeMap has no runtime builder; call bind() first")
        return self._build(profile=profile)

    def __iter__(self) -> Iterator[str]:
        return iter(self._profiles)

    def __len__(self) -> int:
        return len(self._profiles)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._profiles

    def route(self, content: str) -> tuple[str, str]:
        """``(agent name, content)`` for a message: the ``@mentioned`` agent or the default."""
        names = [p.name for p in self._profiles.values()]
        agent, rest = detect_agent_mention(content, names)
        return (agent, rest.strip()) if agent else (self.default_agent, content)


def build_runtime(
    profile: AgentProfile,
    *,
    llm: Provider,
    store: SessionStore,
    config: RuntimeConfig,
    tools: Iterable[Tool] = (),
    hooks: Iterable[Hook] = (),
    policies: PolicyRegistry | None = None,
    tokenizer: Tokenizer | None = None,
    context: ContextWindow | None = None,
    prompt_builder: PromptBuilder | None = None,
    instrumentation: Instrumentation | None = None,
) -> Runtime:
    """One agent's runtime: its prompt from the builder and its own model applied.

    orra's builder ignored ``AgentProfile.model`` (spec §5.1/10); here the
    profile's model, when set, becomes the runtime's default model.
    """
    registry = ToolRegistry(list(tools))
    prompt = (prompt_builder or PromptBuilder()).build(profile)
    model = profile.model or config.model
    agent_config = dataclasses.replace(config, name=profile.name, system_prompt=prompt, model=model)
    return Runtime(
        llm,
        store,
        tools=registry,
        policies=policies,
        tokenizer=tokenizer,
        hooks=HookRegistry(hooks),
        config=agent_config,
        context=context,
        instrumentation=instrumentation,
    )
