"""``micro server``: the platform's core blocks and the proxy, in one process."""

from micro.server.app import MicroServer, run_server, serve_block

__all__ = ["MicroServer", "run_server", "serve_block"]
