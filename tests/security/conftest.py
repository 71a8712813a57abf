"""Fixtures of the attacks: a real server and a tenant namespace with its own admin."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.security._tenant import Tenant, make_tenant

from micro.testing import MicroServerProcess


@pytest.fixture
def tenant(micro_server: MicroServerProcess, tmp_path: Path) -> Tenant:
    """A second namespace of ``micro_server`` and its admin ``tadmin``, logged in."""
    return make_tenant(micro_server, tmp_path)
