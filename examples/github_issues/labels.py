"""``add_labels``: the one call triage needs that orra-di's GitHub tools do not have.

orra's six GitHub tools (and orra-di's nine) read, create, comment on and close
issues, but cannot label one. This tool adds labels through the same client as
the built-in tools (``orra_di.tools.github.GitHub``: gidgethub, the token from the
settings, failures as tool errors the model reads).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from orra_di import Tool, tool
from orra_di.tools.github import GitHub
from orra_di.tools.settings import GitHubSettings

__all__ = ["labels_tool"]


def labels_tool(settings: GitHubSettings) -> Tool:
    hub = GitHub(settings)

    @tool
    async def add_labels(
        number: Annotated[int, Field(ge=1, description="The issue number")],
        labels: Annotated[list[str], Field(min_length=1, max_length=10)],
    ) -> str:
        """Add labels to an issue (labels it already has are kept)."""
        now = await hub.call("post", f"{hub.repo_path}/issues/{number}/labels", {"labels": labels})
        names = ", ".join(str(label.get("name", "")) for label in now)
        return f"Labelled issue #{number}: {names}."

    return add_labels
