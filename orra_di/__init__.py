"""orra-di: LLM agents inside your application.

Namespaced sessions, per-namespace tool policies, token budgets, lifecycle
hooks and a single-writer session store, composed in one DI container.
This module re-exports the public API; adapters that need an extra
(SDK clients, database drivers) are imported from their own modules.
"""

from orra_di.agent import (
    DEFAULT_AGENT_NAME,
    DEFAULT_PERSONALITY,
    AgentProfile,
    detect_agent_mention,
    resolve_agents,
)
from orra_di.context import CharEstimator, ContextBudget, ContextMemory, ContextWindow, Tokenizer
from orra_di.delegation import delegate_to_agent_tool, spawn_agent_tool
from orra_di.errors import (
    ApprovalError,
    ConfigurationError,
    ContextLengthExceededError,
    MaxTurnsExceeded,
    NamespaceError,
    OrraError,
    OrraRuntimeError,
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

__all__ = [
    "DEFAULT_AGENT_NAME",
    "DEFAULT_PERSONALITY",
    "AgentProfile",
    "ApprovalError",
    "CapabilityDescription",
    "CharEstimator",
    "CompletionRequest",
    "CompletionResponse",
    "ConfigurationError",
    "ContextBudget",
    "ContextLengthExceededError",
    "ContextMemory",
    "ContextWindow",
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
    "PolicyRegistry",
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
    "build_runtime",
    "current_run",
    "delegate_to_agent_tool",
    "detect_agent_mention",
    "resolve_agents",
    "spawn_agent_tool",
    "tool",
]
