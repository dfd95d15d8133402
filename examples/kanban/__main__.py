"""``python examples/kanban`` from the repository root (``python -m kanban`` from examples/)."""

import sys
from pathlib import Path

if not __package__:  # run as a directory: make the package importable by its name
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kanban.app import main

main()
