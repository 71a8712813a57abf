"""Issue 14, item 7: access tokens are short, and die with their account's secret.

Before, a caller could ask for a token living 30 days, and a token outlived both a change
of its account's secret and the account's deletion. Now the server caps every token's
life (``MICRO_AUTH_TOKEN_TTL``, 15 minutes by default), and changing a secret or deleting
an account revokes the tokens issued before, at every door: the proxy, the gateway, the
core services and the account's callees' own doors.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from tests._support import http
from tests.security._tenant import Tenant

from micro import errors
from micro.auth.client import RPCAuth
from micro.rpc.client import Client


def test_a_caller_cannot_ask_for_a_long_lived_token(tenant: Tenant) -> None:
    month = str(30 * 24 * 3600)
    made = tenant.micro(
        "auth", "create", "token", "--id", tenant.admin, "--secret", tenant.password,
        "--expiry", month,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = json.loads(made.stdout.removeprefix("Token created: "))
    assert token["expiry"] - token["created"] == 15 * 60


def gateway_status(tenant: Tenant, token: str) -> int:
    status, _, _ = http(
        "POST",
        f"{tenant.server.api}/auth/Accounts/List",
        "{}",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return status


def test_a_changed_secret_revokes_the_tokens_issued_before(tenant: Tenant) -> None:
    tenant.run_probe()
    old = tenant.token()
    assert gateway_status(tenant, old) == 200

    async def bound_token() -> str:
        client = Client(proxy=tenant.server.proxy, metadata={"micro-namespace": tenant.namespace})
        exchanged = await RPCAuth(client).exchange(old, service="probe", namespace=tenant.namespace)
        await client.close()
        return exchanged.access_token

    bound = asyncio.run(bound_token())
    node = json.loads(tenant.micro("get", "service", "probe", "--output", "json").stdout)
    address = node[0]["nodes"][0]["address"]

    async def at_the_service(token: str) -> None:
        client = Client(proxy=address, metadata={"authorization": f"Bearer {token}"})
        try:
            await client.call("probe", "Probe.Metadata", {})
        finally:
            await client.close()

    asyncio.run(at_the_service(bound))  # the service's own door takes it, for now

    changed = tenant.server.micro(
        "auth", "update", "secret", tenant.admin, "--new_secret", "another-secret",
        "--namespace", tenant.namespace,
    )  # fmt: skip
    assert changed.returncode == 0, changed.stderr
    # The old token, unexpired, is refused at the gateway, the proxy and the service.
    assert gateway_status(tenant, old) == 401
    listed = tenant.server.micro(
        "call", "auth", "Accounts.List", "{}", f"--metadata=authorization=Bearer {old}"
    )
    assert listed.returncode == 2, (listed.stdout, listed.stderr)
    with pytest.raises(errors.Unauthorized, match="revoked"):
        asyncio.run(at_the_service(bound))


def test_a_deleted_account_is_refused_at_once(tenant: Tenant) -> None:
    token = tenant.token()
    assert gateway_status(tenant, token) == 200
    deleted = tenant.server.micro(
        "auth", "delete", "account", tenant.admin, "--namespace", tenant.namespace
    )
    assert deleted.returncode == 0, deleted.stderr
    assert gateway_status(tenant, token) == 401
    assert tenant.micro("auth", "list", "accounts").returncode == 2
