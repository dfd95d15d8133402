"""Documents: a tenant's knowledge base, chunked and searched with BM25, on every store.

- :mod:`~orra_di.documents.model`: :class:`Document`, :class:`DocumentSummary`,
  :class:`SearchResult`, the visibility rule (:func:`visible_namespaces`);
- :mod:`~orra_di.documents.text`: tokens, chunks, excerpts and BM25;
- :mod:`~orra_di.documents.stores`: :class:`DocumentStore` beside the sessions in every
  backend (:func:`document_store_for` picks it);
- :mod:`~orra_di.documents.tool`: the ``search_documents``, ``read_document`` and
  ``list_documents`` tools;
- :mod:`~orra_di.documents.ingest`: reading text, Markdown, HTML and PDF files.

Names are imported on first use (PEP 562), so reading the settings (which import
:mod:`orra_di.documents.settings`) does not load the stores.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orra_di.documents.model import (
        Document,
        DocumentError,
        DocumentSummary,
        SearchResult,
        visible_namespaces,
    )
    from orra_di.documents.settings import DocumentSettings
    from orra_di.documents.stores import (
        DocumentStore,
        MemoryDocumentStore,
        SQLiteDocumentStore,
        document_store_for,
    )

_ORIGIN = {
    "Document": "orra_di.documents.model",
    "DocumentError": "orra_di.documents.model",
    "DocumentSummary": "orra_di.documents.model",
    "SearchResult": "orra_di.documents.model",
    "visible_namespaces": "orra_di.documents.model",
    "DocumentSettings": "orra_di.documents.settings",
    "DocumentStore": "orra_di.documents.stores",
    "MemoryDocumentStore": "orra_di.documents.stores",
    "SQLiteDocumentStore": "orra_di.documents.stores",
    "document_store_for": "orra_di.documents.stores",
}

__all__ = [
    "Document",
    "DocumentError",
    "DocumentSettings",
    "DocumentStore",
    "DocumentSummary",
    "MemoryDocumentStore",
    "SQLiteDocumentStore",
    "SearchResult",
    "document_store_for",
    "visible_namespaces",
]


def __getattr__(name: str) -> Any:
    try:
        module = _ORIGIN[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
