"""RPC benchmark: our framework vs raw uvloop echo, grpcio asyncio and Nameko."""
