"""Approvals: a person approves a tool call before it runs (human in the loop), failing closed.

- :class:`ApprovalHook` asks an :class:`Approver` before the calls it selects and
  denies unless explicitly approved in time (:mod:`orra_di.approvals.hook`);
- :class:`InProcessApprover` hands requests to the application over a memory
  stream, :class:`StoreApprover` waits for an answer given through the
  :class:`ApprovalStore` from anywhere (another process, ``orra-di approvals``);
- :func:`approval_store_for` keeps requests and the audit trail beside the
  sessions, in every session store backend (:mod:`orra_di.approvals.stores`).
"""

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
