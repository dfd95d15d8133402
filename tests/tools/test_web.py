"""web_fetch and read_url: orra's tests as behaviour, the SSRF guard, and the limits.

Pages come from a loopback server; the tests that reach it allow 127.0.0.0/8 in the
settings, the way a deployment would allow an internal network.
"""

from __future__ import annotations

import ipaddress
import shutil
import ssl
import subprocess
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from orra_di import ToolContext, ToolExecutionError, ToolInputError
from orra_di.tools.settings import ReadUrlSettings, WebSettings
from orra_di.tools.web import (
    AddressGuard,
    address_kind,
    extract_title,
    html_to_text,
    read_url_tool,
    readable,
    web_fetch_tool,
)

pytestmark = pytest.mark.anyio
CTX = ToolContext("t")
LOOPBACK = ["127.0.0.0/8"]

ARTICLE = """<!doctype html><html><head><title>My Page</title>
<style>body { font-family: serif }</style>
<script>console.log("hi"); trackPageView();</script></head>
<body><nav><a href="/">Home</a> | <a href="/about">About</a> | <a href="/shop">Shop</a></nav>
<article><h1>Rivers of the North</h1>
<p>The <b>northern rivers</b> freeze early in the winter, and the ice stays until late
spring. Fishermen cut holes in it and wait for hours for a bite.</p>
<p>In summer the same rivers carry timber down to the coast, where the mills turn it into
planks for the boats that sail south along the shore every autumn.</p>
<p>Travellers who come in spring see both: the last ice floating past and the first rafts
of logs gathering at the bends, waiting for the water to rise.</p></article>
<footer>Copyright 2026 Example Corp. All rights reserved.</footer></body></html>"""


def fetcher(**options: Any) -> Any:
    return web_fetch_tool(WebSettings(enabled=True, **options))


def reader(**options: Any) -> Any:
    return read_url_tool(ReadUrlSettings(enabled=True, **options))


# -- orra's strip_html / extract_text tests, on a real parser -----------------------------


def test_html_to_text_basic_blocks_on_their_own_lines() -> None:
    assert html_to_text("<p>Hello</p><p>World</p>") == "Hello\nWorld"
    assert html_to_text("<div>a<br>b</div><ul><li>x</li><li>y</li></ul>") == "a\nb\nx\ny"


def test_html_to_text_removes_scripts_and_styles_and_keeps_what_follows() -> None:
    # orra lost "after" (it stayed "inside a tag" until the next '>', bug 27)
    html = "<p>before</p><script>var x = '<p>';</script>after <style>p {}</style><b>bold</b>"
    assert html_to_text(html) == "before\nafter bold"


def test_html_to_text_decodes_entities_once() -> None:
    assert html_to_text("<p>A &amp; B &lt; C &gt; D &quot;E&quot; &#39;F&#39;</p>") == (
        "A & B < C > D \"E\" 'F'"
    )
    assert html_to_text("<p>&amp;lt;</p>") == "&lt;"  # orra decoded twice: "<"


def test_html_to_text_collapses_whitespace_and_removes_comments() -> None:
    assert html_to_text("<p>  Hello    world  </p>") == "Hello world"
    assert html_to_text("<p>a<!-- hidden --> b</p>") == "a b"


def test_block_detection_is_by_element_not_prefix() -> None:
    # orra matched any tag starting with "p": <param>, <pre>, <P> were mishandled
    assert html_to_text("<P>one</P><P>two</P>") == "one\ntwo"
    assert html_to_text("x<span>y</span><param name=a>z") == "xyz"


def test_extract_title() -> None:
    assert extract_title("<html><head><title> My Page </title></head></html>") == "My Page"
    assert extract_title("<html><body>none</body></html>") is None
    assert extract_title("<title>   </title>") is None


def test_the_title_is_not_repeated_in_the_text() -> None:
    assert "My Page" not in html_to_text(ARTICLE)


def test_readable_keeps_the_article_and_drops_the_page_furniture() -> None:
    title, text = readable(ARTICLE)
    assert title in ("My Page", "Rivers of the North")
    assert "northern rivers freeze early" in text
    assert "first rafts" in text
    for noise in ("console.log", "trackPageView", "font-family", "All rights reserved", "Shop"):
        assert noise not in text


def test_tool_definitions() -> None:
    fetch = fetcher().definition
    assert fetch.name == "web_fetch" and fetch.input_schema["required"] == ["url"]
    read = reader().definition
    assert read.name == "read_url" and read.input_schema["required"] == ["url"]


async def test_missing_url_is_an_input_error() -> None:
    with pytest.raises(ToolInputError, match="url"):
        await fetcher().execute({}, CTX)


# -- fetching from loopback (allowed by the settings) -----------------------------------


async def test_web_fetch_returns_the_pages_text(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data(ARTICLE, content_type="text/html")
    text = await fetcher(allow_networks=LOOPBACK).execute({"url": httpserver.url_for("/a")}, CTX)
    assert text.startswith("Home | About | Shop\nRivers of the North\nThe northern rivers")
    assert "console.log" not in text


async def test_read_url_returns_title_url_and_main_text(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data(ARTICLE, content_type="text/html")
    url = httpserver.url_for("/a")
    text = await reader(allow_networks=LOOPBACK).execute({"url": url}, CTX)
    assert text.startswith("Title: ")
    assert f"URL: {url}\n\n" in text
    assert "northern rivers freeze early" in text and "All rights reserved" not in text


async def test_truncation_is_on_characters(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/t").respond_with_data("é" * 500, content_type="text/plain")
    text = await fetcher(allow_networks=LOOPBACK).execute(
        {"url": httpserver.url_for("/t"), "max_length": 100}, CTX
    )
    assert text == "é" * 100 + "\n\n[Truncated — 100 of 500 characters shown]"


async def test_invalid_utf8_is_replaced(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/b").respond_with_data(
        b"ok \xff\xfe done", content_type="text/plain; charset=utf-8"
    )
    text = await fetcher(allow_networks=LOOPBACK).execute({"url": httpserver.url_for("/b")}, CTX)
    assert text == "ok \ufffd\ufffd done"


async def test_a_declared_charset_is_used(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/l").respond_with_data(
        "café".encode("latin-1"), content_type="text/plain; charset=latin-1"
    )
    text = await fetcher(allow_networks=LOOPBACK).execute({"url": httpserver.url_for("/l")}, CTX)
    assert text == "café"


async def test_a_meta_charset_is_used_when_the_header_has_none(httpserver: HTTPServer) -> None:
    page = '<html><head><meta charset="iso-8859-1"></head><body><p>café</p></body></html>'
    httpserver.expect_request("/m").respond_with_data(
        page.encode("latin-1"), content_type="text/html"
    )
    text = await fetcher(allow_networks=LOOPBACK).execute({"url": httpserver.url_for("/m")}, CTX)
    assert text == "café"


async def test_http_errors_and_content_types(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/404").respond_with_data("no", status=404)
    httpserver.expect_request("/png").respond_with_data(b"\x89PNG", content_type="image/png")
    tool = fetcher(allow_networks=LOOPBACK)
    with pytest.raises(ToolExecutionError, match=r"HTTP 404: (NOT FOUND|Not Found) for ") as e:
        await tool.execute({"url": httpserver.url_for("/404")}, CTX)
    assert str(e.value).endswith(httpserver.url_for("/404"))
    with pytest.raises(ToolExecutionError, match="unsupported content type: image/png"):
        await tool.execute({"url": httpserver.url_for("/png")}, CTX)


async def test_redirects_are_followed_within_the_allowed_networks(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/old").respond_with_data(
        "", status=302, headers={"Location": "/new"}
    )
    httpserver.expect_request("/new").respond_with_data("moved here", content_type="text/plain")
    text = await fetcher(allow_networks=LOOPBACK).execute({"url": httpserver.url_for("/old")}, CTX)
    assert text == "moved here"


async def test_too_many_redirects(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/loop").respond_with_data(
        "", status=302, headers={"Location": "/loop"}
    )
    with pytest.raises(ToolExecutionError, match="more than 2 redirects"):
        await fetcher(allow_networks=LOOPBACK, max_redirects=2).execute(
            {"url": httpserver.url_for("/loop")}, CTX
        )


async def test_a_slow_server_hits_the_deadline(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        import time

        time.sleep(1.5)
        return Response("late")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    with pytest.raises(ToolExecutionError, match=r"longer than 0\.5 s"):
        await fetcher(allow_networks=LOOPBACK, timeout=0.5).execute(
            {"url": httpserver.url_for("/slow")}, CTX
        )


async def test_a_1gb_response_is_cut_at_the_limit_with_memory_bounded(
    httpserver: HTTPServer,
) -> None:
    chunk = b"x" * 65536

    def endless() -> Iterator[bytes]:
        for _ in range(16384):  # 1 GiB, never held at once
            yield chunk

    httpserver.expect_request("/big").respond_with_response(
        Response(endless(), content_type="text/plain")
    )
    tracemalloc.start()
    try:
        text = await fetcher(allow_networks=LOOPBACK, max_bytes=1_000_000).execute(
            {"url": httpserver.url_for("/big"), "max_length": 64_000}, CTX
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert text.startswith("x" * 1000)
    assert text.endswith(
        "[Truncated — 64000 of 1000000 characters shown]\n"
        "[The page is larger than 1000000 bytes: only those were read]"
    )
    assert peak < 30_000_000, peak


# -- the SSRF guard ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fd12::1", "private"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("100.64.0.1", "non-public"),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("2002:a00:1::", "private"),  # 6to4 of 10.0.0.1
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


def test_allowed_networks_open_only_themselves() -> None:
    guard = AddressGuard([ipaddress.ip_network("127.0.0.0/8")])
    assert guard.refusal(ipaddress.ip_address("127.0.0.5")) is None
    assert guard.refusal(ipaddress.ip_address("10.0.0.1")) == "private"


async def test_loopback_is_refused_by_default(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/a").respond_with_data("secret admin page")
    with pytest.raises(ToolExecutionError, match=r"resolves to 127\.0\.0\.1, a loopback"):
        await fetcher().execute({"url": httpserver.url_for("/a")}, CTX)
    assert httpserver.log == []  # never connected


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://user:pw@example.com/", "user name or password"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("ftp://example.com/", "only http and https"),
        ("http://[::1]/", "::1, a loopback"),
        ("http://[fd00::1]:8080/", "fd00::1, a private"),
        ("http://2130706433/", "127.0.0.1, a loopback"),
        ("http://0x7f.1/", "127.0.0.1, a loopback"),
        ("http://localhost/", "a loopback"),
        ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("http://10.0.0.1/", "10.0.0.1, a private"),
    ],
)
async def test_the_guard_refuses(url: str, complaint: str) -> None:
    with pytest.raises((ToolInputError, ToolExecutionError), match=complaint):
        await fetcher().execute({"url": url}, CTX)


async def test_a_host_resolving_to_loopback_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async def resolve(host: str, port: int, **kw: Any) -> list[Any]:
        return [(2, 1, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(anyio, "getaddrinfo", resolve)
    with pytest.raises(ToolExecutionError, match=r"innocent\.example: it resolves to 127\.0\.0\.1"):
        await fetcher().execute({"url": "http://innocent.example/"}, CTX)


@pytest.mark.parametrize("target", ["http://10.0.0.7/", "http://169.254.169.254/", "http://[::1]/"])
async def test_a_redirect_to_a_private_address_is_refused(
    httpserver: HTTPServer, target: str
) -> None:
    httpserver.expect_request("/go").respond_with_data("", status=302, headers={"Location": target})
    # 127.0.0.1/32 only: the server itself is allowed, nothing else private is
    with pytest.raises(ToolExecutionError, match="refused to fetch"):
        await fetcher(allow_networks=["127.0.0.1/32"]).execute(
            {"url": httpserver.url_for("/go")}, CTX
        )


async def test_the_connection_goes_to_the_checked_address(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is resolved once, checked, and the request sent to that
    address with the name in the Host header; the client never resolves it again."""
    answers = iter(["127.0.0.1", "10.9.9.9"])

    async def resolve(host: str, port: int, **kw: Any) -> list[Any]:
        return [(2, 1, 6, "", (next(answers), port))]

    monkeypatch.setattr(anyio, "getaddrinfo", resolve)
    seen: list[str] = []

    def handler(request: Request) -> Response:
        seen.append(request.headers["Host"])
        return Response("pinned", content_type="text/plain")

    httpserver.expect_request("/p").respond_with_handler(handler)
    url = f"http://rebind.example:{httpserver.port}/p"
    text = await fetcher(allow_networks=LOOPBACK).execute({"url": url}, CTX)
    assert text == "pinned"
    assert seen == [f"rebind.example:{httpserver.port}"]
    assert next(answers) == "10.9.9.9"  # resolved exactly once


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[HTTPServer, str]]:
    """An HTTPS server on 127.0.0.1 whose certificate names only ``pinned.example``."""
    if shutil.which("openssl") is None:  # pragma: no cover - Debian images have it
        pytest.skip("needs the openssl command to make a certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *(
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1"),
            *("-subj", "/CN=pinned.example", "-addext", "subjectAltName=DNS:pinned.example"),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context)
    server.start()
    try:
        yield server, str(cert)
    finally:
        server.clear()
        server.stop()


async def test_https_to_the_checked_address_keeps_the_name_for_tls(
    tls_server: tuple[HTTPServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The request goes to 127.0.0.1, yet the certificate is checked for the URL's name
    (server name indication), and a certificate for another name is refused."""
    server, ca = tls_server

    async def resolve(host: str, port: int, **kw: Any) -> list[Any]:
        return [(2, 1, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(anyio, "getaddrinfo", resolve)
    server.expect_request("/s").respond_with_data("over tls", content_type="text/plain")
    tool = fetcher(allow_networks=LOOPBACK, ca_bundle=ca)
    url = f"https://pinned.example:{server.port}/s"
    assert await tool.execute({"url": url}, CTX) == "over tls"
    with pytest.raises(ToolExecutionError, match=r"(?i)fetch error: .*certificate"):
        await tool.execute({"url": f"https://other.example:{server.port}/s"}, CTX)
    with pytest.raises(ToolExecutionError, match=r"(?i)certificate"):  # untrusted by default
        await fetcher(allow_networks=LOOPBACK).execute({"url": url}, CTX)
