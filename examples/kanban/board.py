"""The application's own data: one kanban board per user, and the tools that change it.

orra-di keeps the conversations; the boards are this application's, kept in a JSON
file (or in memory). A tool never takes the board's owner from the model: it reads
the user from the session's namespace (``kanban:<role>:<user>``) through
:class:`~orra_di.ToolContext`, so alice's agent cannot touch bob's board whatever
the model asks for.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field

from orra_di import Tool, ToolContext, tool
from orra_di.errors import ToolInputError

__all__ = ["COLUMNS", "Board", "Boards", "Task", "kanban_tools"]

COLUMNS = ("backlog", "in-progress", "done")
STARTER_TASKS = ("Design login page", "Set up CI pipeline", "Write API docs")


class Task(BaseModel):
    id: int
    title: str
    column: str = "backlog"
    assignee: str | None = None


class Board(BaseModel):
    """One user's board: tasks in fixed columns, ids counted per board."""

    tasks: list[Task] = Field(default_factory=list)
    next_id: int = 1

    @classmethod
    def starter(cls) -> Board:
        """A new user's board, as orra's example starts: three tasks in the backlog."""
        board = cls()
        for title in STARTER_TASKS:
            board.add(title)
        return board

    def add(self, title: str, column: str = "backlog", assignee: str | None = None) -> Task:
        task = Task(id=self.next_id, title=title, column=_column(column), assignee=assignee)
        self.tasks.append(task)
        self.next_id += 1
        return task

    def find(self, task_id: int | None, task_title: str | None) -> Task:
        """By id, or by a case-insensitive piece of the title that names one task."""
        if task_id is not None:
            for task in self.tasks:
                if task.id == task_id:
                    return task
            raise ToolInputError(f"no task #{task_id} on this board")
        if not task_title:
            raise ToolInputError("give task_id or task_title")
        matches = [t for t in self.tasks if task_title.lower() in t.title.lower()]
        if len(matches) != 1:
            found = ", ".join(f"#{t.id} {t.title!r}" for t in matches) or "none"
            raise ToolInputError(f"{task_title!r} must name exactly one task (matches: {found})")
        return matches[0]

    def render(self, column: str | None = None) -> str:
        shown = [_column(column)] if column else list(COLUMNS)
        lines: list[str] = []
        for name in shown:
            lines.append(f"[{name}]")
            tasks = [t for t in self.tasks if t.column == name]
            for t in tasks:
                lines.append(
                    f"  #{t.id}: {t.title}" + (f" (assigned to {t.assignee})" if t.assignee else "")
                )
            if not tasks:
                lines.append("  (empty)")
        return "\n".join(lines)


def _column(name: str) -> str:
    column = name.strip().lower().replace(" ", "-")
    if column not in COLUMNS:
        raise ToolInputError(f"unknown column {name!r}; columns: {', '.join(COLUMNS)}")
    return column


class Boards:
    """Every user's board, in ``path`` (JSON) or, without a path, in memory.

    Tools run in worker threads, possibly several at once: a lock keeps each
    read-change-write whole, and the file is replaced atomically.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._memory: dict[str, Board] = {}

    def _load(self) -> dict[str, Board]:
        if self.path is None:
            return self._memory
        if not self.path.exists():
            return {}
        raw: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        return {user: Board.model_validate(board) for user, board in raw.items()}

    def _save(self, boards: dict[str, Board]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        data = {user: board.model_dump() for user, board in boards.items()}
        temporary.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(temporary, self.path)

    @contextmanager
    def editing(self, user: str) -> Iterator[Board]:
        """``user``'s board (a starter board the first time), saved when the block ends."""
        with self._lock:
            boards = self._load()
            board = boards.setdefault(user, Board.starter())
            yield board
            self._save(boards)

    def get(self, user: str) -> Board:
        with self._lock:
            return self._load().get(user) or Board.starter()


def owner(context: ToolContext) -> str:
    """The board's owner: the last segment of ``kanban:<role>:<user>``."""
    return context.namespace.segments[-1]


def kanban_tools(boards: Boards) -> list[Tool]:
    """orra's five kanban tools, on ``boards``."""

    @tool
    def list_columns(context: ToolContext) -> str:
        """List the board's columns and how many tasks each holds."""
        board = boards.get(owner(context))
        counts = {c: sum(t.column == c for t in board.tasks) for c in COLUMNS}
        return "\n".join(f"- {c} ({n} task{'' if n == 1 else 's'})" for c, n in counts.items())

    @tool
    def list_tasks(
        context: ToolContext,
        column: Annotated[str | None, Field(description="only this column")] = None,
    ) -> str:
        """List the tasks on the board, by column (all columns unless one is named)."""
        return boards.get(owner(context)).render(column)

    @tool
    def create_task(
        title: str,
        context: ToolContext,
        column: Annotated[str, Field(description="backlog, in-progress or done")] = "backlog",
        assignee: str | None = None,
    ) -> str:
        """Create a task on the board."""
        if not title.strip():
            raise ToolInputError("a task needs a title")
        with boards.editing(owner(context)) as board:
            task = board.add(title.strip(), column, assignee)
        return f"Created task #{task.id} '{task.title}' in '{task.column}'"

    @tool
    def move_task(
        to: Annotated[str, Field(description="the column to move to")],
        context: ToolContext,
        task_id: int | None = None,
        task_title: Annotated[str | None, Field(description="a piece of the title")] = None,
    ) -> str:
        """Move a task, named by id or by a piece of its title, to another column."""
        with boards.editing(owner(context)) as board:
            task = board.find(task_id, task_title)
            task.column = _column(to)
        return f"Moved task #{task.id} '{task.title}' to '{task.column}'"

    @tool
    def assign_task(
        assignee: str,
        context: ToolContext,
        task_id: int | None = None,
        task_title: Annotated[str | None, Field(description="a piece of the title")] = None,
    ) -> str:
        """Assign a task, named by id or by a piece of its title, to someone."""
        with boards.editing(owner(context)) as board:
            task = board.find(task_id, task_title)
            task.assignee = assignee
        return f"Assigned task #{task.id} '{task.title}' to {assignee}"

    return [list_columns, list_tasks, create_task, move_task, assign_task]
