"""One masking of URL passwords and keys for settings, stores and adapters."""

from __future__ import annotations

import pytest

from orra_di.errors import ConfigurationError
from orra_di.redaction import check_password_parsed, mask_url, redact, written_password


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("postgresql://app:pw@db/orra", "postgresql://app:***@db/orra"),
        ("postgresql://app:p@ss/w@db/orra", "postgresql://app:***@db/orra"),
        (
            "redis://orra:s3cr%40t@127.0.0.1:1/15?password=s3cr@t",
            "redis://orra:***@127.0.0.1:1/15?password=***",
        ),
        ("http://h/v1?api_key=abc&model=x", "http://h/v1?api_key=***&model=x"),
        ("see redis://:pw@host:1/0 and http://h/p", "see redis://:***@host:1/0 and http://h/p"),
        ("http://user@host/path", "http://user@host/path"),
    ],
)
def test_mask_url(text: str, masked: str) -> None:
    assert mask_url(text) == masked


def test_redact_replaces_long_secrets_only() -> None:
    text = "invalid x-api-key sk-ant-0123456789 for id abc"
    assert redact(text, ["sk-ant-0123456789", "abc", None]) == "invalid x-api-key *** for id abc"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("http://h/v1?Password=Hunter22&x=1", "http://h/v1?Password=***&x=1"),
        ("http://h/v1?API_KEY=abc123&x=1", "http://h/v1?API_KEY=***&x=1"),
        ("http://h/v1?x=1&Access-Token=t0k3n", "http://h/v1?x=1&Access-Token=***"),
        ("redis://:pa?ss@127.0.0.1:1/0", "redis://:***@127.0.0.1:1/0"),
        ("redis://:pa#ss@h:1/0 and more", "redis://:***@h:1/0 and more"),
        ("postgresql://u:a:b@h/db", "postgresql://u:***@h/db"),
        ("postgresql://u:50%zz@h/db", "postgresql://u:***@h/db"),
    ],
)
def test_mask_url_edges(text: str, masked: str) -> None:
    """Upper-case query keys, and passwords with characters a URL parser stops at."""
    assert mask_url(text) == masked


def test_mask_url_masks_a_password_the_driver_parsed() -> None:
    """What a driver took for the password is masked where it stands, even unusual ones."""
    parsed = "p?s#w"
    assert mask_url("x postgresql://u:p?s#w@h/db", [parsed]) == "x postgresql://u:***@h/db"
    assert mask_url("postgresql://u:p%3Fs%23w@h/db", [parsed]) == "postgresql://u:***@h/db"


def test_an_eight_character_secret_is_replaced_and_a_seven_character_one_is_not() -> None:
    text = "key 12345678 then 1234567 then 12345678"
    assert redact(text, ["12345678"]) == "key *** then 1234567 then ***"
    assert redact(text, ["1234567"]) == text


@pytest.mark.parametrize(
    ("url", "written"),
    [
        ("postgresql://u:pa/ss@h/db", "pa/ss"),
        ("postgresql://u:p@ss@h/db?x=a", "p@ss"),
        ("redis://:pa?ss@h:1/0", "pa?ss"),
        ("redis://h:6379/0", None),
        ("redis://u@h:6379/0", None),
    ],
)
def test_written_password(url: str, written: str | None) -> None:
    assert written_password(url) == written


def test_a_password_the_driver_cut_elsewhere_is_refused_without_showing_it() -> None:
    check_password_parsed("postgresql://u:p%2Fss@h/db", "p/ss", what="PostgreSQL")
    check_password_parsed("redis://h/0?password=x/y", "x/y", what="Redis")
    with pytest.raises(ConfigurationError, match="percent-encode the password") as caught:
        check_password_parsed("postgresql://u:Zq9k/Wx7@h/db", None, what="PostgreSQL")
    assert "Zq9k" not in str(caught.value) and "Wx7" not in str(caught.value)
    with pytest.raises(ConfigurationError, match="postgresql://u:\\*\\*\\*@h/db"):
        check_password_parsed("postgresql://u:Zq9k@Wx7@h/db", "Zq9k", what="PostgreSQL")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:Zq9k%2FWx7-4242@127.0.0.1:1/db",
        "postgresql://app:Zq9k:Wx7-4242@127.0.0.1:1/db",
        "postgresql://app:Zq9k?Wx7-4242@127.0.0.1:1/db",
        "postgresql://app@127.0.0.1:1/db?password=Zq9k-Wx7-4242",
        "host=127.0.0.1 port=1 password=Zq9k-Wx7-4242",
        "redis://app:Zq9k%2FWx7-4242@127.0.0.1:1/0",
        "redis://app:Zq9k@Wx7-4242@127.0.0.1:1/0",
        "redis://app:Zq9k:Wx7%4242@127.0.0.1:1/0",
    ],
)
def test_store_reprs_never_show_the_password(url: str) -> None:
    pytest.importorskip("psycopg" if not url.startswith("redis") else "redis")
    from orra_di.stores.postgres import PostgresStore
    from orra_di.stores.redis import RedisStore

    store = RedisStore(url) if url.startswith("redis") else PostgresStore(url)
    assert "127.0.0.1" in repr(store)
    assert "Zq9k" not in repr(store) and "Wx7" not in repr(store), repr(store)


def test_a_parsed_password_is_masked_percent_encoded_in_text_without_a_scheme() -> None:
    # A driver's error quotes the userinfo without the URL's scheme: only the parsed
    # password, in its percent-encoded form ('/' as %2F too), can find it there.
    assert (
        mask_url("could not connect as app:Zq9k%2FWx7%3F42@db.internal", ["Zq9k/Wx7?42"])
        == "could not connect as app:***@db.internal"
    )


def test_a_password_without_a_cutting_character_passes_when_the_driver_parsed_nothing() -> None:
    # Some drivers give no parsed password back: only '/', '?' or '#' in it is refused then.
    check_password_parsed("postgresql://u:pXw-42@h/db", None, what="PostgreSQL")
    check_password_parsed("redis://u:Zq9k-X@h/0", None, what="Redis")
