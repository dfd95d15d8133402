"""``generate_image``: an :class:`ImageProvider` protocol, and the OpenAI images API on the
official ``openai`` SDK (orra's DALL·E provider).

``tools.generate_image.output`` says what the model gets back: the provider's URL
(``url``, orra's behaviour; such URLs expire after a while), or a file saved in
``directory`` (``file``: the image is requested as base64 and written there, named
by time and a random suffix). Needs ``pip install "orra-di[images]"`` (the openai SDK).
"""

# No ``from __future__ import annotations``: see orra_di/tools/exec.py.

import base64
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, runtime_checkable

from pydantic import Field, SecretStr

from orra_di.errors import ConfigurationError, ToolExecutionError, install_hint
from orra_di.tool import FunctionTool, tool
from orra_di.tools._text import clean, truncate
from orra_di.tools.settings import ImageSettings

__all__ = [
    "GeneratedImage",
    "ImageGenerationError",
    "ImageOptions",
    "ImageProvider",
    "OpenAIImages",
    "generate_image_tool",
]


class ImageGenerationError(ToolExecutionError):
    """The image provider failed; the message says how (orra's ``ImageGenError`` texts)."""


@dataclass(frozen=True)
class ImageOptions:
    """What the model may choose besides the prompt."""

    size: str = "1024x1024"
    style: str | None = None
    quality: str | None = None


@dataclass(frozen=True)
class GeneratedImage:
    """A provider's answer: a URL, or the image's bytes (``data``), and the prompt it used."""

    url: str | None = None
    data: bytes | None = None
    revised_prompt: str | None = None


@runtime_checkable
class ImageProvider(Protocol):
    async def generate(
        self, prompt: str, options: ImageOptions, *, as_data: bool = False
    ) -> GeneratedImage: ...


class OpenAIImages:
    """``POST /images/generations`` through the ``openai`` SDK (any compatible server)."""

    def __init__(
        self,
        api_key: SecretStr | str | None = None,
        *,
        model: str = "dall-e-3",
        base_url: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 2,
    ) -> None:
        try:
            import openai
        except ImportError as exc:
            raise ConfigurationError(
                f"generate_image needs the openai SDK: {install_hint('images')}"
            ) from exc
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        key = key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ConfigurationError(
                "generate_image needs an OpenAI API key: set tools.generate_image.api_key "
                "or OPENAI_API_KEY"
            )
        self._openai = openai
        self.model = model
        self._client = openai.AsyncOpenAI(
            api_key=key, base_url=base_url, timeout=timeout, max_retries=max_retries
        )

    def __repr__(self) -> str:
        return f"OpenAIImages(model={self.model!r})"

    async def generate(
        self, prompt: str, options: ImageOptions, *, as_data: bool = False
    ) -> GeneratedImage:
        openai = self._openai
        extra: dict[str, Any] = {}
        if options.quality:
            extra["quality"] = options.quality
        if options.style:
            extra["style"] = options.style
        if self.model.startswith("dall-e"):  # the gpt-image models always answer base64
            extra["response_format"] = "b64_json" if as_data else "url"
        try:
            answer = await self._client.images.generate(
                model=self.model, prompt=prompt, n=1, size=options.size, **extra
            )
        except openai.APIStatusError as exc:
            message = truncate(clean(exc.message), 1000, "…")
            raise ImageGenerationError(f"API error (status {exc.status_code}): {message}") from None
        except openai.APIError as exc:
            raise ImageGenerationError(f"request failed: {exc}") from None
        if not answer.data:
            raise ImageGenerationError("failed to parse response: no images in response")
        image = answer.data[0]
        data = base64.b64decode(image.b64_json) if image.b64_json else None
        if image.url is None and data is None:
            raise ImageGenerationError("failed to parse response: missing image url")
        return GeneratedImage(url=image.url, data=data, revised_prompt=image.revised_prompt)


def _save(data: bytes, directory: str) -> Path:
    folder = Path(directory).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = folder / f"image-{stamp}-{uuid.uuid4().hex[:8]}.png"
    path.write_bytes(data)
    return path


def generate_image_tool(
    settings: ImageSettings, provider: ImageProvider | None = None
) -> FunctionTool:
    """The ``generate_image`` tool: ``provider``, or OpenAI's as ``settings`` configure."""
    engine = provider or OpenAIImages(
        settings.api_key, model=settings.model, base_url=settings.base_url, timeout=settings.timeout
    )
    to_file = settings.output == "file"

    @tool(
        name="generate_image",
        description="Generate an image from a text description. Returns "
        + ("the path of the saved image." if to_file else "a URL to the generated image."),
    )
    async def generate_image(
        prompt: Annotated[str, Field(description="What the image shows", min_length=1)],
        size: Literal["1024x1024", "1792x1024", "1024x1792"] = "1024x1024",
        style: Literal["vivid", "natural"] | None = None,
        quality: Literal["standard", "hd"] | None = None,
    ) -> str:
        image = await engine.generate(prompt, ImageOptions(size, style, quality), as_data=to_file)
        if image.data is not None and (to_file or image.url is None):
            import anyio.to_thread

            path = await anyio.to_thread.run_sync(_save, image.data, settings.directory)
            text = f"Generated image: saved to {path}"
        else:
            text = f"Generated image: {image.url}"
        if image.revised_prompt:
            text += f"\nRevised prompt: {image.revised_prompt}"
        return text

    return generate_image
