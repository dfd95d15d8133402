"""``web_search``: a :class:`SearchBackend` protocol, with Brave (orra's) and Tavily on httpx.

The backend is chosen by ``tools.web_search.backend``; its API key is a secret
sent only in the header the vendor expects. A custom backend (another vendor, an
internal index) is any object with ``name`` and ``async search(query, count)``,
given to :func:`web_search_tool`. Needs ``pip install "orra-di[search]"``.
"""

# No ``from __future__ import annotations``: see orra_di/tools/exec.py.

import functools
import ssl
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, runtime_checkable

from pydantic import Field, SecretStr

from orra_di.errors import ConfigurationError, ToolExecutionError, install_hint
from orra_di.tool import FunctionTool, tool
from orra_di.tools._text import clean, truncate
from orra_di.tools.settings import WebSearchSettings

__all__ = ["BraveSearch", "SearchBackend", "SearchResult", "TavilySearch", "web_search_tool"]


@dataclass(frozen=True)
class SearchResult:
    """One hit: its title, URL and a snippet of its text (may be empty)."""

    title: str
    url: str
    snippet: str = ""


@runtime_checkable
class SearchBackend(Protocol):
    """A web search API."""

    name: str

    async def search(self, query: str, count: int) -> list[SearchResult]: ...


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise ConfigurationError(f"web_search needs httpx: {install_hint('search')}") from exc
    return httpx


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every search (building one takes tens of milliseconds)."""
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - httpx depends on certifi
        return ssl.create_default_context()


class _HttpBackend:
    name = "http"
    default_url = ""

    def __init__(
        self, api_key: SecretStr | str, *, base_url: str | None = None, timeout: float = 15.0
    ) -> None:
        self._httpx = _httpx()
        self._key = api_key if isinstance(api_key, SecretStr) else SecretStr(api_key)
        self.base_url = (base_url or self.default_url).rstrip("/")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    async def _request(self, method: str, path: str, **options: Any) -> Any:
        httpx = self._httpx
        try:
            async with httpx.AsyncClient(timeout=self.timeout, verify=_tls()) as client:
                response = await client.request(method, self.base_url + path, **options)
        except httpx.HTTPError as exc:
            raise ToolExecutionError(f"search error: {type(exc).__name__}: {exc}") from None
        if not response.is_success:
            body = truncate(clean(response.text), 500, "…")
            raise ToolExecutionError(f"{self.label} API {response.status_code}: {body}")
        try:
            return response.json()
        except ValueError as exc:
            raise ToolExecutionError(f"parse error: {exc}") from None

    label = "Search"


class BraveSearch(_HttpBackend):
    """The Brave Search API (``GET /web/search``, key in ``X-Subscription-Token``)."""

    name = "brave"
    label = "Brave Search"
    default_url = "https://api.search.brave.com/res/v1"

    async def search(self, query: str, count: int) -> list[SearchResult]:
        data = await self._request(
            "GET",
            "/web/search",
            params={"q": query, "count": count},
            headers={
                "X-Subscription-Token": self._key.get_secret_value(),
                "Accept": "application/json",
            },
        )
        results = ((data or {}).get("web") or {}).get("results") or []
        return [
            SearchResult(
                str(r.get("title", "")), str(r.get("url", "")), str(r.get("description") or "")
            )
            for r in results
        ]


class TavilySearch(_HttpBackend):
    """The Tavily search API (``POST /search``, key as a bearer token)."""

    name = "tavily"
    label = "Tavily"
    default_url = "https://api.tavily.com"

    async def search(self, query: str, count: int) -> list[SearchResult]:
        data = await self._request(
            "POST",
            "/search",
            json={"query": query, "max_results": count, "search_depth": "basic"},
            headers={"Authorization": f"Bearer {self._key.get_secret_value()}"},
        )
        results = (data or {}).get("results") or []
        return [
            SearchResult(
                str(r.get("title", "")), str(r.get("url", "")), str(r.get("content") or "")
            )
            for r in results
        ]


def backend_for(settings: WebSearchSettings) -> SearchBackend:
    """The backend ``settings`` name."""
    if settings.api_key is None:
        raise ConfigurationError("tools.web_search needs an api_key")
    kind: type[BraveSearch | TavilySearch] = (
        BraveSearch if settings.backend == "brave" else TavilySearch
    )
    return kind(settings.api_key, base_url=settings.base_url, timeout=settings.timeout)


def web_search_tool(
    settings: WebSearchSettings, backend: SearchBackend | None = None
) -> FunctionTool:
    """The ``web_search`` tool: ``backend``, or the one ``settings`` configure."""
    engine = backend if backend is not None else backend_for(settings)
    most = settings.max_results

    @tool(
        name="web_search",
        description="Search the web for current information. Returns titles, URLs, and "
        "snippets from search results. Use this when you need to find up-to-date "
        "information about any topic.",
    )
    async def web_search(
        query: Annotated[str, Field(description="What to search for", min_length=1)],
        count: Annotated[
            int, Field(description=f"Results to return (1-{most}, default: 5)", ge=1)
        ] = 5,
    ) -> str:
        results = await engine.search(query, min(count, most))
        if not results:
            return f"No results found for: {query}"
        return clean(
            "\n\n".join(
                f"{i}. {r.title}\n   {r.url}\n   {r.snippet or '(no description)'}"
                for i, r in enumerate(results, 1)
            )
        )

    return web_search
