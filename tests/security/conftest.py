"""Fixtures of the attacks: a real server and a tenant namespace with its own admin."""

from __future__ import annotations

import contextlib
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.security._tenant import MADE, Tenant, make_tenant

from micro.runtime.users import user_name
from micro.testing import MicroServerProcess


@pytest.fixture
def tenant(micro_server: MicroServerProcess, tmp_path: Path) -> Tenant:
    """A second namespace of ``micro_server`` and its admin ``tadmin``, logged in."""
    return make_tenant(micro_server, tmp_path)


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
