"""``python examples/github_issues`` (``python -m github_issues`` in examples)."""

import sys
from pathlib import Path

if not __package__:  # run as a directory: make the package importable by its name
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from github_issues.app import main

main()
