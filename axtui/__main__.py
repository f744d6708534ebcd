"""``python -m axtui`` runs the ``ax`` command."""

from axtui.cli import main

main()
