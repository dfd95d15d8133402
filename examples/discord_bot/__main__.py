"""``python examples/discord_bot`` (``python -m discord_bot`` in examples)."""

import sys
from pathlib import Path

if not __package__:  # run as a directory: make the package importable by its name
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from discord_bot.app import main

main()
