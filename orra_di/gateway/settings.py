"""The ``gateway`` settings section (``ORRA_GATEWAY__*``), composed by ``OrraSettings``.

Kept free of Starlette so that reading the settings never needs the ``[gateway]`` extra.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from orra_di.namespace import Namespace

__all__ = ["DIGEST_PATTERN", "ApiKeySettings", "GatewaySettings"]

DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
"""How a key's digest is written: ``sha256:`` and 64 lower-case hex digits."""


class ApiKeySettings(BaseModel):
    """One API key: its digest (never the key itself) and the namespace subtree it may use."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    """Who holds the key; shown in approval audit trails as ``gateway:<name>``."""
    digest: SecretStr
    """``sha256:<hex>`` of the key, as ``orra-di gateway new-key`` prints it (kept out of
    reprs, errors and ``orra-di config``, like a secret: a key pasted here by mistake
    must not be echoed back)."""
    tenant: str | None = None
    """The namespace prefix the key is bound to (``acme``: ``acme`` and ``acme:...``);
    left out (TOML has no null) or ``null``, the whole store (an operator key)."""
    revoked: bool = False
    """A revoked key is refused like a wrong one (kept for the record)."""

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: SecretStr) -> SecretStr:
        if not DIGEST_PATTERN.fullmatch(value.get_secret_value()):
            raise ValueError(
                "digest must be 'sha256:' and 64 hex digits; `orra-di gateway new-key` "
                "makes a key and prints its digest"
            )
        return value

    @field_validator("tenant")
    @classmethod
    def _tenant(cls, value: str | None) -> str | None:
        return None if value is None else Namespace.parse(value).key


class GatewaySettings(BaseModel):
    """The HTTP gateway (``orra-di serve``): where it listens, who may call it, its limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    """Address to listen on. Anything but loopback needs ``api_keys`` (or
    ``allow_unauthenticated``)."""
    port: int = Field(8080, ge=0, le=65535)
    """TCP port to listen on (0 picks a free one)."""
    api_keys: list[ApiKeySettings] = Field(
        default_factory=list,
        description="a list of tables {name, digest, tenant, revoked} "
        "(JSON in an environment variable)",
    )
    """The keys accepted in ``Authorization: Bearer``; none configured means no
    authentication, which is only allowed on a loopback address."""
    allow_unauthenticated: bool = False
    """Serve on a non-loopback address without API keys (everyone sees every session)."""
    cors_origins: list[str] = Field(
        default_factory=list,
        description='a list of origins, e.g. ["https://app.example"] (JSON in an '
        "environment variable)",
    )
    """Browser origins allowed to call the API from other sites; empty turns CORS off."""
    max_body_bytes: int = Field(1_048_576, ge=1024)
    """Largest request body accepted, in bytes (also the largest WebSocket message)."""
    request_timeout: float = Field(300.0, gt=0, allow_inf_nan=False)
    """Seconds one chat run may take before it is cancelled and answered with ``timeout``."""
    shutdown_grace: float = Field(30.0, ge=0, allow_inf_nan=False)
    """Seconds ``orra-di serve`` lets runs in flight finish after SIGTERM before cancelling
    them (a cancelled run keeps what it did; an unfinished tool call is recorded as
    interrupted)."""
    ws_idle_timeout: float = Field(300.0, gt=0, allow_inf_nan=False)
    """Seconds a WebSocket may stay silent (no message, no pong) before it is closed."""
    ws_auth_timeout: float = Field(10.0, gt=0, allow_inf_nan=False)
    """Seconds a WebSocket has to send its ``auth`` message when the key is not in a header."""
    ws_max_chats: int = Field(16, ge=1)
    """Chats one WebSocket may have running at once; more are refused with ``busy``."""
    static_dir: str | None = None
    """Folder whose ``index.html`` is served at ``GET /`` (default: the chat page in the
    package)."""

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            if origin == "*":
                raise ValueError(
                    "'*' would let every web site call the API with a user's key; list origins"
                )
        return origins
