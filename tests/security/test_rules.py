"""Issue 14, item 21: a namespace's admins can never lock themselves out.

Before, deleting a namespace's ``default`` rule left no rule granting anything, so its own
admins were refused everywhere, including ``Rules.Create``: nothing could undo it. Now a
namespace's admins (and the platform's) always pass the door of the platform's own
services in their namespace, so they can always put rules right; the namespace's rules
decide everything else, the namespace's own services included (Micro's algorithm:
anonymous callers get 401 and accounts 403 until a rule grants them).
"""

from __future__ import annotations

import json
import secrets

from tests._support import http
from tests.security._tenant import Tenant


def call_probe(tenant: Tenant, token: str = "") -> int:
    headers = {"Micro-Namespace": tenant.namespace, "Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, _, _ = http("POST", f"{tenant.server.api}/probe/Probe/Metadata", "{}", headers=headers)
    return status


def test_deleting_the_default_rule_keeps_the_admins_in(tenant: Tenant) -> None:
    tenant.run_probe()
    password = secrets.token_urlsafe(12)
    assert tenant.micro("auth", "create", "account", "dev", "--secret", password).returncode == 0
    made = tenant.micro("auth", "create", "token", "--id", "dev", "--secret", password)
    dev = json.loads(made.stdout.removeprefix("Token created: "))["access_token"]
    deleted = tenant.micro("auth", "delete", "rule", "default")
    assert deleted.returncode == 0, deleted.stderr
    # The admin still manages the namespace through the platform's services...
    for args in (("auth", "list", "rules"), ("status",), ("store", "write", "k", "v")):
        done = tenant.micro(*args)
        assert done.returncode == 0, (args, done.stderr)
    # ...while the namespace's (empty) rules now refuse every caller of its services.
    assert call_probe(tenant) == 401
    assert call_probe(tenant, dev) == 403
    assert call_probe(tenant, tenant.token()) == 403
    # Which the admin can put right, as Micro's docs do: logged-in accounts only.
    granted = tenant.micro(
        "auth", "create", "rule", "onlyloggedin", "--scope", "*", "--resource", "*:*:*"
    )
    assert granted.returncode == 0, granted.stderr
    assert call_probe(tenant) == 401
    assert call_probe(tenant, dev) == 200
    assert call_probe(tenant, tenant.token()) == 200
    # A non-admin is still refused the namespace's administration.
    status, _, _ = http(
        "POST",
        f"{tenant.server.api}/auth/Rules/Delete",
        json.dumps({"id": "onlyloggedin"}),
        headers={"Authorization": f"Bearer {dev}", "Content-Type": "application/json"},
    )
    assert status == 403
