"""The documentation tells the truth: its code runs, and the site builds.

Every fenced ``python`` block of README.md and of the pages under docs/ is run,
page by page: the blocks of one page run in order in one namespace, as a reader
follows them ("continuing the example above"). The blocks assert what their
text claims, so a snippet that silently stopped doing what it says fails here.

Two HTML comments, on the line right before a block, change how it is run:

- ``<!-- not-run: why -->`` skips it (a fragment that cannot run alone; keep
  these few);
- ``<!-- needs: postgres -->`` or ``<!-- needs: redis -->`` runs it only when
  that server answers on loopback (under ``CI`` it must), like the store tests.

``mkdocs build --strict`` builds the site into a temporary directory, so a
broken cross-reference, a page missing from the navigation or an API entry
that no longer exists fails the suite.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from services import require_postgres, require_redis

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]

_FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)[^\n]*$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*(?P<kind>not-run|needs):\s*(?P<value>.*?)\s*-->\s*$")
_NEEDS = {"postgres": require_postgres, "redis": require_redis}
VENDOR_KEYS = {"ANTHROPIC_API_KEY", "OPENAI_API_KEY"}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the opening fence
    code: str
    skip: str | None  # the not-run reason
    needs: tuple[str, ...]


def blocks(page: Path) -> list[Block]:
    """The fenced python blocks of ``page`` with the directive right before each."""
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, lang, start = fence["indent"], fence["lang"], i
        body: list[str] = []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent) :])
            i += 1
        i += 1
        if lang not in ("python", "py"):
            continue
        skip, needs = None, ()
        before = lines[start - 1] if start > 0 else ""
        directive = _DIRECTIVE.match(before)
        if directive and directive["kind"] == "not-run":
            skip = directive["value"] or "fragment"
        elif directive:
            needs = tuple(n.strip() for n in directive["value"].split(","))
        found.append(Block(page, start + 1, "\n".join(body) + "\n", skip, needs))
    return found


def test_the_extractor_finds_blocks_and_directives(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "text\n```python\nx = 1\n```\n<!-- not-run: fragment -->\n```python\ny\n```\n"
        "```sh\nls\n```\n<!-- needs: redis -->\n```python\nz = 2\n```\n",
        encoding="utf-8",
    )
    found = blocks(page)
    assert [(b.line, b.code, b.skip, b.needs) for b in found] == [
        (2, "x = 1\n", None, ()),
        (6, "y\n", "fragment", ()),
        (13, "z = 2\n", None, ("redis",)),
    ]


def test_every_page_with_code_is_covered() -> None:
    """The README's snippets are found (a change of fence style would skip them silently)."""
    readme = blocks(ROOT / "README.md")
    assert len([b for b in readme if b.skip is None]) >= 4
    assert ROOT / "README.md" in WITH_CODE and len(WITH_CODE) >= 9
    skipped = [b for page in PAGES for b in blocks(page) if b.skip]
    ran = [b for page in PAGES for b in blocks(page) if not b.skip]
    assert len(skipped) <= len(ran) // 4, "keep not-run fragments few: " + ", ".join(
        f"{b.page.name}:{b.line}" for b in skipped
    )


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A reader's clean machine: no ORRA_* or vendor key, no orra.toml, files in tmp_path."""
    for name in list(os.environ):
        if name.upper().startswith("ORRA_") or name.upper() in VENDOR_KEYS:
            monkeypatch.delenv(name)
    no_secrets = tmp_path / "no-secrets"
    no_secrets.mkdir()
    monkeypatch.setenv("ORRA_SECRETS_DIR", str(no_secrets))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


WITH_CODE = [page for page in PAGES if any(b.skip is None for b in blocks(page))]


@pytest.mark.parametrize("page", WITH_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_pages_python_blocks_run(page: Path, isolated: Path) -> None:
    page_blocks = blocks(page)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    environ = dict(os.environ)  # a page may set ORRA_* variables, as a deployment would
    try:
        run_blocks(page, page_blocks, namespace)
    finally:
        os.environ.clear()
        os.environ.update(environ)


def run_blocks(page: Path, page_blocks: list[Block], namespace: dict[str, object]) -> None:
    for block in page_blocks:
        if block.skip is not None:
            continue
        for need in block.needs:
            _NEEDS[need]()
        where = f"{page.relative_to(ROOT)}:{block.line}"
        compiled = compile(block.code, where, "exec")
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compiled, namespace)
        except BaseException as exc:
            raise AssertionError(
                f"the python block at {where} failed: {type(exc).__name__}: {exc}\n"
                f"its output:\n{out.getvalue()}"
            ) from exc


def test_mkdocs_builds_the_site_strictly(tmp_path: Path) -> None:
    """A broken link, a page outside the nav or a stale API reference fails the build."""
    try:
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError as exc:
        reason = f"mkdocs is not installed ({exc}); pip install -e '.[dev]'"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so the docs must build: {reason}")
        pytest.skip(reason)
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    settings = (site / "reference" / "settings" / "index.html").read_text(encoding="utf-8")
    missing = [v for v in environment_variables() if v not in settings]
    assert not missing, f"the settings reference lacks {missing}"
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert "run_streaming" in api


def environment_variables() -> list[str]:
    """Every ``ORRA_*`` variable OrraSettings reads, from the model itself."""
    from pydantic import BaseModel

    from orra_di.settings import ENV_PREFIX, OrraSettings

    names = []
    for name, field in OrraSettings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            names += [f"{ENV_PREFIX}{name}__{sub}".upper() for sub in section.model_fields]
        else:
            names.append(f"{ENV_PREFIX}{name}".upper())
    assert len(names) > 20
    return names
