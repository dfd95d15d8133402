"""Which vendor and model the settings select, and why: one answer for the container and the CLI.

``llm.kind`` and ``llm.model`` may be left unset: the vendor is then chosen from
``llm.base_url`` or the vendor key variables, and the model from the vendor's
default, or, for a server given only by its URL (Ollama, vLLM, llama.cpp), from
the server itself. :func:`vendor_model` and :func:`require_key` are what the
container builds the adapter with; :func:`choose_llm` says the same in words
for ``orra-di config`` and ``orra-di agents``, naming the variable that decided.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import SecretStr

from orra_di.errors import ConfigurationError, OrraError
from orra_di.settings import VENDOR_KEY_ENV, LLMKind, LLMSettings, describe

if TYPE_CHECKING:
    from orra_di.settings import OrraSettings

__all__ = ["LLMChoice", "choose_llm", "require_key", "served_model", "vendor_key", "vendor_model"]

MODEL_ENV = "ORRA_LLM__MODEL"
KEY_ENV = "ORRA_LLM__API_KEY"


def vendor_model(kind: LLMKind, llm: LLMSettings) -> str | None:
    """The model the adapter is built with; ``None`` asks the server at ``base_url``.

    A server other than the vendor's own would not know the vendor's default
    model (a local server answers "model not found" to ``gpt-4o``), so an
    OpenAI-compatible ``base_url`` without ``llm.model`` asks the server.
    """
    if llm.model:
        return llm.model
    if kind == "anthropic":
        from orra_di.providers import anthropic

        return anthropic.DEFAULT_MODEL
    if llm.base_url:
        return None
    from orra_di.providers import openai

    return openai.DEFAULT_MODEL


def vendor_key(kind: LLMKind, llm: LLMSettings) -> SecretStr | None:
    """The key sent to the vendor: ``llm.api_key``, else the vendor's own variable.

    A server named by ``base_url`` never receives ``OPENAI_API_KEY``: it is not
    OpenAI's, and the key would leak to it.
    """
    if kind == "openai" and llm.base_url:
        return llm.api_key
    return llm.resolved_api_key


def require_key(kind: LLMKind, llm: LLMSettings) -> None:
    """Fail at start-up, naming the variables to set, when a vendor has no key."""
    if kind not in VENDOR_KEY_ENV or vendor_key(kind, llm) is not None:
        return
    if kind == "openai" and llm.base_url:
        return  # a local server takes no key
    hint = (
        " (or ORRA_LLM__BASE_URL for a local OpenAI-compatible server)" if kind == "openai" else ""
    )
    raise ConfigurationError(
        f"llm.kind is {kind!r} but no API key is set: set {VENDOR_KEY_ENV[kind]} or {KEY_ENV}{hint}"
    )


async def served_model(llm: LLMSettings) -> str:
    """The only model the OpenAI-compatible server at ``llm.base_url`` serves."""
    from orra_di.providers.openai import OpenAIProvider

    provider = OpenAIProvider(
        vendor_key("openai", llm),
        model=None,
        base_url=llm.base_url,
        timeout=min(llm.timeout, 10.0),
        max_retries=0,
    )
    async with provider:
        return await provider.discover_model()


@dataclass(frozen=True)
class LLMChoice:
    """The vendor and model in use, each with what chose it, in words."""

    kind: LLMKind
    kind_source: str
    model: str | None
    model_source: str
    llm: LLMSettings = dataclasses.field(repr=False)

    def summary(self) -> str:
        """One line: ``vendor openai (…); model llama3 (…)``."""
        model = self.model or "none"
        return f"vendor {self.kind} ({self.kind_source}); model {model} ({self.model_source})"

    async def ask_server(self) -> LLMChoice:
        """This choice with the server's model filled in, when the server decides it.

        A server that cannot say is reported in ``model_source``, not raised:
        showing the settings must work when the server is down.
        """
        if self.model is not None or self.kind != "openai" or not self.llm.base_url:
            return self
        try:
            model = await served_model(self.llm)
        except OrraError as exc:
            return dataclasses.replace(self, model_source=str(exc))
        where = self.llm.base_url.rstrip("/")
        source = f"the only model {where}/models lists; {MODEL_ENV} to change"
        return dataclasses.replace(self, model=model, model_source=source)


def choose_llm(settings: OrraSettings) -> LLMChoice:
    """The vendor and model ``settings`` select, and what selected each.

    A model the server decides is left ``None`` here; :meth:`LLMChoice.ask_server`
    asks it.
    """
    sources = {name: source for name, _, source in describe(settings)}
    llm = settings.llm
    kind = llm.resolved_kind
    if llm.kind is not None:
        kind_source = sources["llm.kind"]
    elif llm.base_url:
        kind_source = f"auto: llm.base_url is set, {sources['llm.base_url']}"
    elif kind in VENDOR_KEY_ENV:
        kind_source = f"auto: {VENDOR_KEY_ENV[kind]} is set"
    else:
        keys = ", ".join(VENDOR_KEY_ENV.values())
        kind_source = f"auto: no {keys} or ORRA_LLM__BASE_URL"
    if kind not in VENDOR_KEY_ENV:
        model = llm.model
        model_source = sources["llm.model"] if llm.model else f"the {kind} model takes none"
    elif llm.model:
        model, model_source = llm.model, sources["llm.model"]
    else:
        model = vendor_model(kind, llm)
        if model is None:
            model_source = f"asked from the server; {MODEL_ENV} to choose"
        else:
            model_source = f"default for {kind}; {MODEL_ENV} to change"
    return LLMChoice(kind, kind_source, model, model_source, llm)
