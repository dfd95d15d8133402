"""generate_image: orra's tests as behaviour, through the openai SDK against a loopback fake
of the images API."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from orra_di import ToolContext, ToolExecutionError, ToolInputError
from orra_di.tools.images import (
    GeneratedImage,
    ImageGenerationError,
    ImageOptions,
    ImageProvider,
    generate_image_tool,
)
from orra_di.tools.settings import ImageSettings

pytestmark = pytest.mark.anyio
CTX = ToolContext("t")
KEY = "sk-not-a-real-key"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def images_api(seen: list[dict[str, Any]]) -> Any:
    def handler(request: Request) -> Response:
        assert request.headers["Authorization"] == f"Bearer {KEY}"
        body = request.get_json()
        seen.append(body)
        item: dict[str, Any] = {"revised_prompt": f"A detailed {body['prompt']}"}
        if body.get("response_format") == "b64_json":
            item["b64_json"] = base64.b64encode(PNG).decode()
        else:
            item["url"] = "https://images.example/abc.png"
        return Response(json.dumps({"created": 1, "data": [item]}), content_type="application/json")

    return handler


def make(server: HTTPServer, **options: Any) -> Any:
    settings = ImageSettings(enabled=True, api_key=KEY, base_url=server.url_for("/v1"), **options)
    return generate_image_tool(settings)


async def test_image_gen_returns_the_url_and_revised_prompt(httpserver: HTTPServer) -> None:
    seen: list[dict[str, Any]] = []
    httpserver.expect_request("/v1/images/generations").respond_with_handler(images_api(seen))
    text = await make(httpserver).execute({"prompt": "cat"}, CTX)
    assert text == "Generated image: https://images.example/abc.png\nRevised prompt: A detailed cat"
    assert seen == [
        {
            "model": "dall-e-3",
            "prompt": "cat",
            "n": 1,
            "size": "1024x1024",
            "response_format": "url",
        }
    ]


async def test_options_are_forwarded(httpserver: HTTPServer) -> None:
    seen: list[dict[str, Any]] = []
    httpserver.expect_request("/v1/images/generations").respond_with_handler(images_api(seen))
    await make(httpserver).execute(
        {"prompt": "sea", "size": "1792x1024", "style": "natural", "quality": "hd"}, CTX
    )
    assert (seen[0]["size"], seen[0]["style"], seen[0]["quality"]) == ("1792x1024", "natural", "hd")


async def test_the_image_is_saved_to_the_configured_directory(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    seen: list[dict[str, Any]] = []
    httpserver.expect_request("/v1/images/generations").respond_with_handler(images_api(seen))
    tool = make(httpserver, output="file", directory=str(tmp_path / "out"))
    assert "saved image" in tool.definition.description
    text = await tool.execute({"prompt": "dog"}, CTX)
    assert seen[0]["response_format"] == "b64_json"
    path = Path(text.split("saved to ", 1)[1].split("\n", 1)[0])
    out = (tmp_path / "out").resolve()
    assert path.parent == out
    assert path.read_bytes() == PNG  # noqa: ASYNC240


async def test_missing_prompt_and_bad_options_are_input_errors(httpserver: HTTPServer) -> None:
    tool = make(httpserver)
    with pytest.raises(ToolInputError, match="prompt"):
        await tool.execute({}, CTX)
    with pytest.raises(ToolInputError, match="size"):
        await tool.execute({"prompt": "x", "size": "5x5"}, CTX)


async def test_a_provider_error_is_an_execution_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/images/generations").respond_with_json(
        {"error": {"message": "Your prompt was rejected", "type": "invalid_request_error"}},
        status=400,
    )
    with pytest.raises(ImageGenerationError, match=r"API error \(status 400\)") as caught:
        await make(httpserver).execute({"prompt": "x"}, CTX)
    assert isinstance(caught.value, ToolExecutionError)
    assert KEY not in str(caught.value)


async def test_an_empty_answer_is_a_parse_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/images/generations").respond_with_json(
        {"created": 1, "data": []}
    )
    with pytest.raises(ImageGenerationError, match="no images in response"):
        await make(httpserver).execute({"prompt": "x"}, CTX)


async def test_a_custom_provider() -> None:
    class Fixed:
        async def generate(
            self, prompt: str, options: ImageOptions, *, as_data: bool = False
        ) -> GeneratedImage:
            return GeneratedImage(url=f"https://cdn.example/{prompt}-{options.size}.png")

    assert isinstance(Fixed(), ImageProvider)
    tool = generate_image_tool(ImageSettings(), provider=Fixed())
    assert await tool.execute({"prompt": "owl"}, CTX) == (
        "Generated image: https://cdn.example/owl-1024x1024.png"
    )


def test_default_options_and_definition() -> None:
    assert ImageOptions() == ImageOptions(size="1024x1024", style=None, quality=None)
    tool = generate_image_tool(ImageSettings(), provider=object())  # type: ignore[arg-type]
    schema = tool.definition.input_schema
    assert tool.definition.name == "generate_image" and schema["required"] == ["prompt"]
    assert "URL" in tool.definition.description
