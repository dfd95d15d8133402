"""How an MCP result becomes the text an agent reads (no server needed: SDK result
models built directly, as the client receives them)."""

from __future__ import annotations

from mcp.types import CallToolResult, TextContent

from orra_di.mcp.tool import render_result


def test_lone_surrogates_become_replacement_characters() -> None:
    result = CallToolResult(content=[TextContent(type="text", text="ok \udcff end")])
    text = render_result(result)
    assert text == "ok \ufffd end"
    text.encode("utf-8")  # valid UTF-8 now


def test_structured_content_alone_is_shown_as_json() -> None:
    result = CallToolResult(content=[], structured_content={"temperature": 21, "unit": "°C"})
    assert render_result(result) == '{"temperature": 21, "unit": "°C"}'


def test_several_text_blocks_are_joined_by_lines() -> None:
    blocks = [TextContent(type="text", text="one"), TextContent(type="text", text="two")]
    assert render_result(CallToolResult(content=blocks)) == "one\ntwo"
