"""The gateway: agents behind HTTP, Server-Sent Events, WebSocket and the OpenAI API.

``create_app(container)`` builds the Starlette application (extra ``[gateway]``);
``orra-di serve`` runs it on uvicorn. See docs/gateway.md.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orra_di.gateway.app import create_app
    from orra_di.gateway.auth import hash_api_key, new_api_key
    from orra_di.gateway.core import Gateway, GatewayError
    from orra_di.gateway.settings import ApiKeySettings, GatewaySettings

__all__ = [
    "ApiKeySettings",
    "Gateway",
    "GatewayError",
    "GatewaySettings",
    "create_app",
    "hash_api_key",
    "new_api_key",
]

_ORIGIN = {
    "create_app": "orra_di.gateway.app",
    "hash_api_key": "orra_di.gateway.auth",
    "new_api_key": "orra_di.gateway.auth",
    "Gateway": "orra_di.gateway.core",
    "GatewayError": "orra_di.gateway.core",
    "ApiKeySettings": "orra_di.gateway.settings",
    "GatewaySettings": "orra_di.gateway.settings",
}


def __getattr__(name: str) -> Any:
    import importlib

    try:
        module = _ORIGIN[name]
    except KeyError:
        raise AttributeError(f"module 'orra_di.gateway' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)
