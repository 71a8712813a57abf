"""Issue 14, item 2: a service's own account is not an admin, anywhere.

The runtime gives each service an account whose secret is in the service's environment,
so the service's code (a tenant's, or a dependency's) holds it. Before, that account
passed every admin check of its namespace, and a service of ``micro`` every admin check of
the platform: any service's secret made admin accounts. Now a service account does what
its service needs (register itself, read its namespace's config, use its own store
table) and nothing an admin does.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.security._tenant import PROBE, Tenant, wait_running

from micro.testing import MicroServerProcess

AS_ITSELF = """
from micro.auth.client import RPCAuth
from micro.config.client import RPCConfig
from micro.registry.base import Node, Service
from micro.registry.client import RPCRegistry
from micro.store.base import Record
from micro.store.client import RPCStore
import os

client = micro.client.default()  # the service's own client: its own account
namespace = os.environ["MICRO_NAMESPACE"]
outcome = {}

async def attempt(name, action):
    try:
        await action
        outcome[name] = "ok"
    except Exception as exc:
        outcome[name] = f"{getattr(exc, 'code', '?')} {getattr(exc, 'detail', exc)}"

auth, store, config = RPCAuth(client), RPCStore(client), RPCConfig(client)
await attempt("admin in micro", auth.generate("evil", secret="pw", scopes=["admin"], namespace="micro"))
await attempt("admin in own", auth.generate("evil", secret="pw", scopes=["admin"], namespace=namespace))
await attempt("rule", auth.revoke_rule("default", namespace=namespace))
fake = Service(name="billing", version="1", nodes=[Node(id="x", address="127.0.0.1:1")])
await attempt("register another", RPCRegistry(client).register(fake, ttl=5, domain=namespace))
await attempt("config set", config.set("db.host", "evil.example", namespace=namespace))
await attempt("config get", config.get("db", namespace=namespace))
await attempt("own table", store.write(Record("k", b"v"), database=namespace, table="probe"))
await attempt("other table", store.write(Record("k", b"v"), database=namespace, table="billing"))
await attempt("own table elsewhere", store.write(Record("k", b"v"), database="micro", table="probe"))
result = outcome
"""


def check(outcome: dict[str, str], namespace: str) -> None:
    assert outcome["admin in micro"].startswith("403"), outcome
    assert outcome["admin in own"] == "403 admin access required", outcome
    assert outcome["rule"] == "403 admin access required", outcome
    assert outcome["register another"] == "403 admin access required", outcome
    assert outcome["config set"] == "403 admin access required", outcome
    assert outcome["other table"] == "403 admin access required", outcome
    if namespace != "micro":  # its own table, but of another namespace
        assert outcome["own table elsewhere"].startswith("403"), outcome
    # What a service needs is still granted.
    assert outcome["config get"] == "ok", outcome
    assert outcome["own table"] == "ok", outcome


def test_a_tenants_service_account_administers_nothing(tenant: Tenant) -> None:
    tenant.run_probe()
    check(tenant.probe(AS_ITSELF), tenant.namespace)
    accounts = tenant.micro("auth", "list", "accounts")
    assert "evil" not in accounts.stdout


def test_a_platform_service_account_is_not_a_platform_admin(
    micro_server: MicroServerProcess, tmp_path: Path
) -> None:
    # The platform's own admin runs a service in namespace micro; its code holds the
    # service's secret. Before, that secret was a platform admin's.
    done = micro_server.micro("run", str(PROBE))
    assert done.returncode == 0, done.stderr
    wait_running(micro_server.micro, "probe")
    answer = micro_server.micro("call", "probe", "Probe.Run", json.dumps({"code": AS_ITSELF}))
    assert answer.returncode == 0, answer.stderr
    check(json.loads(answer.stdout)["result"], "micro")
    assert "evil" not in micro_server.micro("auth", "list", "accounts").stdout
