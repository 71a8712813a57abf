"""``micro login|logout|user|auth`` end to end against a real server (reference §3.2,
§6.7): logins per namespace, isolation between namespaces, rules that lock the platform
down, accounts, tokens and secrets, the refresh, and a service started by hand acting as
the developer's login.
"""

from __future__ import annotations

import base64
import json
import stat
import time

from tests._support import HELLOWORLD

from micro.auth.base import Token
from micro.auth.credentials import TokenFile
from micro.testing import MicroServerProcess


def _password(server: MicroServerProcess) -> str:
    return server.env().get("MICRO_ADMIN_PASSWORD", "micro")


def _ok(server: MicroServerProcess, *args: str, input: str | None = None) -> str:
    out = server.micro(*args, input=input)
    assert out.returncode == 0, (args, out.stdout, out.stderr)
    assert out.stderr == "", out.stderr
    return out.stdout


def _failed(server: MicroServerProcess, *args: str, code: int | None = None) -> str:
    """The one line a failing command prints on stderr."""
    out = server.micro(*args)
    assert out.returncode != 0, (args, out.stdout)
    if code is not None:
        assert out.returncode == code, (args, out.returncode, out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 1, out.stderr
    assert "Traceback" not in out.stderr
    return lines[0]


def _login(server: MicroServerProcess, user: str = "admin", password: str | None = None) -> None:
    secret = _password(server) if password is None else password
    out = _ok(server, "login", "--username", user, "--password", secret)
    assert out == "Successfully logged in.\n"


def _rows(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines()]


def test_login_user_logout(micro_server: MicroServerProcess) -> None:
    server = micro_server
    assert _ok(server, "logout") == ""  # the fixture may have logged in already
    assert _ok(server, "logout") == ""  # not logged in: nothing to do, no output
    assert _failed(server, "user", code=1) == "You are not logged in"
    wrong = server.micro("login", "--username", "admin", "--password", "not-the-password")
    assert wrong.returncode == 2, wrong.stderr
    assert wrong.stdout == ""
    assert wrong.stderr.startswith("Error: ")
    assert len(wrong.stderr.splitlines()) == 1

    _login(server)
    tokens = server.home / "tokens"
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    text = tokens.read_text()
    assert text.startswith(f"micro://{server.proxy}/micro/admin:")
    stored = json.loads(base64.b64decode(text.strip().rsplit(":", 1)[1]))
    assert sorted(stored) == ["access_token", "created", "expiry", "refresh_token"]  # no secret
    assert _ok(server, "user") == "admin\n"
    access = _ok(server, "user", "token").strip()
    assert access.count(".") == 2  # a JWT
    assert _ok(server, "user", "config").splitlines()[:3] == [
        "user: admin",
        "namespace: micro",
        "environment: local",
    ]
    rules = _rows(_ok(server, "auth", "list", "rules"))
    assert rules == [
        ["ID", "Scope", "Access", "Resource", "Priority"],
        ["default", "<public>", "GRANTED", "*:*:*", "0"],
    ]
    accounts = _rows(_ok(server, "auth", "list", "accounts"))
    assert accounts[0] == ["ID", "Name", "Scopes", "Metadata"]
    assert accounts[1][:3] == ["admin", "admin", "admin"]

    assert _ok(server, "logout") == ""
    assert _failed(server, "user", code=1) == "You are not logged in"
    assert TokenFile(server.home).logins() == []
    # Anonymous: the admin's operations are refused, in the platform's words.
    assert _failed(server, "auth", "list", "accounts").startswith("Error: ")


def test_login_prompts(micro_server: MicroServerProcess) -> None:
    password = _password(micro_server)
    out = micro_server.micro("login", input=f"admin\n{password}\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "Enter username: \nEnter password: \nSuccessfully logged in.\n"
    assert password not in out.stdout + out.stderr
    assert _ok(micro_server, "user") == "admin\n"
    # --email is the same flag (Micro's alias).
    _ok(micro_server, "login", "--email", "admin", "--password", password)


def test_namespaces_are_isolated(micro_server: MicroServerProcess) -> None:
    """Reference §6.7 and the issue's "Done when": a new namespace's account sees
    nothing of micro's."""
    server = micro_server
    _login(server)
    _ok(server, "store", "write", "greeting", "hello from micro")
    server.start_service(HELLOWORLD, name="helloworld")  # as the developer (admin)
    assert "helloworld" in _ok(server, "services").split()

    created = _ok(
        server,
        "auth",
        "create",
        "account",
        "--namespace",
        "foo",
        "--secret",
        "x",
        "--scopes",
        "admin",
        "jane",
    )  # an admin of foo only
    assert created.startswith("Account created: ")
    account = json.loads(created.removeprefix("Account created: "))
    assert (account["id"], account["issuer"], account["secret"]) == ("jane", "foo", "x")
    assert account["scopes"] == ["admin"]
    assert account["name"] == "jane"

    assert _ok(server, "user", "namespace", "set", "foo") == ""
    assert _ok(server, "user", "namespace") == "foo\n"
    assert _failed(server, "user") == "You are not logged in"  # logins are per namespace
    _login(server, "jane", "x")
    assert _ok(server, "user") == "jane\n"

    listed = _ok(server, "services").split()
    for name in ("helloworld", "registry", "store", "auth"):
        assert name not in listed
    denied = server.micro("store", "read", "greeting", "--database", "micro")
    assert denied.returncode == 127, denied.stderr  # 403: the platform's own words
    assert "hello from micro" not in denied.stdout
    assert len(denied.stderr.splitlines()) == 1
    _ok(server, "store", "write", "greeting", "hello from foo")
    assert _ok(server, "store", "read", "greeting") == "hello from foo\n"
    # jane is no admin of micro.
    assert _failed(server, "auth", "list", "accounts", "--namespace", "micro").startswith("Error: ")

    # Back to micro: the admin's login was kept there.
    _ok(server, "user", "namespace", "set", "micro")
    assert _ok(server, "user") == "admin\n"
    assert _ok(server, "store", "read", "greeting") == "hello from micro\n"
    assert "helloworld" in _ok(server, "services").split()
    foo_accounts = _rows(_ok(server, "auth", "list", "accounts", "--namespace", "foo"))
    assert [row[0] for row in foo_accounts[1:]] == ["jane"]


def test_rules_lock_the_platform_down(micro_server: MicroServerProcess) -> None:
    server = micro_server
    _login(server)
    assert (
        _ok(
            server,
            "auth",
            "create",
            "rule",
            "--access=granted",
            "--scope=*",
            "--resource=*:*:*",
            "onlyloggedin",
        )
        == "Rule created\n"
    )
    assert (
        _ok(
            server,
            "auth",
            "create",
            "rule",
            "--access=granted",
            "--resource=service:auth:*",
            "auth-public",
        )
        == "Rule created\n"
    )
    again = _failed(server, "auth", "create", "rule", "--resource=*:*:*", "onlyloggedin")
    assert again == "Error: A rule with this ID already exists"
    assert _ok(server, "auth", "delete", "rule", "default") == "Rule deleted\n"
    assert _failed(server, "auth", "delete", "rule", "default") == "Error: Rule not found"
    rules = _rows(_ok(server, "auth", "list", "rules"))
    assert sorted(rules[1:]) == [
        ["auth-public", "<public>", "GRANTED", "service:auth:*", "0"],
        ["onlyloggedin", "*", "GRANTED", "*:*:*", "0"],
    ]

    _ok(server, "services")  # logged in: allowed
    assert _ok(server, "logout") == ""
    assert _failed(server, "services", code=2) == "Not authorized to perform this request"
    _login(server)  # service:auth:* is public: logging in still works
    _ok(server, "services")


def test_accounts_tokens_and_secrets(micro_server: MicroServerProcess) -> None:
    server = micro_server
    _login(server)
    created = _ok(
        server,
        "auth",
        "create",
        "account",
        "bob",
        "--secret",
        "s1",
        "--scopes",
        "a,b",
        "--scopes",
        "c",
    )
    assert json.loads(created.removeprefix("Account created: "))["scopes"] == ["a", "b", "c"]
    bob = next(r for r in _rows(_ok(server, "auth", "list", "accounts")) if r[0] == "bob")
    assert bob[:5] == ["bob", "bob", "a,", "b,", "c"]

    made = _ok(
        server, "auth", "create", "token", "--id", "bob", "--secret", "s1", "--expiry", "120"
    )
    assert made.startswith("Token created: ")
    token = json.loads(made.removeprefix("Token created: "))
    assert token["expiry"] - token["created"] == 120
    assert token["access_token"].count(".") == 2
    assert token["refresh_token"]

    assert (
        _ok(server, "auth", "update", "secret", "bob", "--old_secret", "s1", "--new_secret", "s2")
        == "Account updated\n"
    )
    old = _failed(server, "auth", "create", "token", "--id", "bob", "--secret", "s1", code=2)
    assert old == "Error: Account not found or secret not correct"
    _ok(server, "auth", "create", "token", "--id", "bob", "--secret", "s2")

    assert _failed(server, "auth", "delete", "account", "admin", code=1) == (
        "Can't delete your own account"
    )
    assert _ok(server, "auth", "delete", "account", "bob") == "Account deleted\n"
    assert "bob" not in [r[0] for r in _rows(_ok(server, "auth", "list", "accounts"))]
    assert _failed(server, "auth", "delete", "account", "bob").startswith("Error: ")


def test_set_password(micro_server: MicroServerProcess) -> None:
    server = micro_server
    password = _password(server)
    _login(server)
    _ok(server, "user", "set", "password", "--old-password", password, "--new-password", "pw2")
    assert _failed(server, "login", "--username", "admin", "--password", password, code=2)
    _login(server, "admin", "pw2")
    out = _ok(server, "user", "set", "password", input="pw2\npw3\npw3\n")
    assert out == "Enter current password: \nEnter a new password: \nVerify your password: \n"
    mismatch = server.micro("user", "set", "password", input="pw3\nx\ny\n")
    assert mismatch.returncode == 1
    assert mismatch.stderr == "Passwords do not match\n"
    _login(server, "admin", "pw3")


def test_expiring_token_is_refreshed(micro_server: MicroServerProcess) -> None:
    server = micro_server
    _login(server)
    file = TokenFile(server.home)
    (login,) = file.logins()
    stale = Token(login.token.access_token, login.token.refresh_token, 0, int(time.time()) + 30)
    file.put(*login.key, stale)
    _ok(server, "services")
    fresh = file.get(*login.key)
    assert fresh is not None
    assert fresh.refresh_token == stale.refresh_token
    assert fresh.expiry > time.time() + 600
    # A refresh token the server no longer knows (logged out elsewhere) forgets the login.
    file.put(*login.key, Token("x.y.z", "revoked", 0, 0))
    _ok(server, "services")  # anonymous, and the default rule is public
    assert file.logins() == []
    assert _failed(server, "user") == "You are not logged in"


def test_hand_started_service_acts_as_the_developer(micro_server: MicroServerProcess) -> None:
    """With only logged-in callers allowed, a service started by hand (no MICRO_AUTH_ID)
    registers and calls as the developer's login."""
    server = micro_server
    _login(server)
    _ok(server, "auth", "create", "rule", "--scope=*", "--resource=*:*:*", "onlyloggedin")
    _ok(server, "auth", "create", "rule", "--resource=service:auth:*", "auth-public")
    _ok(server, "auth", "delete", "rule", "default")
    server.start_service(HELLOWORLD, name="helloworld")
    out = _ok(server, "call", "helloworld", "Helloworld.Call", '{"name": "Jane"}')
    assert json.loads(out) == {"msg": "Hello Jane"}
    _ok(server, "logout")
    assert _failed(server, "call", "helloworld", "Helloworld.Call", '{"name": "x"}', code=2)


def test_namespace_flag(micro_server: MicroServerProcess) -> None:
    """``-n`` aims one command at another namespace: its login there if any, else the
    login of the current namespace (a micro admin may act anywhere)."""
    server = micro_server
    _login(server)
    _ok(server, "auth", "create", "account", "--namespace", "bar", "--secret", "y", "kim")
    assert _ok(server, "-n", "bar", "user") == "admin\n"
    _ok(server, "-n", "bar", "store", "write", "k", "by admin")
    assert _ok(server, "-n", "bar", "store", "read", "k") == "by admin\n"
    _ok(server, "-n", "bar", "login", "--username", "kim", "--password", "y")
    assert _ok(server, "-n", "bar", "user") == "kim\n"
    assert _ok(server, "--namespace", "bar", "user", "namespace") == "bar\n"
    denied = server.micro("-n", "bar", "store", "read", "k")  # kim is no admin of bar
    assert denied.returncode == 127, denied.stderr
    assert _ok(server, "user") == "admin\n"  # micro's login is untouched
    assert _ok(server, "-n", "bar", "logout") == ""
    assert _ok(server, "-n", "bar", "user") == "admin\n"
    assert _ok(server, "user") == "admin\n"
