"""Issue 14, item 14: ``/openapi.json`` with ``Micro-Namespace: tenant1`` listed tenant1's
endpoints to anyone. It now answers whoever may list the namespace's services
(``Registry.ListServices``): not an anonymous caller (401), not another namespace's account
(403); the tenant's own accounts, yes.

(The gateway makes that call through the forwarder as its caller, so it needs the core
services served in every namespace: contract point 4, the lead's.)"""

from __future__ import annotations

import json
import secrets
from typing import Any

from tests._support import HELLOWORLD, http
from tests.security._tenant import Tenant

ENDPOINT = "/helloworld/Helloworld/Call"


def _openapi(tenant: Tenant, namespace: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Micro-Namespace": namespace}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, _, data = http("GET", f"{tenant.server.api}/openapi.json", headers=headers)
    return status, json.loads(data)


def test_a_tenants_api_is_described_to_its_accounts_only(tenant: Tenant) -> None:
    server = tenant.server
    server.start_service(HELLOWORLD, name="helloworld", env=tenant.env())  # in the tenant's
    password = secrets.token_urlsafe(12)
    made = server.micro("auth", "create", "account", "outsider", "--secret", password,
                        "--scopes", "reader")  # fmt: skip
    assert made.returncode == 0, made.stderr
    status, _, data = http("POST", f"{server.api}/auth/Auth/Token",
                           json.dumps({"id": "outsider", "secret": password}),
                           {"content-type": "application/json"})  # fmt: skip
    assert status == 200, data
    outsider = json.loads(data)["token"]["access_token"]

    status, error = _openapi(tenant, tenant.namespace)
    assert status == 401, error
    assert error["code"] == 401
    status, error = _openapi(tenant, tenant.namespace, outsider)
    assert status == 403, error
    assert error["code"] == 403
    status, document = _openapi(tenant, tenant.namespace, tenant.token())
    assert status == 200, document
    assert ENDPOINT in document["paths"]
    # the platform's own namespace stays public, and holds nothing of the tenant's
    status, document = _openapi(tenant, "micro")
    assert status == 200
    assert ENDPOINT not in document["paths"]
