"""``web_fetch`` and ``read_url``: HTTP(S) pages as text, behind an SSRF guard.

The model chooses the URL, so the server must not become its way into the
private network. Every hop (the URL and each redirect, followed here by hand)
is checked by :class:`AddressGuard`: only ``http``/``https``, no credentials in
the URL, and every address the host resolves to must be public — loopback,
private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local (169.254/16 with the
cloud metadata address, fe80::/10), multicast, reserved and unspecified
addresses are refused unless ``allow_networks`` lets them through. The request
then goes to the address that was checked (the URL's host replaced by it, the
``Host`` header and TLS server name kept), so a DNS answer that changes between
the check and the connection (rebinding) cannot redirect it.

The body is streamed and cut at ``max_bytes`` (memory stays bounded whatever the
server sends); the whole fetch has one deadline; only the content types of
``content_types`` are read. ``web_fetch`` turns HTML into text with a real HTML
parser (the standard library's: entities decoded once, script/style/template
content dropped, block elements on their own lines; orra's hand scanner lost
text after ``</script>`` and double-decoded ``&amp;lt;``, spec §5.6/27).
``read_url`` extracts the main text and title with trafilatura (orra's
"readability" only removed scripts and styles, bug 28). Both cut their output on
characters (bug 26). Needs ``pip install "orra-di[web]"``.
"""

# No ``from __future__ import annotations``: the tools' parameters are annotated with
# values known only when the tool is built, which postponed annotations could not see.

import functools
import ipaddress
import re
import socket
import ssl
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import anyio.to_thread
from pydantic import Field

from orra_di.errors import ConfigurationError, ToolExecutionError, ToolInputError, install_hint
from orra_di.tool import FunctionTool, tool
from orra_di.tools._text import clean, decode, truncate
from orra_di.tools.settings import WebSettings

if TYPE_CHECKING:
    import httpx

__all__ = [
    "AddressGuard",
    "Page",
    "address_kind",
    "extract_title",
    "fetch",
    "html_to_text",
    "read_url_tool",
    "readable",
    "web_fetch_tool",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


def _httpx() -> Any:
    try:
        import httpx
    except ImportError as exc:
        raise ConfigurationError(f"the web tools need httpx: {install_hint('web')}") from exc
    return httpx


def address_kind(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address (``"loopback"``, ``"private"``...), or ``None``."""
    if isinstance(ip, ipaddress.IPv6Address):  # an IPv4 address carried in an IPv6 one
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif ip in _NAT64:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _METADATA:
        return "cloud metadata"
    for kind in ("loopback", "link_local", "multicast", "unspecified", "private", "reserved"):
        if getattr(ip, f"is_{kind}"):
            return kind.replace("_", "-")
    if not ip.is_global:
        return "non-public"
    return None


class AddressGuard:
    """Checks a URL before each connection; see the module docstring."""

    def __init__(
        self,
        allow_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = (),  # type: ignore[assignment]
    ) -> None:
        self.allow_networks = list(allow_networks)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why a connection to ``ip`` is refused, or ``None`` when it may go ahead."""
        if any(ip in network for network in self.allow_networks):
            return None
        return address_kind(ip)

    async def check(self, url: "httpx.URL") -> str:
        """The address to connect to for ``url``; :class:`ToolExecutionError` if refused."""
        if url.scheme not in ("http", "https"):
            raise ToolInputError(f"only http and https URLs can be fetched, not {url.scheme!r}")
        if url.userinfo:
            raise ToolInputError("URLs with a user name or password are refused")
        host = url.host
        if not host:
            raise ToolInputError(f"the URL {url} has no host")
        try:
            addresses: list[IPAddress] = [ipaddress.ip_address(host)]
        except ValueError:
            port = url.port or (443 if url.scheme == "https" else 80)
            try:
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise ToolExecutionError(f"cannot resolve {host}: {exc}") from None
            addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
        for ip in addresses:
            kind = self.refusal(ip)
            if kind is not None:
                raise ToolExecutionError(
                    f"refused to fetch {url.scheme}://{host}: it resolves to {ip}, a {kind} "
                    "address (the server's own network is off limits unless its settings "
                    "allow it: allow_networks)"
                )
        return str(addresses[0])


@dataclass(frozen=True)
class Page:
    """A fetched response: the final URL, its media type and charset, and the body (at most
    ``max_bytes``; ``cut`` when there was more)."""

    url: str
    content_type: str
    charset: str | None
    body: bytes
    cut: bool

    @property
    def text(self) -> str:
        charset = self.charset
        if charset is None and self.is_html:  # <meta charset=...> near the top
            found = _META_CHARSET.search(self.body[:2048])
            charset = found.group(1).decode("ascii") if found else None
        return clean(decode(self.body, charset))

    @property
    def is_html(self) -> bool:
        return self.content_type in ("text/html", "application/xhtml+xml")


@functools.cache
def _tls(ca_bundle: str | None) -> ssl.SSLContext:
    """The TLS context for ``ca_bundle`` (built once: it takes tens of milliseconds)."""
    if ca_bundle is None:
        try:
            import certifi

            ca_bundle = certifi.where()
        except ImportError:  # pragma: no cover - httpx depends on certifi
            return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot read the CA bundle {ca_bundle}: {exc}") from None


def _accepted(content_type: str, accepted: list[str]) -> bool:
    return any(
        content_type.startswith(a) if a.endswith("/") else content_type == a for a in accepted
    )


async def fetch(url: str, settings: WebSettings) -> Page:
    """GET ``url`` under ``settings``' guard and limits."""
    httpx = _httpx()
    guard = AddressGuard(settings.networks())
    try:
        current = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise ToolInputError(f"not a URL: {exc}") from None
    try:
        with anyio.fail_after(settings.timeout):
            async with httpx.AsyncClient(
                follow_redirects=False,
                trust_env=False,
                timeout=settings.timeout,
                verify=_tls(settings.ca_bundle),
            ) as client:
                for _ in range(settings.max_redirects + 1):
                    page = await _hop(client, guard, current, settings)
                    if isinstance(page, Page):
                        return page
                    current = page
    except TimeoutError:
        raise ToolExecutionError(
            f"fetching {url} took longer than {settings.timeout:g} s"
        ) from None
    except httpx.HTTPError as exc:
        raise ToolExecutionError(f"fetch error: {exc}") from None
    raise ToolExecutionError(f"more than {settings.max_redirects} redirects from {url}")


async def _hop(
    client: "httpx.AsyncClient", guard: AddressGuard, url: "httpx.URL", settings: WebSettings
) -> "Page | httpx.URL":
    """One request: a :class:`Page`, or the URL a redirect points to."""
    address = await guard.check(url)
    extensions = {}
    if url.scheme == "https" and url.host != address:
        extensions["sni_hostname"] = url.host  # certificate checked for the name, not the IP
    request = client.build_request(
        "GET",
        url.copy_with(host=address),
        headers={
            "Host": url.netloc.decode("ascii"),
            "User-Agent": settings.user_agent,
            "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5",
            "Accept-Encoding": "identity",  # no decompression bomb; the cut is on real bytes
        },
        extensions=extensions,
    )
    response = await client.send(request, stream=True)
    try:
        if response.is_redirect and "location" in response.headers:
            return url.join(response.headers["location"])
        if not response.is_success:
            raise ToolExecutionError(
                f"HTTP {response.status_code}: {response.reason_phrase or 'error'} for {url}"
            )
        header = response.headers.get("content-type", "text/plain")
        content_type = header.split(";")[0].strip().lower()
        if not _accepted(content_type, settings.content_types):
            raise ToolExecutionError(f"unsupported content type: {content_type}")
        chunks: list[bytes] = []
        kept, cut = 0, False
        async for chunk in response.aiter_bytes():
            room = settings.max_bytes - kept
            if len(chunk) >= room:
                chunks.append(chunk[:room])
                kept += room
                cut = len(chunk) > room
                if cut:
                    break  # the rest is never downloaded
                continue
            chunks.append(chunk)
            kept += len(chunk)
        return Page(str(url), content_type, response.charset_encoding, b"".join(chunks), cut)
    finally:
        await response.aclose()


# -- HTML to text ----------------------------------------------------------------

_SPACES = re.compile(r"\s+")
_SKIP = frozenset({"script", "style", "noscript", "template", "svg", "title", "head", "iframe"})
_BLOCK_TAGS = (
    "p div br li ul ol h1 h2 h3 h4 h5 h6 tr table section article header footer nav pre "
    "blockquote hr dd dt dl form main aside figure figcaption address details summary"
)
_BLOCK = frozenset(_BLOCK_TAGS.split())


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping: list[str] = []
        self.title: list[str] | None = None
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title" and self.title is None:
            self.title = []
        if tag == "pre":
            self.pre += 1
        if tag in _SKIP:
            self.skipping.append(tag)
        elif tag in _BLOCK:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in _SKIP:
            if tag in self.skipping:  # close it (and anything left open inside it)
                del self.skipping[self.skipping.index(tag) :]
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skipping and self.skipping[-1] == "title" and self.title is not None:
            self.title.append(data)
        if not self.skipping:
            # whitespace in HTML text is one space, except in <pre>
            self.parts.append(data if self.pre else _SPACES.sub(" ", data))


def _parse(html: str) -> _Text:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser


def _tidy(text: str) -> str:
    lines = (" ".join(line.split()) for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


def html_to_text(html: str) -> str:
    """The visible text of ``html``: one line per block (no blank lines), whitespace
    collapsed, entities decoded."""
    return _tidy("".join(_parse(html).parts))


def extract_title(html: str) -> str | None:
    """The text of the first ``<title>``, or ``None`` when missing or blank."""
    parts = _parse(html).title
    title = " ".join("".join(parts or ()).split())
    return title or None


def readable(html: str, url: str | None = None) -> tuple[str | None, str]:
    """The title and main text of an article page (trafilatura); the whole page's text
    when trafilatura finds no main content."""
    try:
        import trafilatura
    except ImportError as exc:
        raise ConfigurationError(f"read_url needs trafilatura: {install_hint('web')}") from exc
    document = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=False, include_tables=True
    )
    title = extract_title(html)
    text = ""
    if document is not None:
        text = (getattr(document, "text", None) or "").strip()
        title = getattr(document, "title", None) or title
    return title, text or html_to_text(html)


def _url_field() -> Any:
    return Field(description="The http or https URL to read")


def web_fetch_tool(settings: WebSettings) -> FunctionTool:
    """The ``web_fetch`` tool configured by ``settings`` (``tools.web_fetch``)."""
    _httpx()

    @tool(
        name="web_fetch",
        description="Fetch the content of a web page URL and return it as readable text. "
        "Use this when you need to read the contents of a specific web page.",
    )
    async def web_fetch(
        url: Annotated[str, _url_field()],
        max_length: Annotated[
            int | None,
            Field(description=f"Characters to return (default: {settings.max_chars})", gt=0),
        ] = None,
    ) -> str:
        page = await fetch(url, settings)
        text = page.text
        if page.is_html:
            text = await anyio.to_thread.run_sync(html_to_text, text)
        limit = min(max_length or settings.max_chars, settings.max_chars * 4)
        text = truncate(text, limit, "\n\n[Truncated — {shown} of {total} characters shown]")
        if page.cut:
            text += f"\n[The page is larger than {settings.max_bytes} bytes: only those were read]"
        return text

    return web_fetch


def read_url_tool(settings: WebSettings) -> FunctionTool:
    """The ``read_url`` tool configured by ``settings`` (``tools.read_url``)."""
    _httpx()

    @tool(
        name="read_url",
        description="Fetch a web page and extract its readable text content. Strips "
        "navigation, scripts, and other non-content elements to return just the main "
        "article text.",
    )
    async def read_url(url: Annotated[str, _url_field()]) -> str:
        page = await fetch(url, settings)
        if page.is_html:
            title, text = await anyio.to_thread.run_sync(readable, page.text, page.url)
        else:
            title, text = None, page.text
        head = (f"Title: {title}\n" if title else "") + f"URL: {page.url}\n\n"
        return head + truncate(text, settings.max_chars, "\n\n[Content truncated]")

    return read_url
