"""``python -m micro`` is the ``micro`` command."""

from micro.cli.main import main

main()
