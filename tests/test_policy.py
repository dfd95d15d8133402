"""Tool policies: the crate's tests (src/policy.rs)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orra_di.namespace import Namespace
from orra_di.policy import PolicyMode, PolicyRegistry, ToolPolicy
from orra_di.tool import ToolDefinition


def defs(*names: str) -> list[ToolDefinition]:
    return [ToolDefinition(name=n, description=f"{n} tool", input_schema={}) for n in names]


# -- the crate's tests ------------------------------------------------------


def test_allow_all_policy() -> None:
    policy = ToolPolicy.allow_all()
    assert policy.is_allowed("anything")
    assert policy.is_allowed("")
    assert ToolPolicy() == policy  # the default


def test_deny_all_policy() -> None:
    policy = ToolPolicy.deny_all()
    assert not policy.is_allowed("anything")
    assert not policy.is_allowed("search")


def test_allow_list_policy() -> None:
    policy = ToolPolicy.allow_list(["search", "read"])
    assert policy.is_allowed("search")
    assert policy.is_allowed("read")
    assert not policy.is_allowed("delete")
    # Exact and case-sensitive; no wildcards or prefixes.
    assert not policy.is_allowed("Search")
    assert not policy.is_allowed("sea")
    assert not policy.is_allowed("search*")


def test_deny_list_policy() -> None:
    policy = ToolPolicy.deny_list(["delete", "admin"])
    assert policy.is_allowed("search")
    assert not policy.is_allowed("delete")
    assert not policy.is_allowed("admin")
    assert policy.is_allowed("Delete")


def test_filter_definitions() -> None:
    policy = ToolPolicy.allow_list(["search", "read"])
    filtered = policy.filter_definitions(defs("search", "read", "delete"))
    assert len(filtered) == 2
    assert [d.name for d in filtered] == ["search", "read"]
    assert all(d.name != "delete" for d in filtered)


def test_policy_registry_default() -> None:
    registry = PolicyRegistry()
    assert registry.resolve(Namespace("acme")) == ToolPolicy.allow_all()
    assert registry.resolve(Namespace("acme", "alice")).is_allowed("anything")
    assert len(registry) == 0


def test_policy_registry_exact_match() -> None:
    registry = PolicyRegistry()
    ns = Namespace("acme", "alice")
    registry.set_policy(ns, ToolPolicy.deny_all())
    assert registry.resolve(Namespace.parse("acme:alice")) == ToolPolicy.deny_all()
    assert not registry.is_allowed(ns, "search")
    # Siblings and the parent are unaffected.
    assert registry.resolve(Namespace("acme", "bob")) == ToolPolicy.allow_all()
    assert registry.resolve(Namespace("acme")) == ToolPolicy.allow_all()


def test_policy_registry_inherits_from_parent() -> None:
    registry = PolicyRegistry()
    acme = Namespace("acme")
    registry.set_policy(acme, ToolPolicy.deny_list(["admin"]))
    alice = acme.child("alice")
    support = alice.child("support")
    for ns in (acme, alice, support):
        assert not registry.is_allowed(ns, "admin")
        assert registry.is_allowed(ns, "search")
    assert registry.resolve(support) == ToolPolicy.deny_list(["admin"])


def test_policy_registry_child_overrides_parent() -> None:
    registry = PolicyRegistry()
    acme = Namespace("acme")
    alice = acme.child("alice")
    registry.set_policy(acme, ToolPolicy.deny_all())
    registry.set_policy(alice, ToolPolicy.allow_list(["search"]))
    assert not registry.is_allowed(acme, "search")
    assert registry.is_allowed(alice, "search")
    # Below alice, alice's policy (the deepest match) wins.
    assert registry.is_allowed(alice.child("support"), "search")
    assert not registry.is_allowed(alice.child("support"), "delete")
    assert not registry.is_allowed(acme.child("bob"), "search")


def test_policy_registry_remove() -> None:
    registry = PolicyRegistry()
    ns = Namespace("acme")
    registry.set_policy(ns, ToolPolicy.deny_all())
    assert registry.remove_policy(ns) is True
    assert registry.resolve(ns) == ToolPolicy.allow_all()
    assert registry.remove_policy(ns) is False


def test_policy_registry_unrelated_namespaces_isolated() -> None:
    registry = PolicyRegistry()
    registry.set_policy(Namespace("acme"), ToolPolicy.deny_all())
    assert registry.is_allowed(Namespace("globex"), "search")
    assert registry.is_allowed(Namespace("globex", "alice"), "search")
    # A string prefix is not an ancestor.
    assert registry.is_allowed(Namespace("acmeother", "bob"), "search")


# -- more of the contract ------------------------------------------------------


def test_no_merging_between_levels() -> None:
    registry = PolicyRegistry()
    acme = Namespace("acme")
    registry.set_policy(acme, ToolPolicy.deny_list(["admin"]))
    registry.set_policy(acme.child("alice"), ToolPolicy.deny_list(["delete"]))
    alice = acme.child("alice")
    assert registry.is_allowed(alice, "admin")  # the parent's list does not add up
    assert not registry.is_allowed(alice, "delete")


def test_set_policy_overwrites() -> None:
    registry = PolicyRegistry()
    ns = Namespace("acme")
    registry.set_policy(ns, ToolPolicy.deny_all())
    registry.set_policy(ns, ToolPolicy.allow_list(["read"]))
    assert registry.resolve(ns) == ToolPolicy.allow_list(["read"])
    assert len(registry) == 1


def test_custom_default_policy() -> None:
    registry = PolicyRegistry(ToolPolicy.deny_all())
    assert not registry.is_allowed(Namespace("anyone"), "search")
    registry.set_policy(Namespace("trusted"), ToolPolicy.allow_all())
    assert registry.is_allowed(Namespace("trusted", "alice"), "search")
    assert registry.default == ToolPolicy.deny_all()


def test_filter_definitions_keeps_input_order() -> None:
    policy = ToolPolicy.deny_list(["b"])
    assert [d.name for d in policy.filter_definitions(defs("d", "c", "b", "a"))] == ["d", "c", "a"]
    assert ToolPolicy.deny_all().filter_definitions(defs("a", "b")) == []
    assert ToolPolicy.allow_all().filter_definitions(defs("a", "b")) == defs("a", "b")


def test_policy_is_a_frozen_value() -> None:
    policy = ToolPolicy.allow_list(["a", "b"])
    assert policy == ToolPolicy.allow_list(["b", "a"])
    assert policy.mode is PolicyMode.ALLOW
    assert policy.tools == frozenset({"a", "b"})
    with pytest.raises(ValidationError):
        policy.mode = PolicyMode.DENY_ALL  # type: ignore[misc]


def test_policy_json_roundtrip() -> None:
    policy = ToolPolicy.deny_list(["admin", "delete"])
    restored = ToolPolicy.model_validate_json(policy.model_dump_json())
    assert restored == policy
    assert ToolPolicy.model_validate({"mode": "allow", "tools": ["x"]}) == ToolPolicy.allow_list(
        ["x"]
    )


def test_a_registry_takes_namespace_keys_as_well() -> None:
    registry = PolicyRegistry()
    registry.set_policy("acme", ToolPolicy.deny_list(["rm"]))
    assert not registry.is_allowed("acme:alice", "rm")
    assert registry.resolve(Namespace("acme", "bob")) == ToolPolicy.deny_list(["rm"])
    assert registry.remove_policy("acme")
    assert registry.is_allowed("acme:alice", "rm")
