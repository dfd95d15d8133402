"""One masking of URL passwords and keys for settings, stores and adapters."""

from __future__ import annotations

import pytest

from orra_di.redaction import mask_url, redact


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
