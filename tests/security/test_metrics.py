"""Issue 16: the metrics doors, tried as an attacker would.

Before, ``GET /metrics`` on the gateway answered anyone, and its series named every
namespace's services and endpoints. Now it answers platform admins only; a tenant reads
its own services' metrics (``Debug.Metrics``, through the namespace's rules) and nobody
else's; the server's own ``Debug.Metrics`` is for platform admins; consumer groups and
store commits stay in the caller's namespace.
"""

from __future__ import annotations

import json

from tests._support import HELLOWORLD, http
from tests.security._tenant import Tenant


def test_metrics_do_not_leak_across_namespaces(tenant: Tenant) -> None:
    server = tenant.server
    server.start_service(
        HELLOWORLD, name="platformonly", env=server.env(MICRO_SERVICE_NAME="platformonly")
    )
    server.start_service(HELLOWORLD, name="helloworld", env=tenant.env())
    assert http("POST", f"{server.api}/platformonly/Helloworld/Call", '{"name": "a"}')[0] == 200
    called = tenant.micro("call", "helloworld", "Helloworld.Call", '{"name": "t"}')
    assert called.returncode == 0, called.stderr

    # The gateway's /metrics: anonymous and a tenant's admin are refused, and see no names.
    for headers in ({}, {"Authorization": f"Bearer {tenant.token()}"}):
        status, _, body = http("GET", f"{server.api}/metrics", headers=headers)
        assert status in (401, 403), (status, body[:200])
        assert b"platformonly" not in body
        assert b"Helloworld" not in body
    admin = {"Authorization": f"Bearer {server.micro('user', 'token').stdout.strip()}"}
    status, _, body = http("GET", f"{server.api}/metrics", headers=admin)
    assert status == 200
    assert b'service="platformonly"' in body  # the control: the platform admin sees all

    # A service as a scrape target: /metrics?service=NAME, for accounts of its namespace.
    own = {"Authorization": f"Bearer {tenant.token()}"}
    status, _, body = http("GET", f"{server.api}/metrics?service=helloworld", headers=own)
    assert status == 200, body[:200]
    assert b'micro_requests_total{service="helloworld",endpoint="Helloworld.Call"' in body
    for headers, name in (
        ({**own, "Micro-Namespace": "micro"}, "platformonly"),
        ({"Micro-Namespace": "micro"}, "platformonly"),
        ({"Micro-Namespace": tenant.namespace}, "helloworld"),
        (own, "registry"),
    ):
        status, _, body = http("GET", f"{server.api}/metrics?service={name}", headers=headers)
        assert status in (400, 401, 403, 404), (name, status, body[:200])
        assert b"micro_requests_total" not in body

    # The tenant's own service answers its metrics, and only its own.
    mine = tenant.micro("call", "helloworld", "Debug.Metrics")
    assert mine.returncode == 0, mine.stderr
    answer = json.loads(mine.stdout)
    assert 'micro_requests_total{service="helloworld",endpoint="Helloworld.Call"' in answer["text"]
    assert [e["endpoint"] for e in answer["endpoints"]] == ["Helloworld.Call"]
    assert "platformonly" not in mine.stdout
    # Another namespace's service, and the server's own metrics, are out of reach.
    # (Before, the micro namespace's rules let a tenant read a platform service's Debug.Log
    # and Debug.Stats, and the server's, whose logs speak of every namespace.)
    for target in (("-n", "micro", "call", "platformonly"), ("call", "registry"),
                   ("-n", "micro", "call", "registry")):  # fmt: skip
        for endpoint in ("Debug.Metrics", "Debug.Log", "Debug.Stats"):
            refused = tenant.micro(*target, endpoint)
            assert refused.returncode != 0, (target, endpoint, refused.stdout[:200])
            assert "micro_requests_total" not in refused.stdout
            assert "records" not in refused.stdout
            assert "Traceback" not in refused.stderr
    assert tenant.micro("-n", "micro", "call", "platformonly", "Debug.Health").returncode == 0
    assert tenant.micro("call", "helloworld", "Debug.Log").returncode == 0  # its own

    # Consumer groups and store commits stay in the caller's namespace.
    assert server.micro("events", "publish", "audit", "{}").returncode == 0
    assert server.micro("events", "reset", "audit", "billing", "--offset", "1").returncode == 0
    for args in (
        ("-n", "micro", "events", "groups", "audit"),
        ("-n", "micro", "events", "reset", "audit", "billing", "--end"),
    ):
        refused = tenant.micro(*args)
        assert refused.returncode != 0, (args, refused.stdout)
        assert "billing" not in refused.stdout
    assert tenant.micro("events", "groups", "audit").stdout == ""  # its own: none
    commit = json.dumps(
        {"writes": [{"record": {"key": "k", "value": "eA=="}}], "options": {"database": "micro"}}
    )
    refused = tenant.micro("call", "store", "Store.Commit", commit)
    assert refused.returncode != 0
    as_admin = server.micro("store", "read", "k")
    assert as_admin.returncode == 1  # nothing was written in micro's database
