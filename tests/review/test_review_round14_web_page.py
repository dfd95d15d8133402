"""Round 14 review: the web chat page's JavaScript against the server's real answers.

No browser: the page's own SSE reader (``sseEvents`` in ``static/app.js``) runs under
Node on the bytes a live gateway sent, and the rest is checked with httpx: the URLs
the page builds exist, hostile text comes back as data (never markup), and the page
puts it into the DOM as text.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest

import orra_di
from orra_di.testing import ScriptedProvider
from tests.gateway.helpers import ALICE_KEY, auth, make_container, sse_events
from tests.gateway.live import live_server

pytestmark = pytest.mark.anyio

APP_JS = Path(orra_di.__file__).parent / "gateway" / "static" / "app.js"
HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'

# The page's sseEvents, lifted out of app.js and fed the wire cut in two at every
# byte: prints the (name, data) pairs each cut yields.
RUNNER = r"""
const fs = require("node:fs");
const src = fs.readFileSync(process.argv[2], "utf8");
const start = src.indexOf("async function* sseEvents(body) {");
const end = src.indexOf("\n  }\n", start);
const sseEvents = eval("(" + src.slice(start, end + 4) + ")");
const wire = fs.readFileSync(process.argv[3]);
(async () => {
  const out = [];
  for (let cut = 1; cut < wire.length; cut++) {
    const parts = [wire.subarray(0, cut), wire.subarray(cut)];
    const body = new ReadableStream({
      start(c) { for (const p of parts) c.enqueue(p); c.close(); },
    });
    const got = [];
    for await (const e of sseEvents(body)) got.push([e.name, e.data]);
    out.push(got);
  }
  console.log(JSON.stringify(out));
})();
"""


def hostile(request: Any) -> str:
    return f"echo: {HOSTILE}"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js")
async def test_the_pages_sse_reader_keeps_every_event_whatever_the_chunking(
    tmp_path: Path,
) -> None:
    """A network chunk that ends between the ``\\r`` and ``\\n`` of a line must not make
    an empty line: that split ``event: start`` from its data, so the page lost the
    session's namespace (its next message opened a new session) or a text delta."""
    container = make_container(ScriptedProvider(hostile))
    async with live_server(container) as (base, _), httpx.AsyncClient(base_url=base) as http:
        response = await http.post(
            "/v1/chat/stream",
            json={"message": "hi", "namespace": "acme:page"},
            headers=auth(ALICE_KEY),
        )
    assert response.status_code == 200
    raw = response.content
    assert b"\r\n" in raw  # sse-starlette ends lines with CRLF
    expected = [[name, data] for name, data in sse_events(response.text)]
    assert [e[0] for e in expected][:1] == ["start"] and expected[-1][0] == "end"
    wire = tmp_path / "wire.txt"
    wire.write_bytes(raw)
    runner = tmp_path / "runner.cjs"
    runner.write_text(RUNNER)
    with anyio.fail_after(120):
        done = await anyio.run_process(["node", str(runner), str(APP_JS), str(wire)])
    results = json.loads(done.stdout)
    assert len(results) == len(raw) - 1
    bad = [cut + 1 for cut, got in enumerate(results) if got != expected]
    assert bad == []


def test_the_page_never_writes_html_from_data() -> None:
    """docs/gateway.md: everything a model or tool says is shown as text, never as HTML."""
    source = APP_JS.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source
    # the text of messages, tool names, arguments and results goes through textContent
    assert "body.textContent = text" in source
    assert "title.textContent = name" in source
    assert re.search(r'section\(card, [^)]*"result"\)\.textContent = content', source)


async def test_hostile_text_comes_back_as_json_data_on_every_path_the_page_reads() -> None:
    container = make_container(ScriptedProvider(hostile))
    namespace = "acme:<b>x</b>"
    async with live_server(container) as (base, _), httpx.AsyncClient(base_url=base) as http:
        chat = await http.post(
            "/v1/chat/stream",
            json={"message": HOSTILE, "namespace": namespace},
            headers=auth(ALICE_KEY),
        )
        assert chat.headers["content-type"].startswith("text/event-stream")
        end = sse_events(chat.text)[-1]
        assert end == ("end", end[1]) and end[1]["message"] == f"echo: {HOSTILE}"
        # the session list and the session as the page fetches them (encodeURIComponent)
        listing = await http.get("v1/sessions", headers=auth(ALICE_KEY))
        assert listing.headers["content-type"] == "application/json"
        assert namespace in listing.json()["sessions"]
        stored = await http.get("v1/sessions/" + quote(namespace, safe=""), headers=auth(ALICE_KEY))
        assert stored.status_code == 200
        assert stored.headers["content-type"] == "application/json"
        assert [m["content"] for m in stored.json()["messages"]] == [HOSTILE, f"echo: {HOSTILE}"]
        approvals = await http.get(
            "v1/approvals?namespace=" + quote(namespace, safe=""), headers=auth(ALICE_KEY)
        )
        assert approvals.status_code == 200 and approvals.json() == {"approvals": []}


async def test_the_page_and_its_files_are_served_and_the_api_asks_for_the_key() -> None:
    container = make_container(ScriptedProvider(hostile))
    async with live_server(container) as (base, _), httpx.AsyncClient(base_url=base) as http:
        page = await http.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        for asset in re.findall(r'(?:src|href)="(static/[^"]+)"', page.text):
            assert (await http.get("/" + asset)).status_code == 200
        # without the key the page is told 401 (it then opens the key panel)
        who = await http.get("/v1/whoami")
        assert who.status_code == 401 and who.json()["code"] == "unauthorized"
        who = await http.get("/v1/whoami", headers=auth(ALICE_KEY))
        assert who.json() == {"tenant": "acme", "key": "alice"}
