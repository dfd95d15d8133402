"""web_search against loopback fakes of the Brave and Tavily wire formats."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from orra_di import ToolContext, ToolExecutionError, ToolInputError
from orra_di.tools.search import SearchBackend, SearchResult, web_search_tool
from orra_di.tools.settings import WebSearchSettings

pytestmark = pytest.mark.anyio
CTX = ToolContext("t")
KEY = "BSA-not-a-real-key"


def settings(server: HTTPServer, backend: str = "brave", **options: Any) -> WebSearchSettings:
    return WebSearchSettings(
        enabled=True, backend=backend, api_key=KEY, base_url=server.url_for(""), **options
    )


def brave(request: Request) -> Response:
    assert request.headers["X-Subscription-Token"] == KEY
    assert request.headers["Accept"] == "application/json"
    count = int(request.args["count"])
    results = [
        {"title": f"Result {i}", "url": f"https://example.com/{i}", "description": f"About {i}"}
        for i in range(1, count + 1)
    ]
    results[-1].pop("description")
    body = {"type": "search", "query": {"original": request.args["q"]}, "web": {"results": results}}
    return Response(json.dumps(body), content_type="application/json")


def test_tool_definition() -> None:
    tool = web_search_tool(WebSearchSettings(enabled=True, api_key=KEY))
    assert tool.definition.name == "web_search"
    assert tool.definition.input_schema["required"] == ["query"]


async def test_missing_query_is_an_input_error() -> None:
    tool = web_search_tool(WebSearchSettings(enabled=True, api_key=KEY))
    with pytest.raises(ToolInputError, match="query"):
        await tool.execute({}, CTX)


async def test_brave(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/web/search", method="GET").respond_with_handler(brave)
    text = await web_search_tool(settings(httpserver)).execute({"query": "rust", "count": 2}, CTX)
    assert text == (
        "1. Result 1\n   https://example.com/1\n   About 1\n\n"
        "2. Result 2\n   https://example.com/2\n   (no description)"
    )
    assert httpserver.log[0][0].args["q"] == "rust"


async def test_count_is_capped(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/web/search").respond_with_handler(brave)
    tool = web_search_tool(settings(httpserver, max_results=3))
    await tool.execute({"query": "x", "count": 50}, CTX)
    assert httpserver.log[0][0].args["count"] == "3"


async def test_no_results(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/web/search").respond_with_json({"type": "search"})
    text = await web_search_tool(settings(httpserver)).execute({"query": "zzqx"}, CTX)
    assert text == "No results found for: zzqx"


async def test_an_api_error_is_reported_without_the_key(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/web/search").respond_with_json(
        {"error": {"code": "SUBSCRIPTION_TOKEN_INVALID"}}, status=422
    )
    with pytest.raises(ToolExecutionError, match="Brave Search API 422") as caught:
        await web_search_tool(settings(httpserver)).execute({"query": "x"}, CTX)
    assert "SUBSCRIPTION_TOKEN_INVALID" in str(caught.value)
    assert KEY not in str(caught.value)


async def test_tavily(httpserver: HTTPServer) -> None:
    def tavily(request: Request) -> Response:
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        body = request.get_json()
        assert body["query"] == "weather" and body["max_results"] == 2
        answer = {
            "query": body["query"],
            "results": [
                {
                    "title": "Forecast",
                    "url": "https://w.example/f",
                    "content": "Sunny",
                    "score": 0.9,
                },
                {"title": "Radar", "url": "https://w.example/r", "content": "", "score": 0.5},
            ],
            "response_time": 0.4,
        }
        return Response(json.dumps(answer), content_type="application/json")

    httpserver.expect_request("/search", method="POST").respond_with_handler(tavily)
    tool = web_search_tool(settings(httpserver, backend="tavily"))
    text = await tool.execute({"query": "weather", "count": 2}, CTX)
    assert text == (
        "1. Forecast\n   https://w.example/f\n   Sunny\n\n"
        "2. Radar\n   https://w.example/r\n   (no description)"
    )


async def test_a_custom_backend() -> None:
    class Index:
        name = "index"

        async def search(self, query: str, count: int) -> list[SearchResult]:
            return [SearchResult("Handbook", "https://intra/handbook", f"{query} x{count}")]

    assert isinstance(Index(), SearchBackend)
    tool = web_search_tool(WebSearchSettings(), backend=Index())
    assert await tool.execute({"query": "leave"}, CTX) == (
        "1. Handbook\n   https://intra/handbook\n   leave x5"
    )


def test_enabling_needs_a_key() -> None:
    with pytest.raises(ValueError, match="api_key"):
        WebSearchSettings(enabled=True)
    assert KEY not in repr(WebSearchSettings(enabled=True, api_key=KEY))
