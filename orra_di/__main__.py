"""``python -m orra_di``: the ``orra-di`` command, for environments without its script."""

from orra_di.cli import main

main()
