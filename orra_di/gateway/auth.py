"""API keys: made, hashed at rest, checked in constant time, each bound to a tenant.

A key is 32 random bytes (``orra_`` and URL-safe base64), so one SHA-256 is enough to
keep it at rest: there is nothing to guess that a slow hash would protect. A check
hashes the presented key once and compares it with every configured digest through
:func:`hmac.compare_digest`, without stopping at the first match, so the time taken
says nothing about which key (if any) was close.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from orra_di.gateway.settings import ApiKeySettings
from orra_di.namespace import Namespace
from orra_di.store import in_subtree

__all__ = ["Caller", "KeyRing", "hash_api_key", "is_loopback", "new_api_key"]


def new_api_key() -> str:
    """A fresh random key."""
    return "orra_" + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """The digest kept in the settings for ``key``: ``sha256:<hex>``."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and the loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the key's name and the namespace subtree it may use (None: all)."""

    key: str | None
    tenant: str | None

    def owns(self, namespace: Namespace | str) -> bool:
        key = namespace if isinstance(namespace, str) else namespace.key
        return self.tenant is None or in_subtree(key, self.tenant)

    @property
    def by(self) -> str:
        """The name decisions are recorded under."""
        return f"gateway:{self.key}" if self.key else "gateway"


ANONYMOUS = Caller(key=None, tenant=None)


def _digest_bytes(key: ApiKeySettings) -> bytes:
    return bytes.fromhex(key.digest.get_secret_value().removeprefix("sha256:"))


class KeyRing:
    """The configured keys; ``authenticate`` turns a presented key into a :class:`Caller`."""

    def __init__(self, keys: Sequence[ApiKeySettings]) -> None:
        self._keys = [(_digest_bytes(k), k) for k in keys]

    @property
    def required(self) -> bool:
        """Keys are configured, so every call must present one."""
        return bool(self._keys)

    def authenticate(self, presented: str | None) -> Caller | None:
        """The caller for ``presented``, or None for a missing, wrong or revoked key.

        With no keys configured everyone is the anonymous caller of the whole store.
        """
        if not self._keys:
            return ANONYMOUS
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found: ApiKeySettings | None = None
        for stored, key in self._keys:
            if hmac.compare_digest(stored, digest):  # every key compared: no early exit
                found = key
        if found is None or found.revoked:
            return None
        return Caller(key=found.name, tenant=found.tenant)


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
