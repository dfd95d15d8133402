"""Namespaces: the crate's tests (src/namespace.rs) plus the §5.4/17 fix.

In orra 0.0.2 ``Namespace::new("tenant:acme")`` had one segment while
``Namespace::parse("tenant:acme")`` had two, with the same key. Here a segment
can never hold the separator, so the two spellings cannot silently differ.
"""

from __future__ import annotations

import copy
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from orra_di.errors import NamespaceError, OrraError
from orra_di.namespace import MAX_KEY_LENGTH, SEPARATOR, Namespace

# -- the crate's tests ------------------------------------------------------


def test_create_root_namespace() -> None:
    # Fixed (§5.4/17): "tenant:acme" is a key of two segments, spelled with parse().
    ns = Namespace.parse("tenant:acme")
    assert ns.root == "tenant"
    assert ns.depth == 2
    assert ns.key == "tenant:acme"
    assert ns == Namespace("tenant", "acme")

    root = Namespace("acme")
    assert root.root == "acme"
    assert root.depth == 1
    assert root.key == "acme"


def test_root_with_separator_is_an_error_pointing_at_parse() -> None:
    with pytest.raises(NamespaceError) as info:
        Namespace("tenant:acme")
    message = str(info.value)
    assert "Namespace.parse('tenant:acme')" in message
    assert "separator" in message


def test_create_child_namespace() -> None:
    acme = Namespace("acme")
    alice = acme.child("alice")
    assert alice.depth == 2
    assert alice.key == "acme:alice"
    assert alice.segments == ("acme", "alice")
    # The original is untouched.
    assert acme.depth == 1
    assert acme.key == "acme"


def test_child_with_separator_is_an_error_pointing_at_parse() -> None:
    # orra accepted child("user:alice") as one segment; it would collide with
    # child("user").child("alice") in every store.
    with pytest.raises(NamespaceError, match=r"Namespace\.parse\('user:alice'\)"):
        Namespace("acme").child("user:alice")
    assert Namespace("acme").child("user").child("alice").key == "acme:user:alice"


def test_nested_children() -> None:
    ns = Namespace("acme").child("alice").child("support")
    assert ns.depth == 3
    assert ns.key == "acme:alice:support"
    assert ns.root == "acme"


def test_parent_of_child() -> None:
    ns = Namespace("acme").child("alice").child("support")
    parent = ns.parent
    assert parent is not None
    assert parent.key == "acme:alice"
    grandparent = parent.parent
    assert grandparent is not None
    assert grandparent.key == "acme"
    assert grandparent.parent is None


def test_root_has_no_parent() -> None:
    assert Namespace("acme").parent is None


def test_ancestor_checks() -> None:
    root = Namespace("acme")
    child = root.child("alice")
    grandchild = child.child("support")

    assert root.is_ancestor_of(child)
    assert root.is_ancestor_of(grandchild)
    assert child.is_ancestor_of(grandchild)
    assert not child.is_ancestor_of(root)
    assert not grandchild.is_ancestor_of(root)
    assert not root.is_ancestor_of(root)


def test_ancestry_is_segment_wise_not_a_string_prefix() -> None:
    assert not Namespace("acme").is_ancestor_of(Namespace("acmeother", "bob"))
    assert not Namespace("acme", "al").is_ancestor_of(Namespace("acme", "alice"))
    assert not Namespace("acme", "alice").is_ancestor_of(Namespace("other", "acme", "alice"))


def test_descendant_checks() -> None:
    root = Namespace("acme")
    child = root.child("alice")
    grandchild = child.child("support")

    assert child.is_descendant_of(root)
    assert grandchild.is_descendant_of(root)
    assert grandchild.is_descendant_of(child)
    assert not root.is_descendant_of(child)
    assert not root.is_descendant_of(root)


def test_parse_namespace_key() -> None:
    ns = Namespace.parse("acme:alice:support")
    assert ns.depth == 3
    assert ns.segments == ("acme", "alice", "support")
    assert ns.key == "acme:alice:support"


def test_display_trait() -> None:
    ns = Namespace("acme").child("alice")
    assert str(ns) == "acme:alice"
    assert f"{ns}" == "acme:alice"


def test_equality_and_hashing() -> None:
    a = Namespace("acme").child("alice")
    b = Namespace.parse("acme:alice")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert {a: 1}[b] == 1
    assert a != Namespace("acme")
    assert a != Namespace("acme", "bob")
    assert a != "acme:alice"


def test_serialization_roundtrip() -> None:
    adapter = TypeAdapter(Namespace)
    ns = Namespace("acme").child("alice").child("support")
    data = adapter.dump_json(ns)
    # orra's wire format: a struct with a segment list, not a colon string.
    assert adapter.validate_json(data) == ns
    assert adapter.dump_python(ns) == {"segments": ["acme", "alice", "support"]}
    assert adapter.dump_python(ns, mode="json") == {"segments": ["acme", "alice", "support"]}


# -- validation: what cannot be a session key --------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("a::b", "empty"),
        (":a", "empty"),
        ("a:", "empty"),
        (":", "empty"),
    ],
)
def test_parse_rejects_empty_segments(key: str, expected: str) -> None:
    with pytest.raises(NamespaceError, match=expected):
        Namespace.parse(key)


def test_empty_segment_is_rejected() -> None:
    with pytest.raises(NamespaceError, match="segment is empty"):
        Namespace("")
    with pytest.raises(NamespaceError, match="segment is empty"):
        Namespace("acme").child("")


def test_empty_key_is_rejected() -> None:
    with pytest.raises(NamespaceError, match="key is empty"):
        Namespace.parse("")


def test_no_segments_is_rejected() -> None:
    with pytest.raises(NamespaceError, match="at least one segment"):
        Namespace()


@pytest.mark.parametrize(
    ("segment", "codepoint"),
    [("a\x00b", "U+0000"), ("a\nb", "U+000A"), ("tab\there", "U+0009"), ("del\x7f", "U+007F")],
)
def test_control_characters_are_rejected(segment: str, codepoint: str) -> None:
    with pytest.raises(NamespaceError) as info:
        Namespace(segment)
    assert "control character" in str(info.value)
    assert codepoint in str(info.value)
    with pytest.raises(NamespaceError, match="control character"):
        Namespace.parse("acme:" + segment)


def test_lone_surrogate_is_rejected() -> None:
    with pytest.raises(NamespaceError, match=r"lone surrogate U\+D800"):
        Namespace("a\ud800")


def test_non_string_segments_are_rejected() -> None:
    with pytest.raises(NamespaceError, match="must be a string, got int"):
        Namespace(1)  # type: ignore[arg-type]
    with pytest.raises(NamespaceError, match="must be a string, got NoneType"):
        Namespace.parse(None)  # type: ignore[arg-type]


def test_key_length_limit() -> None:
    longest = Namespace("a" * MAX_KEY_LENGTH)
    assert len(longest.key) == MAX_KEY_LENGTH

    with pytest.raises(NamespaceError) as info:
        Namespace("a" * (MAX_KEY_LENGTH + 1))
    assert f"{MAX_KEY_LENGTH + 1} characters long" in str(info.value)
    assert f"limit is {MAX_KEY_LENGTH}" in str(info.value)

    # The separators count: two segments that are fine alone exceed it together.
    half = "b" * (MAX_KEY_LENGTH // 2)
    with pytest.raises(NamespaceError, match="characters long"):
        Namespace(half).child(half)
    with pytest.raises(NamespaceError, match="characters long"):
        Namespace.parse(f"{half}:{half}")


def test_namespace_error_is_a_value_error_and_an_orra_error() -> None:
    with pytest.raises(ValueError, match="segment is empty"):
        Namespace("")
    assert issubclass(NamespaceError, OrraError)


def test_non_ascii_segments_are_allowed() -> None:
    ns = Namespace("müller", "日本語", "🙂")
    assert ns.key == "müller:日本語:🙂"
    assert Namespace.parse(ns.key) == ns


# -- value semantics ---------------------------------------------------------


def test_namespace_is_immutable() -> None:
    ns = Namespace("acme")
    with pytest.raises(AttributeError, match="immutable"):
        ns._segments = ("other",)
    with pytest.raises(AttributeError):
        ns.key = "other"  # type: ignore[misc]
    assert ns.key == "acme"


def test_pickle_and_copy_roundtrip() -> None:
    ns = Namespace("acme", "alice", "support")
    restored = pickle.loads(pickle.dumps(ns))
    assert restored == ns
    assert restored.key == "acme:alice:support"
    assert copy.copy(ns) == ns
    assert copy.deepcopy(ns) == ns


def test_ordering() -> None:
    a, ab, b = Namespace("a"), Namespace("a", "b"), Namespace("b")
    assert sorted([b, ab, a]) == [a, ab, b]
    assert a < ab < b
    assert a <= a
    assert b > a
    assert b >= ab
    with pytest.raises(TypeError):
        _ = a < "b"


def test_repr_round_trips() -> None:
    ns = Namespace("acme", "alice")
    assert repr(ns) == "Namespace.parse('acme:alice')"
    assert eval(repr(ns), {"Namespace": Namespace}) == ns


def test_ancestors_most_specific_first() -> None:
    ns = Namespace("a", "b", "c", "d")
    assert [a.key for a in ns.ancestors()] == ["a:b:c", "a:b", "a"]
    assert list(Namespace("a").ancestors()) == []


def test_contains_self_and_descendants() -> None:
    acme = Namespace("acme")
    assert acme.contains(acme)
    assert acme.contains(acme.child("alice").child("x"))
    assert not acme.contains(Namespace("acmeother"))
    assert not acme.child("alice").contains(acme)


def test_separator_is_colon() -> None:
    assert SEPARATOR == ":"


# -- pydantic ------------------------------------------------------------------


class _Holder(BaseModel):
    namespace: Namespace


def test_pydantic_field_roundtrip_as_segments() -> None:
    holder = _Holder(namespace=Namespace("acme", "alice"))
    assert holder.model_dump() == {"namespace": {"segments": ["acme", "alice"]}}
    assert holder.model_dump_json() == '{"namespace":{"segments":["acme","alice"]}}'
    assert _Holder.model_validate_json(holder.model_dump_json()) == holder


def test_pydantic_accepts_a_plain_key_string() -> None:
    holder = _Holder.model_validate({"namespace": "acme:alice"})
    assert holder.namespace == Namespace("acme", "alice")
    assert _Holder.model_validate_json('{"namespace": "acme"}').namespace == Namespace("acme")


@pytest.mark.parametrize(
    "value",
    ["", "a::b", {"segments": []}, {"segments": ["a:b"]}, {"nope": 1}, 42, ["acme"]],
)
def test_pydantic_rejects_invalid_namespaces(value: object) -> None:
    with pytest.raises(ValidationError):
        _Holder.model_validate({"namespace": value})


# -- property ------------------------------------------------------------------

_segment = st.text(
    alphabet=st.characters(exclude_categories=("Cc", "Cs"), exclude_characters=SEPARATOR),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_segment, min_size=1, max_size=8))
def test_parse_of_key_roundtrips(segments: list[str]) -> None:
    ns = Namespace(*segments)
    assert Namespace.parse(ns.key) == ns
    assert Namespace.parse(ns.key).segments == tuple(segments)
    assert TypeAdapter(Namespace).validate_json(TypeAdapter(Namespace).dump_json(ns)) == ns


# -- Namespace | str wherever a namespace is taken ------------------------------------------


def test_coerce_returns_a_namespace_as_it_is_and_parses_a_key() -> None:
    ns = Namespace("acme", "alice")
    assert Namespace.coerce(ns) is ns
    assert Namespace.coerce("acme:alice") == ns


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("", "namespace key is empty"),
        ("acme::alice", "namespace segment is empty"),
        ("acme:\x07", "control character"),
        (42, "expected a Namespace or a key like 'acme:alice', got int"),
        (None, "got NoneType"),
        (("acme", "alice"), "got tuple"),
    ],
)
def test_coerce_refuses_what_parse_refuses_with_a_namespace_error(
    value: object, match: str
) -> None:
    with pytest.raises(NamespaceError, match=match):
        Namespace.coerce(value)  # type: ignore[arg-type]
