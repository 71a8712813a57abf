"""Issue 14, items 3 and 22: the platform's own services are always the server's.

Before, a tenant admin could run or register a service named ``auth`` (or ``registry``)
in its namespace, and the gateway, the gRPC edge and the dashboard resolved core names
through the registry in the caller's namespace: they sent that namespace's logins,
passwords in clear, to the tenant's service. And accounts of other namespaces could not
reach the real core services through the edges at all ("service auth not found"). Now
core names are reserved in every namespace, and the edges always reach the server's own.
"""

from __future__ import annotations

import json

from tests._support import http
from tests.security._tenant import PROBE, Tenant

from micro.auth.credentials import token_claims


def test_a_tenant_cannot_run_a_service_under_a_core_name(tenant: Tenant) -> None:
    for name in ("auth", "registry", "store", "runtime"):
        done = tenant.micro("run", str(PROBE), "--name", name)
        assert done.returncode != 0
        assert "is the name of a platform service" in done.stderr, done.stderr


def test_a_tenant_cannot_register_a_core_name(tenant: Tenant) -> None:
    tenant.run_probe()
    # The tenant admin's own credentials, straight at the registry service.
    fake = {
        "name": "auth",
        "version": "latest",
        "nodes": [{"id": "fake-auth", "address": "127.0.0.1:1"}],
        "options": {"ttl": 60, "domain": tenant.namespace},
    }
    done = tenant.micro("call", "registry", "Registry.Register", json.dumps(fake))
    assert done.returncode != 0
    assert "reserved in every namespace" in done.stderr, done.stderr
    # Nor through the code of its service.
    said = tenant.probe(
        "from micro.registry.client import RPCRegistry\n"
        "from micro.registry.base import Node, Service\n"
        "import os\n"
        "fake = Service(name='auth', nodes=[Node(id='x', address='127.0.0.1:1')])\n"
        "try:\n"
        "    await RPCRegistry(micro.client.default()).register("
        "fake, ttl=60, domain=os.environ['MICRO_NAMESPACE'])\n"
        "    result = 'registered'\n"
        "except Exception as exc:\n"
        "    result = str(exc)\n"
    )
    assert "reserved in every namespace" in said


def test_a_tenants_login_through_the_gateway_reaches_the_real_auth(tenant: Tenant) -> None:
    body = {"id": tenant.admin, "secret": tenant.password, "options": {}}
    status, _, data = http(
        "POST",
        f"{tenant.server.api}/auth/Auth/Token",
        json.dumps(body),
        headers={"Content-Type": "application/json", "Micro-Namespace": tenant.namespace},
    )
    assert status == 200, data
    token = json.loads(data)["token"]["access_token"]
    claims = token_claims(token)
    assert (claims["sub"], claims["iss"]) == (tenant.admin, tenant.namespace)
    # ...and the tenant uses its namespace's core services through the gateway.
    status, _, data = http(
        "POST",
        f"{tenant.server.api}/store/Store/Write",
        json.dumps({"record": {"key": "k", "value": "dg=="}}),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    assert status == 200, data
    status, _, data = http(
        "POST",
        f"{tenant.server.api}/runtime/Runtime/Read",
        "{}",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    assert status == 200, data


def test_a_tenants_login_through_the_grpc_edge_reaches_the_real_auth(tenant: Tenant) -> None:
    import grpc

    edge = tenant.server.edges["grpc"]
    with grpc.insecure_channel(edge) as channel:
        call = channel.unary_unary("/auth.Auth/Token")
        body = json.dumps({"id": tenant.admin, "secret": tenant.password}).encode()
        answer = call(body, metadata=[("micro-namespace", tenant.namespace)], timeout=10)
    claims = token_claims(json.loads(answer)["token"]["access_token"])
    assert (claims["sub"], claims["iss"]) == (tenant.admin, tenant.namespace)
