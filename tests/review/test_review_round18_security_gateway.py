"""Round 18 security review: the gateway's input limits and tenant bounds, attacked.

JSON nested deeper than the parser goes (``[[[[...``, well inside ``max_body_bytes``)
raised ``RecursionError``: a 500 and a traceback in the log per request over HTTP, and a
closed connection over the WebSocket. Namespaces a tenant sends (``X-Orra-Session``, ``user``, URL
paths, prefixes) in every spelling stay inside its subtree.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import pytest
import websockets

from orra_di.testing import ScriptedProvider
from tests.gateway.helpers import (
    ALICE_KEY,
    BOB_KEY,
    auth,
    client_for,
    echo,
    make_container,
)
from tests.gateway.live import live_server

pytestmark = pytest.mark.anyio

DEEP = "[" * 100_000 + "]" * 100_000  # 200 kB: under the default body limit


@pytest.mark.parametrize(
    "path", ["/v1/chat", "/v1/chat/stream", "/v1/chat/completions", "/v1/approvals/some-id"]
)
async def test_deeply_nested_json_is_a_bad_request_not_an_internal_error(
    path: str, caplog: pytest.LogCaptureFixture
) -> None:
    container = make_container(ScriptedProvider(echo))
    caplog.set_level(logging.WARNING, logger="orra_di.gateway")
    async with client_for(container) as client:
        response = await client.post(path, content=DEEP, headers=auth(ALICE_KEY))
    assert response.status_code == 400, response.text
    assert "nested too deeply" in response.text
    assert not [r for r in caplog.records if r.name == "orra_di.gateway"]


async def test_deeply_nested_json_over_the_websocket_is_an_error_message() -> None:
    """The connection stays open and answers the next message."""
    container = make_container(ScriptedProvider(echo))
    async with live_server(container) as (base, _):
        url = base.replace("http", "ws") + "/v1/ws"
        async with websockets.connect(url, additional_headers=auth(ALICE_KEY)) as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            await ws.send(DEEP)
            error = json.loads(await ws.recv())
            assert error["type"] == "error" and error["code"] == "bad_request"
            assert "nested too deeply" in error["error"]
            await ws.send(json.dumps({"type": "ping"}))
            assert json.loads(await ws.recv()) == {"type": "pong"}


SPELLINGS = [
    "globex",
    "globex:alice",
    "..",
    "../globex",
    " globex",
    "GLOBEX",
    "ｇｌｏｂｅｘ",  # fullwidth letters: another key, not globex
    "globex%3Aalice",
    "%2E%2E",
]


async def test_every_spelling_of_another_tenant_in_a_session_header_stays_under_the_tenant() -> (
    None
):
    """``X-Orra-Session`` is percent-decoded: whatever a globex-looking name decodes to,
    alice's chat lands below ``acme`` and bob (globex) sees none of it."""
    container = make_container(ScriptedProvider(echo))
    async with client_for(container) as client:
        for name in SPELLINGS:
            response = await client.post(
                "/v1/chat/completions",
                json={"model": "Atlas", "messages": [{"role": "user", "content": "hi"}]},
                headers={**auth(ALICE_KEY), "X-Orra-Session": quote(name, safe="%:/. ")},
            )
            assert response.status_code in (200, 400), response.text
            if response.status_code == 200:
                assert response.headers["x-orra-session"].startswith("acme:")
        bob = await client.get("/v1/sessions", headers=auth(BOB_KEY))
        assert bob.json()["sessions"] == []
        alice = await client.get("/v1/sessions", headers=auth(ALICE_KEY))
        assert alice.json()["sessions"]
        assert all(key.startswith("acme:") for key in alice.json()["sessions"])


OWN = {"%61cme:x", "acme%3Ax"}


@pytest.mark.parametrize(
    "raw",
    ["globex", "globex:x", "acme%3Ax", "acm", "acmeX:y", "ACME:x", "acme :x", "%61cme:x"],
)
async def test_a_url_namespace_outside_the_tenant_is_not_found_for_get_and_delete(
    raw: str,
) -> None:
    """Every form a path segment may take (percent-escapes decoded once by the router)."""
    container = make_container(ScriptedProvider(echo))
    async with client_for(container) as client:
        for namespace in ("globex:x", "acme:x"):
            key = BOB_KEY if namespace.startswith("globex") else ALICE_KEY
            made = await client.post(
                "/v1/chat", json={"message": "hi", "namespace": namespace}, headers=auth(key)
            )
            assert made.status_code == 200
        for method in ("GET", "DELETE"):
            response = await client.request(method, f"/v1/sessions/{raw}", headers=auth(ALICE_KEY))
            if raw in OWN:  # the router decodes it: acme:x, alice's own
                assert response.status_code in (200, 404)
                continue
            assert response.status_code in (400, 404), (method, raw, response.text)
        erase = await client.delete(f"/v1/namespaces/{raw}", headers=auth(ALICE_KEY))
        assert erase.status_code in (400, 404) or raw in OWN
        bob = await client.get("/v1/sessions/globex:x", headers=auth(BOB_KEY))
        assert bob.status_code == 200  # bob's session survived every attempt


async def test_a_listing_prefix_or_approvals_namespace_outside_the_tenant_lists_nothing() -> None:
    container = make_container(ScriptedProvider(echo))
    async with client_for(container) as client:
        made = await client.post(
            "/v1/chat", json={"message": "hi", "namespace": "globex:x"}, headers=auth(BOB_KEY)
        )
        assert made.status_code == 200
        for prefix in ("globex", "globex:x", "glob", "g"):
            listed = await client.get(
                "/v1/sessions", params={"prefix": prefix}, headers=auth(ALICE_KEY)
            )
            assert listed.json()["sessions"] == [], prefix
            approvals = await client.get(
                "/v1/approvals", params={"namespace": prefix}, headers=auth(ALICE_KEY)
            )
            assert approvals.json()["approvals"] == []
        after = await client.get("/v1/sessions", params={"after": ""}, headers=auth(ALICE_KEY))
        assert after.json()["sessions"] == []
