"""Namespace and admin checks for the core handlers (Micro's ``Authorize``/``AuthorizeAdmin``).

Handlers call them with the namespace a request acts in::

    async def write(self, req: WriteRequest) -> EmptyResponse:
        namespace = req.options.database or context.namespace()
        access.authorize(namespace)
        ...

The caller is the account the server's door verified (``context.current().account``).
Checks apply only to calls a door admitted (``Call.checked``): a server without a door
(a bare test server) and code running outside any call are trusted, as in-process
callers are.

- :func:`authorize`: any account of the namespace, or a platform admin. No account:
  401 ``an account is required``; another namespace's: 403 ``access denied to namespace <ns>``.
- :func:`authorize_admin`: besides, an admin of the namespace (a user with scope
  ``admin``, or a service account with scope ``service``), or a platform admin; else
  403 ``admin access required``.
"""

from __future__ import annotations

from micro import errors
from micro.auth.base import ADMIN_SCOPE, SERVICE_SCOPE, Account
from micro.rpc import context

__all__ = ["authorize", "authorize_admin", "caller", "enforced", "is_admin"]


def _where(call: context.Call) -> str:
    return f"{call.service}.{call.endpoint}" if call.service else "auth"


def enforced() -> bool:
    """True when serving a call a door admitted: the checks below apply."""
    call = context.current()
    return call is not None and call.checked


def caller() -> Account | None:
    """The verified account of the call being served (``None``: anonymous or no call)."""
    call = context.current()
    account = call.account if call is not None else None
    return account if isinstance(account, Account) else None


def is_admin(account: Account, namespace: str) -> bool:
    """True when ``account`` administers ``namespace`` (platform admins administer all)."""
    if account.is_platform_admin:
        return True
    return account.issuer == namespace and (
        (account.type == "user" and ADMIN_SCOPE in account.scopes)
        or (account.type == "service" and SERVICE_SCOPE in account.scopes)
    )


def authorize(namespace: str) -> Account | None:
    """Let the call act in ``namespace`` when its account belongs there (or is a platform
    admin); raise 401/403 otherwise. Returns the account (``None`` when not enforced)."""
    call = context.current()
    if call is None or not call.checked:
        return caller()
    account = caller()
    if account is None:
        raise errors.Unauthorized(_where(call), "an account is required")
    if account.issuer != namespace and not account.is_platform_admin:
        raise errors.Forbidden(_where(call), f"access denied to namespace {namespace}")
    return account


def authorize_admin(namespace: str) -> Account | None:
    """:func:`authorize`, and the account must administer ``namespace``; 403 otherwise."""
    account = authorize(namespace)
    call = context.current()
    if call is None or not call.checked:
        return account
    assert account is not None
    if not is_admin(account, namespace):
        raise errors.Forbidden(_where(call), "admin access required")
    return account
