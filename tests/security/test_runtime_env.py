"""Issue 14, item 8: a service's environment variables are secrets.

The attack: a plain account of the namespace (no admin scope) reads ``micro status -o
json`` and finds the ``--env_vars`` values its admin passed (database passwords, API
keys); and whoever reads the store's files finds them there in the clear. Now only
admins (of the namespace, or of the platform) see them, and the runtime keeps them
sealed on the store, in its records and in the statuses it publishes for other replicas.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from tests.security._tenant import PROBE, Tenant, wait_running

from micro.testing import MicroServerProcess


def status_env(micro: object, name: str) -> dict[str, str]:
    assert callable(micro)
    done = micro("status", name, "-o", "json")
    assert done.returncode == 0, done.stderr
    [row] = [json.loads(line) for line in done.stdout.splitlines() if line]
    env: dict[str, str] = row.get("env", {})
    return env


def test_env_vars_are_shown_to_admins_only_and_kept_sealed(
    micro_server: MicroServerProcess, tenant: Tenant, tmp_path: Path
) -> None:
    secret = f"pw-{secrets.token_hex(12)}"
    done = tenant.micro("run", str(PROBE), "--name", "probe", "--env_vars", f"DB_PASSWORD={secret}")
    assert done.returncode == 0, done.stderr
    wait_running(tenant.micro, "probe")
    assert tenant.probe("import os\nresult = os.environ['DB_PASSWORD']") == secret

    # a plain account of the namespace sees the service, not its secrets
    made = tenant.micro("auth", "create", "account", "reader", "--secret", "readerpw")
    assert made.returncode == 0, made.stderr
    reader = Tenant(micro_server, tenant.namespace, "reader", "readerpw", tmp_path / "reader")
    reader.home.mkdir()
    assert reader.micro("user", "namespace", "set", tenant.namespace).returncode == 0
    login = reader.micro("login", "--username", "reader", "--password", "readerpw")
    assert login.returncode == 0, login.stderr
    assert secret not in reader.micro("status", "probe", "-o", "json").stdout
    assert status_env(reader.micro, "probe") == {}
    assert secret not in reader.micro("status").stdout

    # the namespace's admin and the platform's admin do
    assert status_env(tenant.micro, "probe") == {"DB_PASSWORD": secret}
    platform = micro_server.micro("-n", tenant.namespace, "status", "probe", "-o", "json")
    assert secret in platform.stdout

    # and on disk they are sealed: not in any of the store's files
    store = micro_server.home / "server" / "store"
    files = [path for path in store.rglob("*") if path.is_file()]
    assert files
    for path in files:
        assert secret.encode() not in path.read_bytes(), path
