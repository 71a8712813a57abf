"""Issue 14, item 9: a message published through the gateway must not carry the
publisher's HTTP headers to every subscriber of the topic: no cookie, no credential,
nothing but tracing and the platform's ``micro-*`` keys (and the headers the publisher
put on the message itself)."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets

from tests._support import http

import micro.broker
from micro.testing import MicroServerProcess


async def test_a_subscriber_never_sees_the_publishers_cookies_or_token(
    micro_env: MicroServerProcess,
) -> None:
    server = micro_env
    token = server.micro("user", "token").stdout.strip()
    topic = f"orders-{secrets.token_hex(3)}"
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    headers = {
        "content-type": "application/json",
        "authorization": f"Bearer {token}",
        "cookie": f"session=s3cret; micro-token={token}",
        "proxy-authorization": "Basic dXNlcjpwYXNz",
        "x-api-key": "k3y",
        "traceparent": trace,
        "micro-caller-id": "forged",
    }
    body = {"topic": topic, "message": {"header": {"kind": "order"},
                                        "body": base64.b64encode(b"tea").decode()}}  # fmt: skip
    async with asyncio.timeout(30):
        async with micro.broker.subscribe(topic) as sub:
            status, _, answer = await asyncio.to_thread(
                http, "POST", f"{server.api}/broker/Broker/Publish", json.dumps(body), headers
            )
            assert status in (200, 204), answer
            message = await anext(aiter(sub))
    assert message.body == b"tea"
    header = {k.lower(): v for k, v in message.header.items()}
    assert header["kind"] == "order"
    # The caller's trace goes on, its parent now the gateway's span (issue 16).
    assert header["traceparent"].split("-")[1] == trace.split("-")[1]
    leaked = [k for k in header if k in headers and k not in ("traceparent",)]
    assert not leaked, header
    assert token not in json.dumps(header)
    assert "s3cret" not in json.dumps(header)
    assert not [k for k in header if k.startswith("micro-caller-")]
    assert "micro-remote-address" not in header
