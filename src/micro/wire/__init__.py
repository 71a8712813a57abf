"""The native wire: framed, multiplexed streams over TCP, Unix sockets and TLS."""

from micro.wire.connection import Connection, Dispatcher
from micro.wire.frames import Frame, FrameDecoder, ProtocolError, RequestHeader
from micro.wire.pool import Pool
from micro.wire.stream import Stream
from micro.wire.transport import Address, connect, listen, parse_address

__all__ = [
    "Address",
    "Connection",
    "Dispatcher",
    "Frame",
    "FrameDecoder",
    "Pool",
    "ProtocolError",
    "RequestHeader",
    "Stream",
    "connect",
    "listen",
    "parse_address",
]
