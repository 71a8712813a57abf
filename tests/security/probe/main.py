"""A tenant's service that does whatever its caller asks: the attacker's own code.

``Probe.Run`` executes the Python it is sent inside the service process (as a tenant's
handler could) and answers what it left in ``result``, or the exception it raised;
``Probe.Metadata`` answers the metadata the platform handed the call. The security tests
run it through the runtime as a tenant admin and try, from inside, to reach what is not
the tenant's.
"""

from __future__ import annotations

import traceback
from typing import Any

import msgspec

import micro
from micro import context


class Code(msgspec.Struct):
    code: str


class Outcome(msgspec.Struct):
    result: Any = None
    error: str = ""


class Empty(msgspec.Struct):
    pass


class Seen(msgspec.Struct):
    metadata: dict[str, str]


class Probe:
    async def run(self, req: Code) -> Outcome:
        """Run ``req.code`` as the body of an async function; ``result`` is answered."""
        scope: dict[str, Any] = {"micro": micro, "context": context}
        source = (
            "async def __probe__():\n"
            + "".join(f"    {line}\n" for line in req.code.splitlines())
            + "    return locals().get('result')\n"
        )
        try:
            exec(source, scope)  # running the caller's code is what this service is for
            return Outcome(result=await scope["__probe__"]())
        except Exception as exc:
            return Outcome(error=f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=2)}")

    async def metadata(self, req: Empty) -> Seen:
        """The metadata this call arrived with."""
        return Seen(dict(context.metadata()))


service = micro.Service("probe")
service.handle(Probe())
service.run()
