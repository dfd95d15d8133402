"""The document-store contract every backend passes (run by test_document_stores.py).

orra's §3 store tests (upsert_and_get ... search_empty_store) as behaviour, plus what
orra lacked: namespaces, chunks, erasure, hostile and foreign-language queries.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable

import anyio
import pytest

from orra_di.documents import Document, DocumentError, DocumentStore, document_store_for
from orra_di.namespace import Namespace
from orra_di.store import SessionStore

pytestmark = pytest.mark.anyio

SessionsFactory = Callable[[], SessionStore]

HANDBOOK = Document(
    id="handbook",
    namespace="acme",
    title="Employee Handbook",
    content="Employees receive 25 vacation days per year. Vacation requests go to your "
    "manager two weeks ahead. Remote work is allowed on Fridays.",
    metadata={"department": "hr"},
)
SECURITY = Document(
    id="security",
    namespace="acme",
    title="Security Policy",
    content="All passwords must be stored with strong encryption. Password rotation "
    "happens every 90 days. Report incidents to the security team.",
    source="it/security-policy.pdf",
    metadata={"source": "it/security-policy.pdf", "department": "it"},
)
ONBOARDING = Document(
    id="onboarding",
    namespace="acme",
    title="Onboarding Guide",
    content="Welcome to the company! On your first day you get a laptop and an account.",
)


def doc(doc_id: str, namespace: str, content: str, title: str = "") -> Document:
    return Document(id=doc_id, namespace=namespace, title=title or doc_id, content=content)


HOSTILE = [
    'vacation" OR 1=1 --',
    "vacation*",
    "NEAR(vacation days)",
    "vacation AND NOT days",
    "'; DROP TABLE documents_v1; --",
    "vacation\x00days",
    "title:vacation",
    "(vacation",
    "^vacation",
    "vacation & | ! <-> :*",
    '""""',
    "\\'\\\\",
    "{vacation}",
]


class DocumentStoreConformance:
    """Subclasses provide ``new_sessions``: a factory of session stores sharing one backend."""

    @pytest.fixture
    async def opened(self, new_sessions: SessionsFactory) -> AsyncIterator[SessionsFactory]:
        """``new_sessions``, each store closed at the end of the test."""
        made: list[SessionStore] = []

        def make() -> SessionStore:
            made.append(new_sessions())
            return made[-1]

        yield make
        for sessions in {id(s): s for s in made}.values():
            await sessions.aclose()

    @pytest.fixture
    def store(self, opened: SessionsFactory) -> DocumentStore:
        return document_store_for(opened(), chunk_size=200, overlap=40)

    async def seeded(self, store: DocumentStore) -> DocumentStore:
        for d in (HANDBOOK, SECURITY, ONBOARDING):
            await store.upsert(d)
        return store

    # -- orra's store tests ----------------------------------------------------------------

    async def test_upsert_and_get(self, store: DocumentStore) -> None:
        await store.upsert(SECURITY)
        got = await store.get("acme", "security")
        assert got is not None
        assert (got.title, got.content, got.source) == (
            SECURITY.title,
            SECURITY.content,
            SECURITY.source,
        )
        assert got.metadata == SECURITY.metadata
        assert got.content_hash == SECURITY.content_hash

    async def test_get_nonexistent_returns_none(self, store: DocumentStore) -> None:
        assert await store.get("acme", "nope") is None

    async def test_upsert_replaces_existing(self, store: DocumentStore) -> None:
        await store.upsert(doc("d", "acme", "the old text mentions zeppelins", "Old"))
        await store.upsert(doc("d", "acme", "the new text mentions submarines", "New"))
        got = await store.get("acme", "d")
        assert got is not None and got.title == "New"
        assert [s.id for s in await store.list(["acme"])] == ["d"]
        assert await store.search("zeppelins", ["acme"]) == []  # old chunks went too
        assert [r.document_id for r in await store.search("submarines", ["acme"])] == ["d"]

    async def test_remove_document(self, store: DocumentStore) -> None:
        await store.upsert(HANDBOOK)
        assert await store.remove("acme", "handbook") is True
        assert await store.get("acme", "handbook") is None
        assert await store.remove("acme", "handbook") is False
        assert await store.search("vacation", ["acme"]) == []

    async def test_list_returns_sorted_summaries(self, store: DocumentStore) -> None:
        await store.upsert(SECURITY)
        await store.upsert(HANDBOOK)
        await store.upsert(ONBOARDING)
        listed = await store.list(["acme"])
        assert [s.id for s in listed] == ["handbook", "onboarding", "security"]
        assert listed[2].metadata == SECURITY.metadata
        assert listed[2].source == "it/security-policy.pdf"

    async def test_search_empty_store(self, store: DocumentStore) -> None:
        assert await store.search("vacation days", ["acme"], 5) == []
        assert await store.list() == []

    async def test_search_finds_relevant_docs(self, store: DocumentStore) -> None:
        await self.seeded(store)
        results = await store.search("vacation days", ["acme"], 5)
        assert results[0].document_id == "handbook"
        assert results[0].score > 0
        assert "vacation" in results[0].chunk
        assert results[0].title == "Employee Handbook"

    async def test_search_ranks_correctly(self, store: DocumentStore) -> None:
        await self.seeded(store)
        results = await store.search("password encryption", ["acme"], 5)
        assert results[0].document_id == "security"
        assert all(a.score >= b.score for a, b in itertools.pairwise(results))

    async def test_search_empty_query_returns_empty(self, store: DocumentStore) -> None:
        await self.seeded(store)
        for query in ("", "   ", "?!", "a"):
            assert await store.search(query, ["acme"]) == []

    async def test_search_no_matches(self, store: DocumentStore) -> None:
        await self.seeded(store)
        assert await store.search("quantum physics", ["acme"]) == []

    async def test_search_respects_limit(self, store: DocumentStore) -> None:
        for i in range(6):
            await store.upsert(doc(f"d{i}", "acme", f"report number {i} about budgets"))
        assert len(await store.search("budgets", ["acme"], 2)) == 2
        assert len(await store.search("budgets", ["acme"], 10)) == 6
        assert await store.search("budgets", ["acme"], 0) == []

    async def test_search_matches_words_not_substrings(self, store: DocumentStore) -> None:
        await store.upsert(doc("c1", "acme", "the catalogue of concatenated items", "Items"))
        assert await store.search("cat", ["acme"]) == []
        await store.upsert(doc("c2", "acme", "a cat sat on the mat", "Mats"))
        assert [r.document_id for r in await store.search("cat", ["acme"])] == ["c2"]

    # -- chunks ----------------------------------------------------------------------------

    async def test_search_returns_the_matching_chunk_of_a_long_document(
        self, store: DocumentStore
    ) -> None:
        filler = "\n\n".join(f"Paragraph {i} talks about ordinary things." for i in range(30))
        content = filler + "\n\n## Parking\n\nThe parking garage opens at seven."
        await store.upsert(doc("long", "acme", content, "Facilities"))
        [result] = await store.search("parking garage", ["acme"])
        assert result.chunk_index > 0
        assert "parking garage opens" in result.chunk
        assert len(result.chunk) <= 200 + 40

    async def test_title_counts_in_every_chunk(self, store: DocumentStore) -> None:
        await store.upsert(doc("t", "acme", "nothing relevant here", "Expense Policy"))
        assert [r.document_id for r in await store.search("expense", ["acme"])] == ["t"]

    # -- namespaces ------------------------------------------------------------------------

    async def test_search_sees_only_the_namespaces_given(self, store: DocumentStore) -> None:
        await store.upsert(doc("shared", "acme", "holiday calendar for everyone"))
        await store.upsert(doc("mine", "acme:alice", "alice holiday notes"))
        await store.upsert(doc("bobs", "acme:bob", "bob holiday secrets"))
        await store.upsert(doc("other", "globex", "globex holiday plans"))
        found = {r.document_id for r in await store.search("holiday", ["acme:alice", "acme"])}
        assert found == {"shared", "mine"}
        assert [s.id for s in await store.list(["acme:alice", "acme"])] == ["mine", "shared"]
        assert await store.get("acme:alice", "bobs") is None
        assert await store.find(["acme:alice", "acme"], "other") is None
        assert len(await store.list()) == 4

    async def test_same_id_in_two_namespaces(self, store: DocumentStore) -> None:
        await store.upsert(doc("faq", "acme", "tenant wide answers"))
        await store.upsert(doc("faq", "acme:alice", "alice own answers"))
        nearest = await store.find(["acme:alice", "acme"], "faq")
        assert nearest is not None and nearest.content == "alice own answers"
        results = await store.search("answers", ["acme:alice", "acme"])
        assert sorted(r.namespace.key for r in results) == ["acme", "acme:alice"]
        assert await store.remove("acme", "faq") is True
        assert await store.get("acme:alice", "faq") is not None

    async def test_delete_tree_by_whole_segments(self, store: DocumentStore) -> None:
        await store.upsert(doc("a", "acme", "x1 text"))
        await store.upsert(doc("b", "acme:alice", "x2 text"))
        await store.upsert(doc("c", "acme:alice:notes", "x3 text"))
        await store.upsert(doc("d", "acme2", "x4 text"))
        await store.upsert(doc("e", "acme:bob", "x5 text"))
        assert await store.delete_tree("acme:alice") == 2
        assert [s.id for s in await store.list()] == ["a", "d", "e"]
        assert await store.search("text", ["acme:alice", "acme:alice:notes"]) == []
        assert await store.delete_tree("acme") == 2
        assert [s.id for s in await store.list()] == ["d"]
        assert await store.delete_tree("nobody") == 0

    async def test_stored_in_the_backend_not_the_object(self, opened: SessionsFactory) -> None:
        await document_store_for(opened()).upsert(HANDBOOK)
        other = document_store_for(opened())
        assert [r.document_id for r in await other.search("vacation", ["acme"])] == ["handbook"]

    # -- bad input -------------------------------------------------------------------------

    async def test_hostile_queries_are_only_words(self, store: DocumentStore) -> None:
        await self.seeded(store)
        for query in HOSTILE:
            results = await store.search(query, ["acme"])
            ids = [r.document_id for r in results]
            if "vacation" in query:
                assert ids[:1] == ["handbook"], query
            else:
                assert ids == [], query
        assert len(await store.list(["acme"])) == 3  # nothing dropped

    async def test_a_one_megabyte_query(self, store: DocumentStore) -> None:
        await self.seeded(store)
        query = "vacation " + " ".join(f"w{i}" for i in range(150_000))
        assert len(query) > 1_000_000
        assert [r.document_id for r in await store.search(query, ["acme"])][:1] == ["handbook"]

    async def test_hostile_document_text_round_trips(self, store: DocumentStore) -> None:
        text = '\'; DROP TABLE documents_v1; -- "quoted" NEAR(a b) * $1 %s {x} \\ é 日本語'
        await store.upsert(doc("h'x\"", "acme", text, "Title ' \" %s"))
        got = await store.get("acme", "h'x\"")
        assert got is not None and got.content == text and got.title == "Title ' \" %s"
        assert [r.document_id for r in await store.search("drop table", ["acme"])] == ["h'x\""]

    async def test_a_query_in_another_language(self, store: DocumentStore) -> None:
        await store.upsert(doc("de", "acme", "Die Größe des Büros beträgt vierzig Quadratmeter."))
        await store.upsert(doc("ru", "acme", "Отпуск сотрудника составляет двадцать пять дней."))
        await store.upsert(doc("el", "acme", "Η πολιτική ασφαλείας ισχύει για όλους."))
        assert [r.document_id for r in await store.search("GRÖSSE büro", ["acme"])] == ["de"]
        assert [r.document_id for r in await store.search("grosse", ["acme"])] == ["de"]
        assert [r.document_id for r in await store.search("отпуск", ["acme"])] == ["ru"]
        assert [r.document_id for r in await store.search("ΠΟΛΙΤΙΚΗ", ["acme"])] == ["el"]

    async def test_a_one_megabyte_document(self, store: DocumentStore) -> None:
        paragraph = "Lorem ipsum dolor sit amet consectetur adipiscing elit. " * 10
        big = "\n\n".join([paragraph] * 1800) + "\n\nThe needle is here."
        assert len(big) > 1_000_000
        await store.upsert(doc("big", "acme", big))
        [hit] = await store.search("needle", ["acme"])
        assert hit.document_id == "big" and "needle" in hit.chunk

    async def test_lone_surrogates_are_stored_as_replacement_characters(
        self, store: DocumentStore
    ) -> None:
        """Text from a broken decoder or a non-UTF-8 file name could be neither hashed
        nor stored (a bare UnicodeEncodeError); it is kept with U+FFFD, as messages are."""
        await store.upsert(
            Document(
                id="odd",
                namespace=Namespace("acme"),
                title="name \udcff",
                content="walrus \ud83d facts",
                metadata={"path": "/srv/\udce9t\udce9"},
            )
        )
        got = await store.get("acme", "odd")
        assert got is not None
        assert (got.title, got.content) == ("name \ufffd", "walrus \ufffd facts")
        assert got.metadata == {"path": "/srv/\ufffdt\ufffd"}
        assert [r.document_id for r in await store.search("walrus", ["acme"])] == ["odd"]

    async def test_binary_content_is_refused(self) -> None:
        with pytest.raises(DocumentError, match="binary"):
            doc("bin", "acme", "PK\x03\x04\x00\x00")

    async def test_concurrent_upserts_of_one_document(self, store: DocumentStore) -> None:
        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(store.upsert, doc("same", "acme", f"version {i} of walrus facts"))
        assert [s.id for s in await store.list(["acme"])] == ["same"]
        results = await store.search("walrus", ["acme"])
        assert len(results) == 1
        got = await store.get("acme", "same")
        assert got is not None and results[0].chunk == got.content
