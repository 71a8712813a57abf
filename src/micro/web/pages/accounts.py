"""Accounts: the namespace's accounts and access rules; creating and deleting both.
Through the ``auth`` service as the logged-in account.

The platform lets any account of a namespace list its accounts and rules, and only its
admins change them; the dashboard shows the section to admins only (others get a 403
page, as for the changes), since it is a page for managing them. A secret is shown once,
on the page that answers the creation of its account (as ``micro auth create account``
prints it once), and that page is not cached.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from micro import errors
from micro.auth.base import Account, Resource
from micro.auth.proto import RuleMessage
from micro.web.app import Context, page

__all__ = ["ROUTES"]

_WHERE: Final = "micro.web"
_REFUSED: Final = (errors.BadRequest, errors.Conflict, errors.NotFound)
"""What a form's input can be refused with, said on the form (a 403 is the error page)."""


def _admins_only(context: Context) -> None:
    if not context.session.is_admin:
        raise errors.Forbidden(_WHERE, "admin access required")


async def _page(
    context: Context,
    *,
    status: int = 200,
    account_form: dict[str, str] | None = None,
    rule_form: dict[str, str] | None = None,
    **values: Any,
) -> Response:
    _admins_only(context)
    listed = await context.caller.call("auth", "Accounts.List", {})
    accounts = msgspec.convert(listed.get("accounts") or [], list[Account])
    found = await context.caller.call("auth", "Rules.List", {})
    rules = msgspec.convert(found.get("rules") or [], list[RuleMessage])
    rules.sort(key=lambda r: (-r.priority, r.id))
    me = str(context.session.claims.get("sub") or "")
    return context.render(
        "accounts.html",
        status,
        accounts=sorted(accounts, key=lambda a: a.id),
        rules=rules,
        me=me if context.session.issuer == context.session.namespace else "",
        account_form=account_form or {},
        rule_form=rule_form or {},
        **values,
    )


async def overview(context: Context) -> Response:
    """``/accounts``: accounts and rules, with their forms."""
    return await _page(context)


def _scopes(text: str) -> list[str]:
    return [scope.strip() for scope in text.replace("\n", ",").split(",") if scope.strip()]


async def create_account(context: Context) -> Response:
    """``POST /accounts/create``: create an account and show its secret, this once."""
    form = await context.request.form()
    request = {
        "id": str(form.get("id", "")).strip(),
        "name": str(form.get("name", "")).strip(),
        "secret": str(form.get("secret", "")),
        "type": str(form.get("type", "user")),
        "scopes": _scopes(str(form.get("scopes", ""))),
    }
    try:
        answer = await context.caller.call("auth", "Auth.Generate", request)
    except _REFUSED as exc:
        shown = {k: str(form.get(k, "")) for k in ("id", "name", "type", "scopes")}
        return await _page(context, status=exc.code, account_error=exc.detail, account_form=shown)
    created = msgspec.convert(answer["account"], Account)
    response = await _page(context, created=created)
    response.headers["Cache-Control"] = "no-store"  # the secret is in it
    return response


async def delete_account(context: Context) -> Response:
    """``POST /accounts/delete``: delete an account (never one's own: the platform says so)."""
    account = str((await context.request.form()).get("id", ""))
    try:
        await context.caller.call("auth", "Accounts.Delete", {"id": account})
    except _REFUSED as exc:
        return await _page(context, status=exc.code, account_error=exc.detail)
    return RedirectResponse("/accounts", status_code=303)


def _rule(form: FormData) -> dict[str, Any]:
    """The rule the form asks for, in ``Rules.Create``'s shape; BadRequest naming what is
    wrong."""
    try:
        resource = Resource.parse(str(form.get("resource", "")).strip())
    except ValueError as exc:
        raise errors.BadRequest(_WHERE, str(exc)) from None
    access = str(form.get("access", "granted"))
    if access not in ("granted", "denied"):
        raise errors.BadRequest(_WHERE, f"invalid access {access!r}: granted or denied")
    try:
        priority = int(str(form.get("priority", "")).strip() or "0")
    except ValueError:
        raise errors.BadRequest(_WHERE, "the priority must be a whole number") from None
    return {
        "id": str(form.get("id", "")).strip(),
        "scope": str(form.get("scope", "")).strip(),
        "resource": msgspec.to_builtins(resource),
        "access": access.upper(),
        "priority": priority,
    }


async def create_rule(context: Context) -> Response:
    """``POST /accounts/rules/create``: add a rule."""
    form = await context.request.form()
    try:
        await context.caller.call("auth", "Rules.Create", {"rule": _rule(form)})
    except _REFUSED as exc:
        shown = {k: str(form.get(k, "")) for k in ("id", "scope", "resource", "access", "priority")}
        return await _page(context, status=exc.code, rule_error=exc.detail, rule_form=shown)
    return RedirectResponse("/accounts", status_code=303)


async def delete_rule(context: Context) -> Response:
    """``POST /accounts/rules/delete``: remove a rule."""
    rule = str((await context.request.form()).get("id", ""))
    try:
        await context.caller.call("auth", "Rules.Delete", {"id": rule})
    except _REFUSED as exc:
        return await _page(context, status=exc.code, rule_error=exc.detail)
    return RedirectResponse("/accounts", status_code=303)


ROUTES = [
    Route("/accounts", page(overview)),
    Route("/accounts/create", page(create_account), methods=["POST"]),
    Route("/accounts/delete", page(delete_account), methods=["POST"]),
    Route("/accounts/rules/create", page(create_rule), methods=["POST"]),
    Route("/accounts/rules/delete", page(delete_rule), methods=["POST"]),
]
