"""Which tools a namespace may use, inherited down the namespace tree."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from orra_di.namespace import Namespace, NamespaceLike
from orra_di.tool import ToolDefinition

__all__ = ["PolicyMode", "PolicyRegistry", "ToolPolicy"]


class PolicyMode(StrEnum):
    ALLOW_ALL = "allow_all"
    DENY_ALL = "deny_all"
    ALLOW = "allow"
    DENY = "deny"


class ToolPolicy(BaseModel):
    """Allow all, deny all, or an exact, case-sensitive allow or deny list."""

    model_config = ConfigDict(frozen=True)

    mode: PolicyMode = PolicyMode.ALLOW_ALL
    tools: frozenset[str] = frozenset()

    @classmethod
    def allow_all(cls) -> ToolPolicy:
        return cls(mode=PolicyMode.ALLOW_ALL)

    @classmethod
    def deny_all(cls) -> ToolPolicy:
        return cls(mode=PolicyMode.DENY_ALL)

    @classmethod
    def allow_list(cls, names: Iterable[str]) -> ToolPolicy:
        return cls(mode=PolicyMode.ALLOW, tools=frozenset(names))

    @classmethod
    def deny_list(cls, names: Iterable[str]) -> ToolPolicy:
        return cls(mode=PolicyMode.DENY, tools=frozenset(names))

    def is_allowed(self, name: str) -> bool:
        if self.mode is PolicyMode.ALLOW_ALL:
            return True
        if self.mode is PolicyMode.DENY_ALL:
            return False
        if self.mode is PolicyMode.ALLOW:
            return name in self.tools
        return name not in self.tools

    def filter_definitions(self, definitions: Sequence[ToolDefinition]) -> list[ToolDefinition]:
        return [d for d in definitions if self.is_allowed(d.name)]


class PolicyRegistry:
    """Policies by namespace; the most specific one on the way up wins (no merging)."""

    def __init__(self, default: ToolPolicy | None = None) -> None:
        self.default = default or ToolPolicy.allow_all()
        self._policies: dict[Namespace, ToolPolicy] = {}

    def set_policy(self, namespace: NamespaceLike, policy: ToolPolicy) -> None:
        self._policies[Namespace.coerce(namespace)] = policy

    def remove_policy(self, namespace: NamespaceLike) -> bool:
        return self._policies.pop(Namespace.coerce(namespace), None) is not None

    def resolve(self, namespace: NamespaceLike) -> ToolPolicy:
        namespace = Namespace.coerce(namespace)
        if not self._policies:
            return self.default
        found = self._policies.get(namespace)
        if found is not None:
            return found
        for ancestor in namespace.ancestors():
            found = self._policies.get(ancestor)
            if found is not None:
                return found
        return self.default

    def is_allowed(self, namespace: NamespaceLike, tool_name: str) -> bool:
        return self.resolve(namespace).is_allowed(tool_name)

    def __len__(self) -> int:
        return len(self._policies)
