"""The ``micro`` command."""
