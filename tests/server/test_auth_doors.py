"""Auth at the doors other than the CLI's: TLS to a remote environment, a service's own
account, and a user service enforcing its namespace's rules itself."""

from __future__ import annotations

import datetime
import ipaddress
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from tests._support import HELLOWORLD

from micro import errors
from micro.rpc import Client
from micro.testing import MicroServerProcess, start_server


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_remote_environment_over_tls(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = start_server(
        tmp_path / "server-home",
        env={"MICRO_TLS_CERT_FILE": str(cert), "MICRO_TLS_KEY_FILE": str(key)},
        login=False,
    )
    try:
        assert server.proxy.startswith("tls://127.0.0.1:")
        laptop = {k: v for k, v in server.env().items() if k != "MICRO_PROXY"}
        laptop.update(MICRO_HOME=str(tmp_path / "laptop"), SSL_CERT_FILE=str(cert))

        def micro(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "micro", *args],
                env=laptop,
                capture_output=True,
                text=True,
                timeout=60,
            )

        assert micro("env", "add", "remote", server.proxy).returncode == 0
        assert micro("env", "set", "remote").returncode == 0
        login = micro("login", "--username", "admin", "--password", server.admin_password)
        assert login.stdout.strip() == "Successfully logged in.", login.stderr
        assert "store" in micro("services").stdout.split()
        # Without the certificate trusted, the connection is refused, clearly.
        untrusted = dict(laptop)
        del untrusted["SSL_CERT_FILE"]
        refused = subprocess.run(
            [sys.executable, "-m", "micro", "services"],
            env=untrusted,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert refused.returncode == 4
        assert "Failed to connect to micro server" in refused.stderr
    finally:
        server.stop()


def test_service_with_its_own_account(micro_server: MicroServerProcess) -> None:
    made = micro_server.micro(
        "auth",
        "create",
        "account",
        "greeter-svc",
        "--type",
        "service",
        "--scopes",
        "service",
        "--secret",
        "svc-secret",
    )
    assert made.returncode == 0, made.stderr
    assert micro_server.micro("logout").returncode == 0
    env = micro_server.env(MICRO_AUTH_ID="greeter-svc", MICRO_AUTH_SECRET="svc-secret")
    micro_server.start_service(HELLOWORLD, name="helloworld", env=env)
    wrong = micro_server.env(MICRO_AUTH_ID="greeter-svc", MICRO_AUTH_SECRET="wrong")
    proc = subprocess.Popen(
        [sys.executable, str(HELLOWORLD)], env=wrong, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        while "cannot register" not in line:
            line = proc.stderr.readline()
        assert "Account not found or secret not correct" in line
    finally:
        proc.kill()
        proc.wait()


async def test_a_user_service_enforces_the_rules_itself(micro_server: MicroServerProcess) -> None:
    micro_server.start_service(HELLOWORLD, name="helloworld")
    ok = micro_server.micro(
        "auth",
        "create",
        "rule",
        "only-admins",
        "--scope",
        "admin",
        "--resource",
        "service:helloworld:*",
        "--priority",
        "10",
    )
    assert ok.returncode == 0, ok.stderr
    deny = micro_server.micro(
        "auth",
        "create",
        "rule",
        "no-public-hello",
        "--scope",
        "",
        "--resource",
        "service:helloworld:*",
        "--access",
        "denied",
        "--priority",
        "5",
    )
    assert deny.returncode == 0, deny.stderr
    found = micro_server.micro("get", "service", "helloworld", "--output", "json")
    node = json.loads(found.stdout)[0]["nodes"][0]["address"]
    # Straight to the node, past the proxy: the service's own door says no...
    anonymous = Client(proxy=node)
    with pytest.raises(errors.Unauthorized) as refused:
        await anonymous.call("helloworld", "Helloworld.Call", {"name": "x"})
    await anonymous.close()
    assert refused.value.detail == "Unauthorized call made to helloworld:Helloworld.Call"
    # ...and lets the admin in, with a token bound to it (the CLI exchanges its own)...
    called = micro_server.micro(
        "call", "--address", node, "helloworld", "Helloworld.Call", '{"name": "x"}'
    )
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout) == {"msg": "Hello x"}
    # ...but never with the admin's own token, which would open every other door too.
    token = micro_server.micro("user", "token").stdout.strip()
    admin = Client(proxy=node, metadata={"authorization": f"Bearer {token}"})
    with pytest.raises(errors.Unauthorized) as refused:
        await admin.call("helloworld", "Helloworld.Call", {"name": "x"})
    await admin.close()
    assert refused.value.detail == "invalid token: not for this service (micro/helloworld)"
