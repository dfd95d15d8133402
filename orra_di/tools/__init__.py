"""Built-in tools any agent may be given (``tools`` in settings)."""

from orra_di.tools.basic import BUILTIN_TOOLS, builtin_tools, calculate, current_time

__all__ = ["BUILTIN_TOOLS", "builtin_tools", "calculate", "current_time"]
