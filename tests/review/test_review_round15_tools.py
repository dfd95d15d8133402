"""Round 15 review: docs/concepts/tools.md's naming rule, held exactly.

'The tool's name … must be what both vendors accept, 1 to 64 letters, digits, `_` and
`-`: anything else (a lambda's `<lambda>`, a space) is a ValueError at @tool, not a 400 at
the first run.' The patterns ended in ``$``, which ``re.match`` lets match before a
trailing newline, so ``"search\\n"`` passed; and an explicit ``name=""`` was replaced by
the function's name instead of being refused. The same ``$`` guarded MCP server names
and prefixes (which become tool names) and memory ids (which become file names).
"""

from __future__ import annotations

import pytest

from orra_di import ConfigurationError, tool
from orra_di.memory.model import MemoryEntry
from orra_di.memory.stores import check_memory_id
from orra_di.settings import load_settings


def lookup(query: str) -> str:
    """Look something up."""
    return query


@pytest.mark.parametrize("name", ["search\n", "", "a b", "x" * 65, "näme"])
def test_a_tool_name_vendors_refuse_is_a_value_error_at_tool(name: str) -> None:
    with pytest.raises(ValueError, match="the model vendors accept 1 to 64 letters, digits"):
        tool(name=name)(lookup)


def test_the_names_vendors_accept_are_taken() -> None:
    assert tool(name="x" * 64)(lookup).definition.name == "x" * 64
    assert tool(name="gh_search-2")(lookup).definition.name == "gh_search-2"
    assert tool(lookup).definition.name == "lookup"  # no name: the function's


@pytest.mark.parametrize("memory_id", ["abc\n", "", "a/b"])
def test_a_memory_id_with_a_newline_or_a_slash_is_refused(memory_id: str) -> None:
    assert not check_memory_id(memory_id)
    with pytest.raises(ValueError, match="is not a memory id"):
        MemoryEntry(id=memory_id, namespace="acme", content="x")


@pytest.mark.parametrize(
    ("servers", "says"),
    [
        ({"files\n": {"command": "true"}}, "server name"),
        ({"files": {"command": "true", "prefix": "fs_\n"}}, "a prefix is up to 32 letters"),
    ],
)
def test_an_mcp_server_name_or_prefix_with_a_newline_is_refused(
    servers: dict[str, object], says: str
) -> None:
    with pytest.raises(ConfigurationError, match=says):
        load_settings(mcp={"servers": servers})
