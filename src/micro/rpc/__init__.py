"""The RPC layer: endpoints, the server that serves them, the client that calls them."""

from micro.rpc.client import Client, ClientStream
from micro.rpc.context import Call
from micro.rpc.endpoint import Endpoint, endpoints_of, idempotent
from micro.rpc.server import Server
from micro.rpc.types import ClientCall, ClientMiddleware, Handler, Observer, ServerMiddleware

__all__ = [
    "Call",
    "Client",
    "ClientCall",
    "ClientMiddleware",
    "ClientStream",
    "Endpoint",
    "Handler",
    "Observer",
    "Server",
    "ServerMiddleware",
    "endpoints_of",
    "idempotent",
]
