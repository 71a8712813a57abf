"""Issue 14, item 22 (the dashboard): a tenant uses its own namespace through the dashboard.

Before, an account of another namespace than ``micro`` could not even log in to the
dashboard: the dashboard looked ``auth`` up in the tenant's namespace ("service auth not
found"). Now the dashboard, like every door, reaches the server's own core services.
"""

from __future__ import annotations

from typing import Any

from tests._support import ok
from tests.security._tenant import Tenant
from tests.web.conftest import log_in
from tests.web.test_store import write


def test_a_tenant_logs_in_and_uses_its_store_and_runtime(page: Any, tenant: Tenant) -> None:
    server = tenant.server
    log_in(
        page, server, username=tenant.admin, password=tenant.password, namespace=tenant.namespace
    )
    page.goto(f"{server.web}/store/{tenant.namespace}/webtest")
    write(page, "greeting", "hello")
    page.wait_for_url("**/record?key=greeting")
    assert page.locator("#value").inner_text() == "hello"
    assert ok(tenant.micro("store", "read", "greeting", "--table", "webtest")) == "hello\n"
    for section in ("services", "runtime", "config", "events", "metrics", "traces", "accounts"):
        response = page.goto(f"{server.web}/{section}")
        assert response is not None
        assert response.status == 200, (section, page.locator("main").inner_text())
    # Its namespace only: the platform's is not a tenant's to look at.
    response = page.goto(f"{server.web}/store/micro")
    assert response is not None
    assert response.status == 403
