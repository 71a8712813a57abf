"""Issue 14, item 4: a caller's credentials never reach the service it calls.

Before, a service called by the platform's admin (even across namespaces,
``micro -n tenant1 call ...``) found ``authorization: Bearer <admin JWT>`` in its metadata
and could replay it. Now the proxy and the gateway replace it with a token bound to that
one service, which the service's own door takes out of the metadata before the handler
runs; the handler learns who called from ``micro-caller-*``, which the door writes and no
caller can forge. And even a service that patches its own door to keep the bound token
(the tenant owns the process) holds nothing another door takes.
"""

from __future__ import annotations

import json

from tests._support import http
from tests.security._tenant import Tenant

from micro.auth.credentials import token_claims

# Patch the service's own door so it keeps the token each call brings: the attacker owns
# the process. Returns what it kept so far.
STEAL = """
from micro.auth.door import Door
import micro.auth.door as door_module
kept = getattr(door_module, "_kept", None)
if kept is None:
    kept = door_module._kept = []
    original = Door.present

    def present(self, metadata, account):
        if "authorization" in metadata:
            kept.append(metadata["authorization"])
        return original(self, metadata, account)

    Door.present = present
result = list(kept)
"""


def metadata_seen(tenant: Tenant, *args: str) -> dict[str, str]:
    done = tenant.server.micro(*args, "call", "probe", "Probe.Metadata", "{}")
    assert done.returncode == 0, done.stderr
    seen: dict[str, str] = json.loads(done.stdout)["metadata"]
    return seen


def test_the_platform_admins_token_does_not_reach_a_tenants_service(tenant: Tenant) -> None:
    tenant.run_probe()
    seen = metadata_seen(tenant, "-n", tenant.namespace)
    assert "authorization" not in seen
    assert not any("eyJ" in value for value in seen.values()), seen  # no JWT anywhere
    assert seen["micro-caller-id"] == "admin"
    assert seen["micro-caller-namespace"] == "micro"
    assert seen["micro-caller-scopes"] == "admin"


def test_a_stolen_bound_token_opens_no_other_door(tenant: Tenant) -> None:
    tenant.run_probe()
    assert tenant.probe(STEAL) == []
    admin_token = tenant.server.micro("user", "token").stdout.strip()
    # The admin calls the tenant's service through the proxy and through the gateway.
    assert metadata_seen(tenant, "-n", tenant.namespace)
    status, _, _ = http(
        "POST",
        f"{tenant.server.api}/probe/Probe/Metadata",
        "{}",
        headers={
            "Authorization": f"Bearer {admin_token}",
            "Micro-Namespace": tenant.namespace,
            "Content-Type": "application/json",
        },
    )
    assert status == 200
    stolen = [v for v in tenant.probe(STEAL) if _claims(v)["sub"] == "admin"]
    assert len(stolen) == 2, stolen
    for value in stolen:
        assert admin_token not in value
        assert _claims(value)["aud"] == f"service:{tenant.namespace}/probe"
    # Replayed at the platform, with the service's own client or through the gateway:
    # refused.
    replay = tenant.probe(
        "from micro.auth.client import RPCAuth\n"
        "from micro.rpc.client import Client\n"
        "import os\n"
        f"client = Client(proxy=os.environ['MICRO_PROXY'], metadata={{'authorization': {stolen[0]!r}}})\n"
        "try:\n"
        "    await RPCAuth(client).generate('evil', secret='x', scopes=['admin'], namespace='micro')\n"
        "    result = 'created'\n"
        "except Exception as exc:\n"
        "    result = f'{exc.code} {exc.detail}'\n"
        "await client.close()\n"
    )
    assert replay.startswith("401"), replay
    assert "not for the platform" in replay
    status, _, body = http(
        "POST",
        f"{tenant.server.api}/auth/Accounts/List",
        "{}",
        headers={"Authorization": stolen[0], "Content-Type": "application/json"},
    )
    assert status == 401, body
    assert "evil" not in tenant.server.micro("auth", "list", "accounts").stdout


def test_caller_identity_cannot_be_forged(tenant: Tenant) -> None:
    tenant.run_probe()
    forged = {
        "micro-caller-id": "admin",
        "micro-caller-namespace": "micro",
        "micro-caller-scopes": "admin",
    }
    args = [f"--metadata={k}={v}" for k, v in forged.items()]
    done = tenant.micro("call", "probe", "Probe.Metadata", "{}", *args)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)["metadata"]
    assert seen["micro-caller-id"] == tenant.admin
    assert seen["micro-caller-namespace"] == tenant.namespace
    # Anonymous through the gateway: no caller at all, whatever the headers say.
    status, _, body = http(
        "POST",
        f"{tenant.server.api}/probe/Probe/Metadata",
        "{}",
        headers={
            "Micro-Namespace": tenant.namespace,
            "Content-Type": "application/json",
            **{k.title(): v for k, v in forged.items()},
        },
    )
    assert status == 200, body
    assert not any(k.startswith("micro-caller-") for k in json.loads(body)["metadata"])


def test_a_service_calling_another_sends_no_token_it_could_replay(tenant: Tenant) -> None:
    tenant.run_probe("probe")
    tenant.run_probe("probe2")
    assert tenant.probe(STEAL, name="probe2") == []
    said = tenant.probe(
        "answer = await micro.client.call('probe2', 'Probe.Metadata', {})\n"
        "result = answer['metadata']\n"
    )
    assert "authorization" not in said
    assert said["micro-caller-id"] == "probe-latest"  # the calling service's own account
    [stolen] = [v for v in tenant.probe(STEAL, name="probe2") if _claims(v)["sub"] != "tadmin"]
    assert _claims(stolen)["sub"] == "probe-latest"
    assert _claims(stolen)["aud"] == f"service:{tenant.namespace}/probe2"


def _claims(authorization: str) -> dict[str, object]:
    return token_claims(authorization.removeprefix("Bearer "))
