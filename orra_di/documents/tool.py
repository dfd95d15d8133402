"""The ``search_documents``, ``read_document`` and ``list_documents`` tools.

orra's tools (spec §2C.11) searched one global store. Here every call sees only the
documents of the calling session's namespace and its ancestors
(:func:`~orra_di.documents.model.visible_namespaces`, from
:class:`~orra_di.tool.ToolContext`, never from the model's arguments): ``acme:alice``
reads her own documents and the tenant's (``acme``), never ``acme:bob``'s nor another
tenant's, and an id that exists in both her namespace and the tenant's reads hers.
Names, descriptions and output texts are orra's; a search shows each result's chunk cut
to ``excerpt_chars`` around its first match, and ``limit`` is capped at 20.
"""

from __future__ import annotations

from typing import Any

from orra_di.documents.model import visible_namespaces
from orra_di.documents.stores import DocumentStore
from orra_di.documents.text import excerpt, query_terms
from orra_di.errors import ToolExecutionError, ToolInputError
from orra_di.message import JsonValue
from orra_di.tool import Tool, ToolContext, ToolDefinition, ToolRegistry

__all__ = [
    "ListDocumentsTool",
    "ReadDocumentTool",
    "SearchDocumentsTool",
    "document_tools",
    "register_tools",
]

MAX_LIMIT = 20


def _args(arguments: JsonValue) -> dict[str, Any]:
    return arguments if isinstance(arguments, dict) else {}


class SearchDocumentsTool:
    """Ranked chunks of the documents the caller may see."""

    def __init__(
        self, store: DocumentStore, *, default_limit: int = 5, excerpt_chars: int = 600
    ) -> None:
        self.store = store
        self.default_limit = default_limit
        self.excerpt_chars = excerpt_chars
        self._definition = ToolDefinition(
            name="search_documents",
            description="Search documents by keyword or phrase. Returns the most relevant "
            "chunks ranked by relevance.",
            input_schema={
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "The search query."},
                    "limit": {
                        "type": "integer",
                        "description": f"Maximum number of results. Defaults to {default_limit}.",
                    },
                },
                "required": ["query"],
            },
        )

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        args = _args(arguments)
        query = args.get("query")
        if not isinstance(query, str) or not query:
            raise ToolInputError("missing 'query'")
        limit = args.get("limit", self.default_limit)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ToolInputError("'limit' must be a positive integer")
        results = await self.store.search(
            query, visible_namespaces(context.namespace), min(limit, MAX_LIMIT)
        )
        if not results:
            return f"No documents found matching '{query}'."
        terms = query_terms(query)
        return "\n\n".join(
            f"{i}. [{r.document_id}] {r.title} (score: {r.score:.3g})\n"
            f"{excerpt(r.chunk, terms, self.excerpt_chars)}"
            for i, r in enumerate(results, start=1)
        )


class ReadDocumentTool:
    """One whole document the caller may see, by id (its own namespace first)."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self._definition = ToolDefinition(
            name="read_document",
            description="Read the full content of a document by its ID.",
            input_schema={
                "type": "object",
                "properties": {"id": {"type": "string", "description": "The document ID."}},
                "required": ["id"],
            },
        )

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        doc_id = _args(arguments).get("id")
        if not isinstance(doc_id, str) or not doc_id:
            raise ToolInputError("missing 'id'")
        doc = await self.store.find(visible_namespaces(context.namespace), doc_id)
        if doc is None:
            raise ToolExecutionError(f"document '{doc_id}' not found")
        text = f"# {doc.title}\n(id: {doc.id})"
        if doc.metadata:
            text += "\n" + "\n".join(f"{k}: {v}" for k, v in sorted(doc.metadata.items()))
        return f"{text}\n\n{doc.content}"


class ListDocumentsTool:
    """The documents the caller may see, by id."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self._definition = ToolDefinition(
            name="list_documents",
            description="List all available documents with their IDs, titles, and metadata.",
            input_schema={"type": "object", "properties": {}},
        )

    @property
    def definition(self) -> ToolDefinition:
        return self._definition

    async def execute(self, arguments: JsonValue, context: ToolContext) -> str:
        summaries = await self.store.list(visible_namespaces(context.namespace))
        if not summaries:
            return "No documents in the store."
        lines = []
        for s in summaries:
            line = f"- [{s.id}] {s.title}"
            if s.metadata:
                line += " (" + ", ".join(f"{k}={v}" for k, v in sorted(s.metadata.items())) + ")"
            lines.append(line)
        return "\n".join(lines)


def document_tools(
    store: DocumentStore, *, default_limit: int = 5, excerpt_chars: int = 600
) -> list[Tool]:
    """The three tools over ``store``."""
    return [
        SearchDocumentsTool(store, default_limit=default_limit, excerpt_chars=excerpt_chars),
        ReadDocumentTool(store),
        ListDocumentsTool(store),
    ]


def register_tools(registry: ToolRegistry, store: DocumentStore) -> None:
    """Register all three tools over ``store`` (orra's ``register_tools``)."""
    for tool in document_tools(store):
        registry.register(tool)
