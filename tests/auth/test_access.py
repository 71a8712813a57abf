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
SERVICE = Account(
    id="svc", type="service", issuer="team", scopes=["service"], metadata={"service": "svc"}
)
ANY_SERVICE = Account(id="any", type="service", issuer="team", scopes=["service"])
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
    for account in (DEV, ADMIN, SERVICE, ROOT):
        assert code_of(account, lambda: access.authorize("team")) is None
    denied = (403, "access denied to namespace team")
    for account in (STRANGER, ROOT_SERVICE):
        assert code_of(account, lambda: access.authorize("team")) == denied
    assert within(DEV, lambda: access.authorize("team")) == DEV


def test_authorize_admin() -> None:
    assert code_of(None, lambda: access.authorize_admin("team")) == (401, "an account is required")
    for account in (ADMIN, ROOT):
        assert code_of(account, lambda: access.authorize_admin("team")) is None
    # A service account is never an admin, whatever its scopes or namespace.
    for account in (DEV, SERVICE, SCOPED_SERVICE, ADMIN_USER_AS_CLIENT):
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


def test_platform_admins() -> None:
    assert ROOT.is_platform_admin
    for namespace in ("micro", "team", "x"):
        assert within(ROOT, functools.partial(access.authorize_admin, namespace)) == ROOT


@pytest.mark.parametrize("account", [ROOT_SERVICE, SERVICE, ADMIN_USER_AS_CLIENT])
def test_no_service_or_client_account_is_a_platform_admin(account: Account) -> None:
    assert not account.is_platform_admin
    assert code_of(account, functools.partial(access.authorize_admin, "micro")) is not None


def test_a_service_account_reaches_what_is_its_own_only() -> None:
    def own(namespace: str, service: str | None) -> Callable[[], object]:
        return functools.partial(access.authorize_service, namespace, service)

    assert code_of(SERVICE, own("team", "svc")) is None
    assert code_of(SERVICE, own("team", None)) is None  # what any service of team may do
    assert code_of(SERVICE, own("team", "other")) == (403, "admin access required")
    assert code_of(SERVICE, own("other", "svc")) == (403, "access denied to namespace other")
    # One made by hand without a service of its own is any service of its namespace's.
    assert code_of(ANY_SERVICE, own("team", "other")) is None
    assert code_of(DEV, own("team", None)) == (403, "admin access required")
    assert code_of(ADMIN, own("team", "svc")) is None


def test_one_namespace_per_call() -> None:
    def acting(header: str, requested: str) -> str:
        def run() -> str:
            metadata = {"micro-namespace": header} if header else {}
            context._set(Call("store", "Store.Write", metadata, "application/msgpack"))
            return access.namespace(requested, "store.Store.Write")

        return contextvars.copy_context().run(run)

    assert acting("team", "") == "team"
    assert acting("team", "team") == "team"
    assert acting("", "team") == "team"
    assert acting("", "") == "micro"
    with pytest.raises(errors.BadRequest, match="Micro-Namespace: micro"):
        acting("team", "micro")
