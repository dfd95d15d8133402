"""orra's document tool tests as behaviour, and the tools' tenant scoping (bug 34)."""

from __future__ import annotations

import pytest

from orra_di.documents import Document, MemoryDocumentStore
from orra_di.documents.tool import document_tools, register_tools
from orra_di.errors import ToolExecutionError, ToolInputError
from orra_di.tool import ToolContext, ToolRegistry

from .conformance import HANDBOOK, ONBOARDING, SECURITY

pytestmark = pytest.mark.anyio

ALICE = ToolContext("acme:alice")


async def registry(*docs: Document) -> ToolRegistry:
    store = MemoryDocumentStore()
    for d in docs or (HANDBOOK, SECURITY, ONBOARDING):
        await store.upsert(d)
    reg = ToolRegistry()
    register_tools(reg, store)
    return reg


async def call(
    reg: ToolRegistry, name: str, args: dict[str, object], ctx: ToolContext = ALICE
) -> str:
    tool = reg.get(name)
    assert tool is not None
    return await tool.execute(args, ctx)  # type: ignore[arg-type]


async def test_search_tool_returns_results() -> None:
    out = await call(await registry(), "search_documents", {"query": "vacation days"})
    assert out.startswith("1. [handbook] Employee Handbook (score: ")
    assert "25 vacation days" in out


async def test_search_tool_no_results() -> None:
    out = await call(await registry(), "search_documents", {"query": "quantum physics"})
    assert out == "No documents found matching 'quantum physics'."


async def test_search_tool_missing_query() -> None:
    with pytest.raises(ToolInputError, match="missing 'query'"):
        await call(await registry(), "search_documents", {})


async def test_search_tool_limit() -> None:
    reg = await registry()
    out = await call(reg, "search_documents", {"query": "days password", "limit": 1})
    assert out.count("score:") == 1
    with pytest.raises(ToolInputError, match="limit"):
        await call(reg, "search_documents", {"query": "days", "limit": "many"})


async def test_read_tool_returns_full_document() -> None:
    out = await call(await registry(), "read_document", {"id": "security"})
    assert out.startswith("# Security Policy\n(id: security)\ndepartment: it\n")
    assert "source: it/security-policy.pdf" in out
    assert out.endswith("\n\n" + SECURITY.content)


async def test_read_tool_not_found() -> None:
    with pytest.raises(ToolExecutionError, match="document 'nope' not found"):
        await call(await registry(), "read_document", {"id": "nope"})


async def test_read_tool_missing_id() -> None:
    with pytest.raises(ToolInputError, match="missing 'id'"):
        await call(await registry(), "read_document", {})


async def test_list_tool_returns_all() -> None:
    out = await call(await registry(), "list_documents", {})
    assert out.splitlines() == [
        "- [handbook] Employee Handbook (department=hr)",
        "- [onboarding] Onboarding Guide",
        "- [security] Security Policy (department=it, source=it/security-policy.pdf)",
    ]


async def test_list_tool_empty_store() -> None:
    reg = ToolRegistry()
    register_tools(reg, MemoryDocumentStore())
    assert await call(reg, "list_documents", {}) == "No documents in the store."


def test_register_tools_adds_all_three() -> None:
    reg = ToolRegistry()
    register_tools(reg, MemoryDocumentStore())
    assert reg.names() == ["search_documents", "read_document", "list_documents"]


def test_tool_definitions_have_schemas() -> None:
    for tool in document_tools(MemoryDocumentStore()):
        schema = tool.definition.input_schema
        assert schema["type"] == "object"
        assert "properties" in schema
        assert tool.definition.description
    search = document_tools(MemoryDocumentStore(), default_limit=7)[0].definition
    assert search.input_schema["required"] == ["query"]
    assert "Defaults to 7." in search.input_schema["properties"]["limit"]["description"]


# -- tenants -------------------------------------------------------------------------------

TENANTS = (
    Document(id="policy", namespace="acme", title="Acme policy", content="acme holiday rules"),
    Document(id="notes", namespace="acme:alice", title="Alice notes", content="alice holiday"),
    Document(id="diary", namespace="acme:bob", title="Bob diary", content="bob holiday secret"),
    Document(id="plan", namespace="globex", title="Globex plan", content="globex holiday"),
    Document(id="deep", namespace="acme:alice:x", title="Below", content="nested holiday"),
)


async def test_tools_see_the_callers_namespace_and_its_ancestors_only() -> None:
    reg = await registry(*TENANTS)
    found = await call(reg, "search_documents", {"query": "holiday secret globex nested"})
    assert "[notes]" in found and "[policy]" in found
    assert "[diary]" not in found and "[plan]" not in found and "[deep]" not in found
    listed = await call(reg, "list_documents", {})
    assert listed.splitlines() == ["- [notes] Alice notes", "- [policy] Acme policy"]
    for guessed in ("diary", "plan", "deep"):
        with pytest.raises(ToolExecutionError, match="not found"):
            await call(reg, "read_document", {"id": guessed})
    # the tenant itself sees only its own documents, not its users'
    tenant = await call(reg, "list_documents", {}, ToolContext("acme"))
    assert tenant.splitlines() == ["- [policy] Acme policy"]


async def test_a_namespace_argument_from_the_model_is_ignored() -> None:
    reg = await registry(*TENANTS)
    out = await call(reg, "list_documents", {"namespace": "globex"})
    assert "[plan]" not in out
    out = await call(reg, "search_documents", {"query": "globex", "namespace": "globex"})
    assert out == "No documents found matching 'globex'."


async def test_own_document_shadows_the_tenants_of_the_same_id() -> None:
    reg = await registry(
        Document(id="faq", namespace="acme", title="Tenant FAQ", content="tenant answers"),
        Document(id="faq", namespace="acme:alice", title="Alice FAQ", content="alice answers"),
    )
    assert (await call(reg, "read_document", {"id": "faq"})).startswith("# Alice FAQ")
    out = await call(reg, "read_document", {"id": "faq"}, ToolContext("acme:bob"))
    assert out.startswith("# Tenant FAQ")


async def test_search_shows_an_excerpt_around_the_match() -> None:
    long_text = ("Filler words repeat here. " * 40) + "The fire exit is behind the kitchen."
    store = MemoryDocumentStore(chunk_size=2000, overlap=0)
    await store.upsert(Document(id="safety", namespace="acme", title="Safety", content=long_text))
    [search, *_] = document_tools(store, excerpt_chars=100)
    out = await search.execute({"query": "fire exit"}, ALICE)
    body = out.split("\n", 1)[1]
    assert "fire exit" in body and body.startswith("...")
    assert len(body) <= 106
