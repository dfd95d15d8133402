"""The bot's own data: the team's notes, and the tools that read and change them.

orra-di keeps the conversations; the notes are this application's, in a JSON file
(or in memory). ``delete_note`` is the dangerous tool: the bot's settings make every
call of it wait for a moderator's approval (see ``moderation.py``).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field

from orra_di import Tool, ToolContext, tool
from orra_di.errors import ToolInputError

__all__ = ["DANGEROUS", "Note", "Notes", "notes_tools"]

DANGEROUS = ["delete_note"]
"""The tools whose calls a moderator must approve."""


class Note(BaseModel):
    id: int
    text: str
    author: str
    """The Discord user id of whoever asked for the note (from the session's namespace)."""


class _Book(BaseModel):
    notes: list[Note] = Field(default_factory=list)
    next_id: int = 1


class Notes:
    """The notes, kept in ``path`` (JSON, replaced atomically) or in memory."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._book = _Book()
        if path is not None and path.exists():
            self._book = _Book.model_validate_json(path.read_text(encoding="utf-8"))

    def all(self) -> list[Note]:
        with self._lock:
            return list(self._book.notes)

    def add(self, text: str, author: str) -> Note:
        with self._lock:
            note = Note(id=self._book.next_id, text=text, author=author)
            self._book.notes.append(note)
            self._book.next_id += 1
            self._save()
            return note

    def delete(self, note_id: int) -> Note:
        with self._lock:
            for note in self._book.notes:
                if note.id == note_id:
                    self._book.notes.remove(note)
                    self._save()
                    return note
        known = ", ".join(f"#{n.id}" for n in self.all()) or "none"
        raise ToolInputError(f"there is no note #{note_id}; the notes are: {known}")

    def _save(self) -> None:
        if self.path is None:
            return
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps(self._book.model_dump(), indent=1), encoding="utf-8")
        os.replace(partial, self.path)


def _author(context: ToolContext) -> str:
    """The Discord user behind the session ``discord:<guild>:<channel>:<user>``."""
    return context.namespace.segments[-1]


def notes_tools(notes: Notes) -> list[Tool]:
    """``add_note``, ``list_notes`` and ``delete_note`` on ``notes``."""

    @tool
    def add_note(
        context: ToolContext, text: Annotated[str, Field(min_length=1, max_length=1000)]
    ) -> str:
        """Write a note in the team's notebook."""
        note = notes.add(text.strip(), _author(context))
        return f"Noted #{note.id}: {note.text}"

    @tool
    def list_notes() -> str:
        """List every note in the team's notebook, oldest first."""
        found = notes.all()
        if not found:
            return "(no notes)"
        return "\n".join(f"#{n.id} (<@{n.author}>): {n.text}" for n in found)

    @tool
    def delete_note(note_id: Annotated[int, Field(ge=1)]) -> str:
        """Delete a note for good. A moderator must approve each call."""
        note = notes.delete(note_id)
        return f"Deleted note #{note.id}: {note.text}"

    return [add_note, list_notes, delete_note]
