"""The store section of the settings (``session_ttl``, ``lease_seconds``) and the store
URL rules it shares with :func:`orra_di.stores.open_store`.

Every test runs in an empty temporary directory without ``ORRA_*`` variables.
"""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from orra_di import settings as settings_module
from orra_di.errors import ConfigurationError
from orra_di.namespace import Namespace
from orra_di.settings import StoreSettings, describe, load_settings
from orra_di.stores import (
    STORE_URL_FORMS,
    FileStore,
    InMemoryStore,
    SQLiteStore,
    open_store,
    split_store_url,
)


@pytest.fixture(autouse=True)
def workdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in list(os.environ):
        if name.upper().startswith("ORRA_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(settings_module, "DEFAULT_SECRETS_DIR", tmp_path / "no-run-secrets")
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- session_ttl and lease_seconds ---------------------------------------------------------


def test_defaults_keep_sessions_and_lease_for_30_seconds() -> None:
    store = load_settings().store
    assert store.session_ttl is None
    assert store.lease_seconds == 30.0


def test_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORRA_STORE__SESSION_TTL", "86400")
    monkeypatch.setenv("ORRA_STORE__LEASE_SECONDS", "2.5")
    settings = load_settings()
    assert settings.store.session_ttl == 86_400
    assert settings.store.lease_seconds == 2.5
    shown = {name: (value, source) for name, value, source in describe(settings)}
    assert shown["store.session_ttl"] == ("86400.0", "env ORRA_STORE__SESSION_TTL")
    assert shown["store.lease_seconds"] == ("2.5", "env ORRA_STORE__LEASE_SECONDS")


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        (
            "ORRA_STORE__SESSION_TTL",
            "0",
            'store.session_ttl (ORRA_STORE__SESSION_TTL) = "0", from env '
            "ORRA_STORE__SESSION_TTL: Input should be greater than 0; "
            "accepted: a number of seconds > 0, or unset to keep sessions",
        ),
        (
            "ORRA_STORE__SESSION_TTL",
            "a week",
            'store.session_ttl (ORRA_STORE__SESSION_TTL) = "a week", from env '
            "ORRA_STORE__SESSION_TTL: Input should be a valid number",
        ),
        (
            "ORRA_STORE__LEASE_SECONDS",
            "-1",
            'store.lease_seconds (ORRA_STORE__LEASE_SECONDS) = "-1", from env '
            "ORRA_STORE__LEASE_SECONDS: Input should be greater than 0; accepted: a number > 0",
        ),
    ],
)
def test_bad_values_are_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    assert problem in str(error.value)


def test_sqlite_durability_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().store.sqlite_synchronous == "normal"
    monkeypatch.setenv("ORRA_STORE__SQLITE_SYNCHRONOUS", "full")
    assert load_settings().store.sqlite_synchronous == "full"
    monkeypatch.setenv("ORRA_STORE__SQLITE_SYNCHRONOUS", "run")
    assert load_settings().store.sqlite_synchronous == "run"
    monkeypatch.setenv("ORRA_STORE__SQLITE_SYNCHRONOUS", "off")
    with pytest.raises(ConfigurationError) as error:
        load_settings()
    assert "store.sqlite_synchronous" in str(error.value)
    assert "'normal', 'full' or 'run'" in str(error.value)


def test_repr_shows_what_was_set_with_the_password_masked() -> None:
    store = StoreSettings(url="redis://:pw@cache:6379/0", session_ttl=60)
    assert repr(store) == "StoreSettings(url='redis://:***@cache:6379/0', session_ttl=60.0)"


# -- the URL rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme", "path"),
    [
        ("memory://", "memory", None),
        ("sqlite:///sessions.db", "sqlite", Path("sessions.db")),
        ("sqlite:///./data/s.db", "sqlite", Path("data/s.db")),
        ("sqlite:////var/lib/orra/s.db", "sqlite", Path("/var/lib/orra/s.db")),
        ("SQLite:////x.db", "sqlite", Path("/x.db")),
        ("file:///srv/sessions%20dir", "file", Path("/srv/sessions dir")),
        ("file://localhost/srv/s", "file", Path("/srv/s")),
        ("postgresql://app:pw@db/orra", "postgresql", None),
        ("redis://cache:6379/0", "redis", None),
        ("rediss://cache:6380/0", "rediss", None),
    ],
)
def test_store_urls(url: str, scheme: str, path: Path | None) -> None:
    assert split_store_url(url) == (scheme, path)
    settings = StoreSettings(url=url)
    assert (settings.scheme, settings.path) == (scheme, path)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("sessions.db", "not a URL"),
        ("mysql://db/orra", "unknown store scheme 'mysql'"),
        ("mongodb://db/orra", "unknown store scheme 'mongodb'"),
        ("sqlite://", "a SQLite URL needs a file after three slashes"),
        ("sqlite:///", "a SQLite URL needs a file after three slashes"),
        ("memory://here", "the in-memory store takes no path"),
        ("file://relative/dir", "a file store needs an absolute directory"),
    ],
)
def test_bad_urls_are_refused_alike_by_settings_and_open_store(url: str, reason: str) -> None:
    with pytest.raises(ConfigurationError) as from_settings:
        load_settings(store={"url": url})
    assert reason in str(from_settings.value)
    assert STORE_URL_FORMS in str(from_settings.value)
    with pytest.raises(ConfigurationError) as from_open:
        open_store(url)
    assert str(from_open.value) == f"invalid store URL: {reason}; accepted: {STORE_URL_FORMS}"


def test_a_bad_url_with_a_password_is_not_echoed() -> None:
    with pytest.raises(ConfigurationError) as error:
        open_store("mysql://app:hunter2@db/orra")
    assert "hunter2" not in str(error.value)


# -- open_store -------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_open_store_builds_the_embedded_stores(workdir: Path) -> None:
    assert isinstance(open_store("memory://"), InMemoryStore)
    relative = open_store("sqlite:///rel.db", lease_seconds=2.0, cache_sessions=3)
    assert isinstance(relative, SQLiteStore)
    await relative.list()  # opens (and so creates) the file
    await relative.aclose()
    assert (workdir / "rel.db").is_file()
    absolute = open_store(f"sqlite:///{workdir}/abs.db")
    assert isinstance(absolute, SQLiteStore)
    await absolute.aclose()
    files = open_store((workdir / "sessions dir").as_uri())
    assert isinstance(files, FileStore)
    assert files.path_for(Namespace("a")) == str(workdir / "sessions dir" / "a.jsonl")


def test_options_are_the_constructors(workdir: Path) -> None:
    with pytest.raises(ConfigurationError, match="lease_seconds must be positive"):
        open_store("sqlite:///x.db", lease_seconds=0)
    with pytest.raises(TypeError):
        open_store("memory://", lease_seconds=1)


class _Recorded:
    """Stands in for a server store class: remembers how it was built."""

    def __init__(self, url: str, **options: Any) -> None:
        self.url, self.options = url, options


@pytest.mark.parametrize(
    ("url", "module", "name"),
    [
        ("postgresql://app@db/orra", "orra_di.stores.postgres", "PostgresStore"),
        ("redis://cache/0", "orra_di.stores.redis", "RedisStore"),
        ("rediss://cache/0", "orra_di.stores.redis", "RedisStore"),
    ],
)
def test_server_stores_are_imported_when_opened(
    monkeypatch: pytest.MonkeyPatch, url: str, module: str, name: str
) -> None:
    fake = types.ModuleType(module)
    setattr(fake, name, _Recorded)
    monkeypatch.setitem(sys.modules, module, fake)
    store: Any = open_store(url, lease_seconds=5)
    assert isinstance(store, _Recorded)
    assert (store.url, store.options) == (url, {"lease_seconds": 5})


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        ("postgresql://app@db/orra", "orra_di.stores.postgres", "postgres"),
        ("redis://cache/0", "orra_di.stores.redis", "redis"),
    ],
)
def test_a_missing_driver_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, url: str, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what an absent package looks like
    with pytest.raises(ConfigurationError) as info:
        open_store(url)
    assert f'pip install "orra-di[{extra}]"' in str(info.value)
    assert f'pip install -e ".[{extra}]"' in str(info.value)  # from a checkout
