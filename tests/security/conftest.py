"""Fixtures of the attacks: a real server and a tenant namespace with its own admin, and
the victim's browser for the dashboard's."""

from __future__ import annotations

import contextlib
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.security._tenant import MADE, Tenant, make_tenant
from tests.web.conftest import launch, new_page

from micro.runtime.users import user_name
from micro.testing import MicroServerProcess


@pytest.fixture
def tenant(micro_server: MicroServerProcess, tmp_path: Path) -> Tenant:
    """A second namespace of ``micro_server`` and its admin ``tadmin``, logged in."""
    return make_tenant(micro_server, tmp_path)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium per module (as in tests/web)."""
    with launch() as browser:
        yield browser


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """The victim's page, in a browser context of its own."""
    with new_page(browser) as page:
        yield page


@pytest.fixture(scope="session", autouse=True)
def _remove_tenant_users() -> Iterator[None]:
    """Remove the system users a root server made for this session's tenants (their
    servers, and so their services, are stopped by then)."""
    yield
    for namespace in MADE:
        name = user_name(namespace)
        with contextlib.suppress(KeyError):
            if pwd.getpwnam(name).pw_gecos == f"micro namespace {namespace}":
                subprocess.run(["userdel", name], capture_output=True, check=False)
