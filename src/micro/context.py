"""What a handler can know about the call it serves (re-exported from :mod:`micro.rpc.context`)."""

from micro.rpc.context import Call, caller, current, deadline_left, metadata, namespace

__all__ = ["Call", "caller", "current", "deadline_left", "metadata", "namespace"]
