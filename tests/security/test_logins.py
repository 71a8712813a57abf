"""Issue 14, item 18: nobody can lock an account out, nor learn that it exists.

Before, five wrong passwords from anywhere locked an account for everyone, and an unknown
account answered in 1 ms where a known one took 130 ms (and said "Account not found").
Now wrong secrets are throttled per account *and client address* (the address the server
saw, which no caller can claim: ``micro-remote-address`` is the server's to write), and an
unknown account costs a hash check like a known one and gets the same answer.
"""

from __future__ import annotations

import asyncio
import json

from tests.security._tenant import Tenant

from micro import errors
from micro.codec import JSON
from micro.wire.connection import Connection
from micro.wire.frames import RequestHeader
from micro.wire.transport import parse_address


async def login_from(source: str, proxy: str, namespace: str, id: str, secret: str) -> str:
    """Log in over a connection made from ``source`` (an address of this host): the
    error's detail, or ``ok``; the metadata claims to come from 127.0.0.1 regardless."""
    where = parse_address(proxy)
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(
        Connection, where.host, where.port, local_addr=(source, 0)
    )
    metadata = {"micro-namespace": namespace, "micro-remote-address": "127.0.0.1:1"}
    body = json.dumps({"id": id, "secret": secret}).encode()
    try:
        await conn.unary(RequestHeader("auth", "Auth.Token", JSON, 10_000, metadata), body, 10)
    except errors.MicroError as exc:
        return f"{exc.code} {exc.detail}"
    finally:
        conn.close()
    return "ok"


def test_guessing_from_one_address_does_not_lock_the_owner_out(tenant: Tenant) -> None:
    async def attack() -> list[str]:
        proxy, ns = tenant.server.proxy, tenant.namespace
        said = [await login_from("127.0.0.2", proxy, ns, tenant.admin, "guess") for _ in range(6)]
        said.append(await login_from("127.0.0.2", proxy, ns, tenant.admin, tenant.password))
        said.append(await login_from("127.0.0.1", proxy, ns, tenant.admin, tenant.password))
        return said

    said = asyncio.run(attack())
    assert all(s.startswith("401") for s in said[:5]), said
    assert said[5].startswith("429"), said  # the guesser is locked out...
    assert said[6].startswith("429"), said  # ...even with the right secret
    assert said[7] == "ok", said  # the owner, from elsewhere, is not
    # And the CLI (from 127.0.0.1 too) logs in.
    assert (
        tenant.micro("login", "--username", tenant.admin, "--password", tenant.password).returncode
        == 0
    )


def test_an_unknown_account_gets_the_answer_a_wrong_secret_gets(tenant: Tenant) -> None:
    async def ask() -> tuple[str, str]:
        proxy, ns = tenant.server.proxy, tenant.namespace
        known = await login_from("127.0.0.3", proxy, ns, tenant.admin, "wrong")
        unknown = await login_from("127.0.0.3", proxy, ns, "nobody", "wrong")
        return known, unknown

    known, unknown = asyncio.run(ask())
    assert known == unknown == "401 Account not found or secret not correct"
