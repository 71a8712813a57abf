"""Issue 14, item 1: a tenant's service must not reach the platform's secrets.

The attack: a tenant admin runs a service (the probe) whose code reads the server's
signing key, config key, SQLite files and CLI tokens under ``MICRO_HOME``, other
processes' ``/proc/PID/environ``, and then signs itself an admin token of ``micro``.
Each step is tried from inside the tenant's service against a real server run as root,
and must fail: the service runs as an unprivileged user of its namespace, in a view of
the filesystem without ``MICRO_HOME``, with a ``/proc`` that shows its own processes
only and a ``/tmp`` of its own.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tests.security._tenant import PROBE, ProbeError, Tenant, make_tenant, wait_running

from micro.testing import MicroServerProcess

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="isolation needs a server run as root")

STEAL = """
import glob, os, time
import jwt
from cryptography.hazmat.primitives import serialization

found = []
def take(path):
    try:
        with open(path, 'rb') as fh:
            found.append(fh.read())
    except OSError:
        pass

take(KEY)
take(f'/proc/{SERVER}/root{KEY}')
for path in glob.glob('/proc/*/environ'):
    take(path)
tokens = []
for data in found:
    for blob in [data, *data.split(b'\\0')]:
        blob = blob.split(b'=', 1)[-1] if blob.startswith(b'MICRO_AUTH_PRIVATE_KEY=') else blob
        try:
            key = serialization.load_pem_private_key(blob, None)
        except (ValueError, TypeError):
            continue
        now = int(time.time())
        claims = {'sub': 'admin', 'iss': 'micro', 'iat': now, 'exp': now + 600,
                  'type': 'user', 'scopes': ['admin'], 'name': 'admin'}
        tokens.append(jwt.encode(claims, key, algorithm='RS256'))
result = tokens
"""


def passes_as_platform_admin(server: MicroServerProcess, token: str) -> bool:
    """Whether the gateway lets ``token`` list the accounts of namespace ``micro``."""
    request = urllib.request.Request(
        f"{server.api}/auth/Accounts/List",
        data=b"{}",
        headers={
            "Authorization": f"Bearer {token}",
            "Micro-Namespace": "micro",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return bool(answer.status == 200 and "admin" in answer.read().decode())
    except urllib.error.HTTPError:
        return False


def read_fails(tenant: Tenant, path: str | Path) -> str:
    """The error the probe meets reading ``path`` (the test fails if it reads it)."""
    with pytest.raises(ProbeError) as refused:
        tenant.probe(f"result = open({str(path)!r}, 'rb').read().hex()")
    return str(refused.value)


def test_a_tenant_service_reads_none_of_the_platform_s_files(
    micro_server: MicroServerProcess, tenant: Tenant
) -> None:
    tenant.run_probe()
    home = micro_server.home
    secrets_on_disk = [
        home / "server" / "auth_key.pem",
        home / "config_secret_key",
        home / "tokens",
        *sorted((home / "server" / "store").glob("*.db")),
    ]
    assert len(secrets_on_disk) > 3
    for path in secrets_on_disk:
        assert path.is_file(), path
        assert "Error" in read_fails(tenant, path)
    for folder in (home, home / "server", home / "server" / "runtime"):
        with pytest.raises(ProbeError):
            tenant.probe(f"import os\nresult = os.listdir({str(folder)!r})")
    # nor through the server's process: it is not even visible
    server = micro_server.process.pid
    assert tenant.probe(f"import os\nresult = os.path.exists('/proc/{server}')") is False
    read_fails(tenant, f"/proc/{server}/environ")
    read_fails(tenant, f"/proc/{server}/root{home}/server/auth_key.pem")
    visible = tenant.probe(
        "import os\nresult = sorted(p for p in os.listdir('/proc') if p.isdigit())"
    )
    assert str(server) not in visible


def test_the_stolen_key_attack_ends_without_an_admin_token(
    micro_server: MicroServerProcess, tenant: Tenant
) -> None:
    tenant.run_probe()
    key = str(micro_server.home / "server" / "auth_key.pem")
    code = f"KEY = {key!r}\nSERVER = {micro_server.process.pid}\n{STEAL}"
    forged = tenant.probe(code)
    assert not [token for token in forged if passes_as_platform_admin(micro_server, token)]
    assert forged == []


def test_each_namespace_runs_as_its_own_user_with_its_own_tmp(
    micro_server: MicroServerProcess, tenant: Tenant, tmp_path: Path
) -> None:
    other = make_tenant(micro_server, tmp_path)
    tenant.run_probe()
    secret = secrets.token_hex(8)
    done = other.micro("run", str(PROBE), "--name", "probe", "--env_vars", f"SECRET={secret}")
    assert done.returncode == 0, done.stderr
    wait_running(other.micro, "probe")

    whoami = (
        "import os, pwd\nresult = [os.getuid(), os.getgid(), pwd.getpwuid(os.getuid()).pw_name]"
    )
    mine, theirs = tenant.probe(whoami), other.probe(whoami)
    assert 0 not in mine[:2]
    assert 0 not in theirs[:2]
    assert mine[0] != theirs[0]
    assert mine[1] != theirs[1]
    assert mine[2] == f"micro-{tenant.namespace}"
    assert theirs[2] == f"micro-{other.namespace}"

    # the other namespace's service: its environment, its process, its files
    other.probe(f"open('/srv/home/kept', 'w').write({secret!r})\nresult = 1")
    pids = micro_server.home / "server" / "runtime" / "pids" / other.namespace / "probe"
    pid = json.loads((pids / "latest" / "0.pid").read_text())["pid"]
    assert tenant.probe(f"import os\nresult = os.path.exists('/proc/{pid}')") is False
    read_fails(tenant, f"/proc/{pid}/environ")
    read_fails(tenant, f"/proc/{pid}/root/srv/home/kept")
    homes = micro_server.home / "server" / "runtime" / "homes"
    assert (homes / other.namespace / "probe" / "kept").read_text() == secret
    read_fails(tenant, homes / other.namespace / "probe" / "kept")
    assert other.probe("import os\nresult = os.environ['SECRET']") == secret

    # /tmp is the service's own: not the host's, and what it writes stays in it
    with tempfile.NamedTemporaryFile(dir="/tmp", prefix="host-") as host_file:
        assert tenant.probe(f"import os\nresult = os.path.exists({host_file.name!r})") is False
    name = f"/tmp/probe-{secrets.token_hex(4)}"
    assert tenant.probe(f"open({name!r}, 'w').write('x')\nresult = 1") == 1
    assert not Path(name).exists()
    assert other.probe(f"import os\nresult = os.path.exists({name!r})") is False
