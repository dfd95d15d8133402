"""orra's kanban assistant on orra-di: an agent that manages a board through app tools.

See README.md beside this file; ``python examples/kanban`` runs it.
"""
