"""The handlers' namespace and admin checks, on calls made up by hand."""

from __future__ import annotations

import contextvars
import functools
from collections.abc import Callable
from typing import TypeVar

import pytest

from micro import errors
from micro.auth import access
from micro.auth.base import Account
from micro.rpc import context
from micro.rpc.context import Call

T = TypeVar("T")

DEV = Account(id="dev", issuer="team")
ADMIN = Account(id="boss", issuer="team", scopes=["admin"])
SERVICE = Account(id="svc", type="service", issuer="team", scopes=["service"])
SCOPED_SERVICE = Account(id="svc2", type="service", issuer="team", scopes=["admin"])
ADMIN_USER_AS_CLIENT = Account(id="c", type="client", issuer="team", scopes=["admin"])
ROOT = Account(id="admin", issuer="micro", scopes=["admin"])
ROOT_SERVICE = Account(id="runtime", type="service", issuer="micro", scopes=["service"])
STRANGER = Account(id="eve", issuer="other", scopes=["admin"])


def within(account: object, fn: Callable[[], T], *, checked: bool = True) -> T:
    """Run ``fn`` as if serving a call of ``account`` that a door admitted (or not)."""

    def run() -> T:
        call = Call("store", "Store.Write", {}, "application/msgpack")
        call.account = account
        call.checked = checked
        context._set(call)
        return fn()

    return contextvars.copy_context().run(run)


def code_of(account: object, fn: Callable[[], object]) -> tuple[int, str] | None:
    try:
        within(account, fn)
    except errors.MicroError as exc:
        error = exc
    else:
        return None
    assert error.id == "store.Store.Write"
    return error.code, error.detail


def test_authorize() -> None:
    assert code_of(None, lambda: access.authorize("team")) == (401, "an account is required")
    for account in (DEV, ADMIN, SERVICE, ROOT, ROOT_SERVICE):
        assert code_of(account, lambda: access.authorize("team")) is None
    denied = (403, "access denied to namespace team")
    assert code_of(STRANGER, lambda: access.authorize("team")) == denied
    assert within(DEV, lambda: access.authorize("team")) == DEV


def test_authorize_admin() -> None:
    assert code_of(None, lambda: access.authorize_admin("team")) == (401, "an account is required")
    for account in (ADMIN, SERVICE, ROOT, ROOT_SERVICE):
        assert code_of(account, lambda: access.authorize_admin("team")) is None
    for account in (DEV, SCOPED_SERVICE, ADMIN_USER_AS_CLIENT):
        result = code_of(account, lambda: access.authorize_admin("team"))
        assert result == (403, "admin access required")
    denied = (403, "access denied to namespace team")
    assert code_of(STRANGER, lambda: access.authorize_admin("team")) == denied
    assert code_of(ADMIN, lambda: access.authorize_admin("micro")) == (
        403,
        "access denied to namespace micro",
    )


def test_is_admin() -> None:
    assert access.is_admin(ADMIN, "team")
    assert access.is_admin(ROOT, "anything")
    assert not access.is_admin(ADMIN, "other")
    assert not access.is_admin(DEV, "team")


def test_what_is_not_an_account_counts_as_none() -> None:
    assert code_of({"id": "admin"}, lambda: access.authorize("team")) == (
        401,
        "an account is required",
    )
    assert within("admin", access.caller) is None


def test_calls_no_door_admitted_are_trusted() -> None:
    # A bare server (no door) and in-process code: nothing to check against.
    assert within(None, lambda: access.authorize_admin("team"), checked=False) is None
    assert within(DEV, lambda: access.authorize_admin("team"), checked=False) == DEV
    assert not within(DEV, access.enforced, checked=False)
    assert within(DEV, access.enforced)
    assert access.authorize("team") is None  # outside any call
    assert access.caller() is None


@pytest.mark.parametrize("account", [ROOT, ROOT_SERVICE])
def test_platform_admins(account: Account) -> None:
    assert account.is_platform_admin
    for namespace in ("micro", "team", "x"):
        assert within(account, functools.partial(access.authorize_admin, namespace)) == account
