"""Approvals: a person approves a tool call before it runs (human in the loop), failing closed.

- :class:`ApprovalHook` asks an :class:`Approver` before the calls it selects and
  denies unless explicitly approved in time (:mod:`orra_di.approvals.hook`);
- :class:`InProcessApprover` hands requests to the application over a memory
  stream, :class:`StoreApprover` waits for an answer given through the
  :class:`ApprovalStore` from anywhere (another process, ``orra-di approvals``);
- :func:`approval_store_for` keeps requests and the audit trail beside the
  sessions, in every session store backend (:mod:`orra_di.approvals.stores`).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orra_di.approvals.hook import (
        AUTO_APPROVE_KEY,
        AUTO_APPROVE_TOOL,
        AUTO_APPROVER,
        DEFAULT_TIMEOUT,
        ApprovalHook,
        Approver,
        InProcessApprover,
        PendingApproval,
        StoreApprover,
        auto_approve_tool,
        set_auto_approve,
        set_session_auto_approve,
    )
    from orra_di.approvals.model import (
        SYSTEM,
        ApprovalRecord,
        ApprovalStatus,
        Decision,
        arguments_hash,
        canonical_arguments,
    )
    from orra_di.approvals.stores import (
        ApprovalStore,
        FileApprovalStore,
        MemoryApprovalStore,
        SQLiteApprovalStore,
        approval_store_for,
    )

__all__ = [
    "AUTO_APPROVER",
    "AUTO_APPROVE_KEY",
    "AUTO_APPROVE_TOOL",
    "DEFAULT_TIMEOUT",
    "SYSTEM",
    "ApprovalHook",
    "ApprovalRecord",
    "ApprovalStatus",
    "ApprovalStore",
    "Approver",
    "Decision",
    "FileApprovalStore",
    "InProcessApprover",
    "MemoryApprovalStore",
    "PendingApproval",
    "SQLiteApprovalStore",
    "StoreApprover",
    "approval_store_for",
    "arguments_hash",
    "auto_approve_tool",
    "canonical_arguments",
    "set_auto_approve",
    "set_session_auto_approve",
]

# Loaded on first use, so that ``orra_di.approvals.settings`` and ``.cli`` (imported at
# start-up by the settings and the CLI) do not pull in the stores and the hook.
_WHERE = {
    "AUTO_APPROVER": "orra_di.approvals.hook",
    "AUTO_APPROVE_KEY": "orra_di.approvals.hook",
    "AUTO_APPROVE_TOOL": "orra_di.approvals.hook",
    "ApprovalHook": "orra_di.approvals.hook",
    "ApprovalRecord": "orra_di.approvals.model",
    "ApprovalStatus": "orra_di.approvals.model",
    "ApprovalStore": "orra_di.approvals.stores",
    "Approver": "orra_di.approvals.hook",
    "DEFAULT_TIMEOUT": "orra_di.approvals.hook",
    "Decision": "orra_di.approvals.model",
    "FileApprovalStore": "orra_di.approvals.stores",
    "InProcessApprover": "orra_di.approvals.hook",
    "MemoryApprovalStore": "orra_di.approvals.stores",
    "PendingApproval": "orra_di.approvals.hook",
    "SQLiteApprovalStore": "orra_di.approvals.stores",
    "SYSTEM": "orra_di.approvals.model",
    "StoreApprover": "orra_di.approvals.hook",
    "approval_store_for": "orra_di.approvals.stores",
    "arguments_hash": "orra_di.approvals.model",
    "auto_approve_tool": "orra_di.approvals.hook",
    "canonical_arguments": "orra_di.approvals.model",
    "set_auto_approve": "orra_di.approvals.hook",
    "set_session_auto_approve": "orra_di.approvals.hook",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
