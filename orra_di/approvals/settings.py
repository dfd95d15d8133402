"""The ``approval`` settings section (``ORRA_APPROVAL__*``), composed by ``OrraSettings``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ApprovalSettings"]


class ApprovalSettings(BaseModel):
    """Which tool calls wait for a person's approval, and for how long."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    """Ask before the tool calls ``tools`` names; a call nobody approves in time is denied."""
    tools: list[str] = Field(
        default_factory=lambda: ["*"],
        description='a list of tool names, "*" for every tool (JSON in an environment variable)',
    )
    """The tools whose calls need approval."""
    timeout: float = Field(300.0, gt=0, allow_inf_nan=False)
    """Seconds a call waits for an answer before it is denied (finite)."""
    poll_interval: float = Field(0.5, gt=0, le=60, allow_inf_nan=False)
    """Seconds between two reads of a pending request on SQLite and file stores (PostgreSQL
    and Redis are notified, and read again only every 5 s as a safety net)."""

    @field_validator("tools")
    @classmethod
    def _names(cls, tools: list[str]) -> list[str]:
        for name in tools:
            if not name.strip():
                raise ValueError("a tool name cannot be empty")
        return tools
