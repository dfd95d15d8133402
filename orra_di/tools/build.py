"""The built-in tools the ``tools`` settings switch on, built for the container.

Each tool's module (and its SDK) is imported only when that tool is enabled.
"""

from __future__ import annotations

from orra_di.tool import Tool
from orra_di.tools.basic import BUILTIN_TOOLS
from orra_di.tools.settings import ToolsSettings

__all__ = ["approval_required", "settings_tools"]


def settings_tools(settings: ToolsSettings) -> list[Tool]:
    """The enabled built-in tools, in the order of :class:`ToolsSettings`' fields."""
    tools: list[Tool] = []
    for name in settings.enabled():
        if name in BUILTIN_TOOLS:
            tools.append(BUILTIN_TOOLS[name])
        elif name == "exec":
            from orra_di.tools.exec import exec_tool

            tools.append(exec_tool(settings.exec))
        elif name == "web_fetch":
            from orra_di.tools.web import web_fetch_tool

            tools.append(web_fetch_tool(settings.web_fetch))
        elif name == "read_url":
            from orra_di.tools.web import read_url_tool

            tools.append(read_url_tool(settings.read_url))
        elif name == "web_search":
            from orra_di.tools.search import web_search_tool

            tools.append(web_search_tool(settings.web_search))
        elif name == "generate_image":
            from orra_di.tools.images import generate_image_tool

            tools.append(generate_image_tool(settings.generate_image))
        elif name == "github":
            from orra_di.tools.github import github_tools

            tools.extend(github_tools(settings.github))
        elif name == "claude_code":
            from orra_di.tools.claude_code import claude_code_tools

            tools.extend(claude_code_tools(settings.claude_code))
    return tools


def approval_required(settings: ToolsSettings) -> list[str]:
    """Tools whose calls need approval whenever approvals are on, whatever ``approval.tools``
    says (``exec`` unless ``tools.exec.require_approval`` is off)."""
    return ["exec"] if settings.exec.enabled and settings.exec.require_approval else []
