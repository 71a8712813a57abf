"""Namespace and admin checks for the core handlers (Micro's ``Authorize``/``AuthorizeAdmin``).

Handlers call them with the namespace a request acts in::

    async def write(self, req: WriteRequest) -> EmptyResponse:
        namespace = access.namespace(req.options.database, "store.Store.Write")
        access.authorize_admin(namespace)
        ...

The caller is the account the server's door verified (``context.current().account``).
Checks apply only to calls a door admitted (``Call.checked``): a server without a door
(a bare test server) and code running outside any call are trusted, as in-process
callers are.

- :func:`namespace`: the one namespace a call acts in. The door checked the call against
  the rules of its ``micro-namespace``; a request naming another namespace in its body is
  a 400, so a check can never be passed in one namespace and the act done in another.
- :func:`authorize`: any account of the namespace, or a platform admin. No account:
  401 ``an account is required``; another namespace's: 403 ``access denied to namespace <ns>``.
- :func:`authorize_admin`: besides, an admin of the namespace (a *user* with scope
  ``admin``) or a platform admin; else 403 ``admin access required``.
- :func:`authorize_service`: an admin, or the service account of the service the
  resource belongs to. Service accounts are never admins: a service may register itself,
  read its namespace's config and use its own store table, as its namespace's rules let
  it, and nothing else of the platform.
"""

from __future__ import annotations

from micro import errors
from micro.auth.base import Account
from micro.rpc import context

__all__ = [
    "authorize",
    "authorize_admin",
    "authorize_service",
    "caller",
    "enforced",
    "is_admin",
    "namespace",
    "service_of",
]


def _where(call: context.Call) -> str:
    return f"{call.service}.{call.endpoint}" if call.service else "auth"


def enforced() -> bool:
    """True when serving a call a door admitted: the checks below apply."""
    call = context.current()
    return call is not None and call.checked


def caller() -> Account | None:
    """The verified account of the call being served (``None``: anonymous or no call)."""
    return context.caller()


def namespace(requested: str = "", where: str = "micro") -> str:
    """The namespace the call being served acts in: ``requested`` (a field of the
    request) when given, else the call's ``micro-namespace``; 400 when both are given
    and differ (one namespace per call, the one its door checked)."""
    call = context.current()
    header = call.metadata.get("micro-namespace", "") if call is not None else ""
    if requested and header and requested != header:
        raise errors.BadRequest(
            where,
            f"the request acts in namespace {requested!r} but the call is made in "
            f"{header!r}: send it with Micro-Namespace: {requested}",
        )
    return requested or header or "micro"


def is_admin(account: Account, namespace: str) -> bool:
    """True when ``account`` administers ``namespace`` (platform admins administer all)."""
    return account.administers(namespace)


def service_of(account: Account) -> str | None:
    """The service a service account belongs to (its ``service`` metadata, which the
    runtime sets); ``""`` for a service account made by hand for any service of its
    namespace; ``None`` for an account that is not a service's."""
    if not account.is_service:
        return None
    return account.metadata.get("service", "")


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
    if not account.administers(namespace):
        raise errors.Forbidden(_where(call), "admin access required")
    return account


def authorize_service(namespace: str, service: str | None = None) -> Account | None:
    """:func:`authorize_admin`, except that a service account of ``namespace`` passes too
    when the resource is its own service's (``service``: the resource's service name;
    ``None`` when any service of the namespace may, as for reading its config)."""
    account = authorize(namespace)
    call = context.current()
    if call is None or not call.checked:
        return account
    assert account is not None
    if account.administers(namespace):
        return account
    own = service_of(account)
    if own is not None and (service is None or own in ("", service)):
        return account
    raise errors.Forbidden(_where(call), "admin access required")
