"""Issue 14, item 6: one namespace per call, the one its door checked.

Before, the core handlers acted on the namespace in the request's body
(``options.namespace``) while the door had checked the ``Micro-Namespace`` header: with
header ``tenant1`` and body ``micro``, an account of ``micro`` that ``micro``'s rules
deny ``Accounts.List`` listed ``micro``'s accounts anyway (``tenant1``'s rules let it
through). Now a body naming another namespace than the call's is a 400.
"""

from __future__ import annotations

import asyncio
import secrets

import pytest
from tests.security._tenant import Tenant

from micro import errors
from micro.auth.client import RPCAuth
from micro.rpc.client import Client


def test_a_deny_rule_cannot_be_sidestepped_by_another_namespaces_header(tenant: Tenant) -> None:
    server = tenant.server
    password = secrets.token_urlsafe(12)
    made = server.micro("auth", "create", "account", "reader", "--secret", password)
    assert made.returncode == 0, made.stderr
    rule = server.micro(
        "auth", "create", "rule", "no-listing",
        "--scope", "*", "--resource", "service:auth:Accounts.List",
        "--access", "denied", "--priority", "10",
    )  # fmt: skip
    assert rule.returncode == 0, rule.stderr

    async def attack() -> None:
        login = Client(proxy=server.proxy, metadata={"micro-namespace": "micro"})
        token = await RPCAuth(login).token(id="reader", secret=password, namespace="micro")
        await login.close()
        as_reader = {"authorization": f"Bearer {token.access_token}"}
        plain = Client(proxy=server.proxy, metadata=as_reader)
        body = {"options": {"namespace": "micro"}}
        try:
            with pytest.raises(errors.Forbidden):  # the rule, in its own namespace
                await plain.call(
                    "auth", "Accounts.List", body, metadata={"micro-namespace": "micro"}
                )
            with pytest.raises(errors.BadRequest) as caught:  # the header of another: 400
                await plain.call(
                    "auth", "Accounts.List", body, metadata={"micro-namespace": tenant.namespace}
                )
            assert "Micro-Namespace: micro" in caught.value.detail
            # Every core service that takes a namespace in its body holds to it.
            for service, endpoint, request in (
                ("store", "Store.Read", {"key": "k", "options": {"database": "micro"}}),
                ("config", "Config.Get", {"namespace": "micro", "path": "x"}),
                ("registry", "Registry.ListServices", {"options": {"domain": "micro"}}),
                ("auth", "Rules.List", {"options": {"namespace": "micro"}}),
            ):
                with pytest.raises(errors.BadRequest):
                    await plain.call(
                        service, endpoint, request, metadata={"micro-namespace": tenant.namespace}
                    )
        finally:
            await plain.close()

    asyncio.run(attack())
