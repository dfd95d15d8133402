"""orra-di: LLM agents inside your application.

Namespaced sessions, per-namespace tool policies, token budgets, lifecycle
hooks and a single-writer session store, composed in one DI container.
This module re-exports the public API; adapters that need an extra
(SDK clients, database drivers) are imported from their own modules.

Names are imported on first use (PEP 562), so ``import orra_di`` and the
``orra-di`` command start fast: a program pays for the modules it touches.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orra_di.agent import (
        DEFAULT_AGENT_NAME,
        DEFAULT_PERSONALITY,
        AgentProfile,
        detect_agent_mention,
        resolve_agents,
    )
    from orra_di.context import (
        CharEstimator,
        ContextBudget,
        ContextMemory,
        ContextWindow,
        Tokenizer,
    )
    from orra_di.delegation import delegate_to_agent_tool, spawn_agent_tool
    from orra_di.errors import (
        ApprovalError,
        AuthError,
        BudgetExceededError,
        ConfigurationError,
        ContextLengthExceededError,
        CronError,
        MaxTurnsExceeded,
        NamespaceError,
        OrraError,
        OrraRuntimeError,
        PluginError,
        ProjectError,
        ProviderAuthError,
        ProviderBadRequestError,
        ProviderError,
        ProviderTimeoutError,
        ProviderUnavailableError,
        RateLimitedError,
        SessionBusyError,
        StoreError,
        ToolError,
        ToolExecutionError,
        ToolInputError,
        VoiceError,
    )
    from orra_di.hook import Hook, HookRegistry, ToolCallDenied
    from orra_di.message import Message, Role, ToolCall, ToolResult, VendorData
    from orra_di.namespace import Namespace, NamespaceLike
    from orra_di.policy import PolicyRegistry, ToolPolicy
    from orra_di.prompt import CapabilityDescription, PromptBuilder
    from orra_di.provider import (
        CompletionRequest,
        CompletionResponse,
        FinishReason,
        Provider,
        StreamDone,
        StreamEvent,
        StreamingProvider,
        TextDelta,
        ToolCallDelta,
        ToolCallStart,
        Usage,
    )
    from orra_di.run_context import RunContext, current_run
    from orra_di.runtime import (
        RunFinished,
        RunResult,
        RunStream,
        Runtime,
        RuntimeConfig,
        RuntimeStreamEvent,
        ToolCallCompleted,
        ToolCallStarted,
        TurnCompleted,
        TurnResult,
    )
    from orra_di.runtime_set import RuntimeMap, build_runtime
    from orra_di.session import Session
    from orra_di.store import SessionStore
    from orra_di.stores.memory import InMemoryStore
    from orra_di.tool import FunctionTool, Tool, ToolContext, ToolDefinition, ToolRegistry, tool

_ORIGIN: dict[str, str] = {
    "ApprovalError": "orra_di.errors",
    "CronError": "orra_di.errors",
    "BudgetExceededError": "orra_di.errors",
    "PluginError": "orra_di.errors",
    "ProjectError": "orra_di.errors",
    "DEFAULT_AGENT_NAME": "orra_di.agent",
    "DEFAULT_PERSONALITY": "orra_di.agent",
    "AgentProfile": "orra_di.agent",
    "detect_agent_mention": "orra_di.agent",
    "resolve_agents": "orra_di.agent",
    "CharEstimator": "orra_di.context",
    "ContextBudget": "orra_di.context",
    "ContextMemory": "orra_di.context",
    "ContextWindow": "orra_di.context",
    "Tokenizer": "orra_di.context",
    "delegate_to_agent_tool": "orra_di.delegation",
    "spawn_agent_tool": "orra_di.delegation",
    "AuthError": "orra_di.errors",
    "ConfigurationError": "orra_di.errors",
    "ContextLengthExceededError": "orra_di.errors",
    "MaxTurnsExceeded": "orra_di.errors",
    "NamespaceError": "orra_di.errors",
    "OrraError": "orra_di.errors",
    "OrraRuntimeError": "orra_di.errors",
    "ProviderAuthError": "orra_di.errors",
    "ProviderBadRequestError": "orra_di.errors",
    "ProviderError": "orra_di.errors",
    "ProviderTimeoutError": "orra_di.errors",
    "ProviderUnavailableError": "orra_di.errors",
    "RateLimitedError": "orra_di.errors",
    "SessionBusyError": "orra_di.errors",
    "StoreError": "orra_di.errors",
    "ToolError": "orra_di.errors",
    "ToolExecutionError": "orra_di.errors",
    "ToolInputError": "orra_di.errors",
    "VoiceError": "orra_di.errors",
    "Hook": "orra_di.hook",
    "HookRegistry": "orra_di.hook",
    "ToolCallDenied": "orra_di.hook",
    "Message": "orra_di.message",
    "Role": "orra_di.message",
    "ToolCall": "orra_di.message",
    "ToolResult": "orra_di.message",
    "VendorData": "orra_di.message",
    "Namespace": "orra_di.namespace",
    "NamespaceLike": "orra_di.namespace",
    "PolicyRegistry": "orra_di.policy",
    "ToolPolicy": "orra_di.policy",
    "CapabilityDescription": "orra_di.prompt",
    "PromptBuilder": "orra_di.prompt",
    "CompletionRequest": "orra_di.provider",
    "CompletionResponse": "orra_di.provider",
    "FinishReason": "orra_di.provider",
    "Provider": "orra_di.provider",
    "StreamDone": "orra_di.provider",
    "StreamEvent": "orra_di.provider",
    "StreamingProvider": "orra_di.provider",
    "TextDelta": "orra_di.provider",
    "ToolCallDelta": "orra_di.provider",
    "ToolCallStart": "orra_di.provider",
    "Usage": "orra_di.provider",
    "RunContext": "orra_di.run_context",
    "current_run": "orra_di.run_context",
    "RunFinished": "orra_di.runtime",
    "RunResult": "orra_di.runtime",
    "RunStream": "orra_di.runtime",
    "Runtime": "orra_di.runtime",
    "RuntimeConfig": "orra_di.runtime",
    "RuntimeStreamEvent": "orra_di.runtime",
    "ToolCallCompleted": "orra_di.runtime",
    "ToolCallStarted": "orra_di.runtime",
    "TurnCompleted": "orra_di.runtime",
    "TurnResult": "orra_di.runtime",
    "RuntimeMap": "orra_di.runtime_set",
    "build_runtime": "orra_di.runtime_set",
    "Session": "orra_di.session",
    "SessionStore": "orra_di.store",
    "InMemoryStore": "orra_di.stores.memory",
    "FunctionTool": "orra_di.tool",
    "Tool": "orra_di.tool",
    "ToolContext": "orra_di.tool",
    "ToolDefinition": "orra_di.tool",
    "ToolRegistry": "orra_di.tool",
    "tool": "orra_di.tool",
}
"""Each public name and the module that defines it."""


def __getattr__(name: str) -> Any:
    module = _ORIGIN.get(name)
    if module is None:
        raise AttributeError(f"module 'orra_di' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


class _Package(ModuleType):
    """The package module, keeping its exported names when a submodule is imported.

    Importing ``orra_di.tool`` binds the submodule as the package's ``tool``
    attribute, which would hide the ``@tool`` decorator exported under that name.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and name in _ORIGIN:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = [
    "DEFAULT_AGENT_NAME",
    "DEFAULT_PERSONALITY",
    "AgentProfile",
    "ApprovalError",
    "AuthError",
    "BudgetExceededError",
    "CapabilityDescription",
    "CharEstimator",
    "CompletionRequest",
    "CompletionResponse",
    "ConfigurationError",
    "ContextBudget",
    "ContextLengthExceededError",
    "ContextMemory",
    "ContextWindow",
    "CronError",
    "FinishReason",
    "FunctionTool",
    "Hook",
    "HookRegistry",
    "InMemoryStore",
    "MaxTurnsExceeded",
    "Message",
    "Namespace",
    "NamespaceError",
    "NamespaceLike",
    "OrraError",
    "OrraRuntimeError",
    "PluginError",
    "PolicyRegistry",
    "ProjectError",
    "PromptBuilder",
    "Provider",
    "ProviderAuthError",
    "ProviderBadRequestError",
    "ProviderError",
    "ProviderTimeoutError",
    "ProviderUnavailableError",
    "RateLimitedError",
    "Role",
    "RunContext",
    "RunFinished",
    "RunResult",
    "RunStream",
    "Runtime",
    "RuntimeConfig",
    "RuntimeMap",
    "RuntimeStreamEvent",
    "Session",
    "SessionBusyError",
    "SessionStore",
    "StoreError",
    "StreamDone",
    "StreamEvent",
    "StreamingProvider",
    "TextDelta",
    "Tokenizer",
    "Tool",
    "ToolCall",
    "ToolCallCompleted",
    "ToolCallDelta",
    "ToolCallDenied",
    "ToolCallStart",
    "ToolCallStarted",
    "ToolContext",
    "ToolDefinition",
    "ToolError",
    "ToolExecutionError",
    "ToolInputError",
    "ToolPolicy",
    "ToolRegistry",
    "ToolResult",
    "TurnCompleted",
    "TurnResult",
    "Usage",
    "VendorData",
    "VoiceError",
    "build_runtime",
    "current_run",
    "delegate_to_agent_tool",
    "detect_agent_mention",
    "resolve_agents",
    "spawn_agent_tool",
    "tool",
]
