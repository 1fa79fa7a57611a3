"""``python -m boom_tasks.bridge``: same as ``boom-bridge``."""

from boom_tasks.bridge.cli import main

main()
