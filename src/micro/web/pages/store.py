"""Store: databases, their tables, a table's keys (paged, by prefix), a record's value;
writing and deleting records. Through the ``store`` service as the logged-in account,
which must administer the database's namespace (the platform's own tables are refused
to everyone).

Values are bytes: shown as text when they are UTF-8, else as base64 and hex; written as
text, or as base64 for binary values.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final
from urllib.parse import quote, urlencode

import msgspec
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from micro import errors
from micro.durations import humanize, parse_duration
from micro.store.base import DEFAULT_TABLE, Record
from micro.web.app import Context, page
from micro.web.platform import Caller

__all__ = ["ROUTES"]

PAGE: Final = 50
"""Keys per page."""
HEX_BYTES: Final = 4096
"""How much of a binary value is shown in hex (base64 shows all of it)."""
_WHERE: Final = "micro.web"


def _table_url(database: str, table: str, **query: str) -> str:
    url = f"/store/{quote(database, safe='')}/{quote(table, safe='')}"
    wanted = {k: v for k, v in query.items() if v}
    return url + (f"?{urlencode(wanted)}" if wanted else "")


async def databases(context: Context) -> Response:
    """``/store``: the databases the account administers (its namespace's always)."""
    answer = await context.caller.call("store", "Store.Databases", {})
    found: list[str] = answer.get("databases") or []
    if context.session.namespace not in found:
        found = [context.session.namespace, *found]
    return context.render("store.html", databases=found)


async def tables(context: Context) -> Response:
    """``/store/{database}``: its tables (``?table=`` opens one, also a new one)."""
    database = context.request.path_params["database"]
    wanted = context.request.query_params.get("table", "").strip()
    if wanted:
        return RedirectResponse(_table_url(database, wanted), status_code=303)
    answer = await context.caller.within(database).call(
        "store", "Store.Tables", {"database": database}
    )
    return context.render(
        "store_tables.html",
        database=database,
        tables=answer.get("tables") or [],
        default_table=DEFAULT_TABLE,
    )


def _offset(text: str) -> int:
    try:
        return max(int(text), 0)
    except ValueError:
        return 0


async def _keys(
    context: Context, *, status: int = 200, error: str = "", form: dict[str, str] | None = None
) -> Response:
    params = context.request.path_params
    database, table = params["database"], params["table"]
    prefix = context.request.query_params.get("prefix", "")
    offset = _offset(context.request.query_params.get("offset", ""))
    options = {
        "database": database,
        "table": table,
        "prefix": prefix,
        "limit": PAGE + 1,  # one more than shown: is there a next page?
        "offset": offset,
    }
    answer = await _store(context).call("store", "Store.List", {"options": options})
    keys: list[str] = answer.get("keys") or []
    return context.render(
        "store_keys.html",
        status,
        database=database,
        table=table,
        prefix=prefix,
        keys=keys[:PAGE],
        offset=offset,
        previous=_table_url(database, table, prefix=prefix, offset=str(max(offset - PAGE, 0)))
        if offset
        else "",
        next=_table_url(database, table, prefix=prefix, offset=str(offset + PAGE))
        if len(keys) > PAGE
        else "",
        form=form or {},
        error=error,
    )


async def keys(context: Context) -> Response:
    """``/store/{database}/{table}``: its keys, ``?prefix=`` and ``?offset=`` paged, and
    the write form."""
    return await _keys(context)


def _record(form: Any) -> Record:
    """The record the write form asks for; BadRequest naming what is wrong."""
    key = str(form.get("key", ""))
    text = str(form.get("value", ""))
    if form.get("encoding") == "base64":
        try:
            value = base64.b64decode(text.strip(), validate=True)
        except binascii.Error:
            raise errors.BadRequest(_WHERE, "the value is not valid base64") from None
    else:
        value = text.encode()
    expiry = str(form.get("expiry", "")).strip()
    ttl = 0.0
    if expiry:
        try:
            ttl = parse_duration(expiry)
        except ValueError as exc:
            raise errors.BadRequest(_WHERE, f"invalid expiry: {exc} (e.g. 30s, 5m, 1h)") from None
    return Record(key=key, value=value, expiry=ttl)


def _store(context: Context) -> Caller:
    """The caller for the database of the page (calls act in its namespace)."""
    return context.caller.within(context.request.path_params["database"])


def _where(context: Context) -> dict[str, str]:
    params = context.request.path_params
    return {"database": params["database"], "table": params["table"]}


async def write(context: Context) -> Response:
    """``POST /store/{database}/{table}/write``: create or replace a record, then show it.
    Bad input is said on the form, which keeps what was typed."""
    form = await context.request.form()
    try:
        record = _record(form)
        await _store(context).call(
            "store",
            "Store.Write",
            {"record": msgspec.to_builtins(record), "options": _where(context)},
        )
    except errors.BadRequest as exc:
        shown = {k: str(form.get(k, "")) for k in ("key", "value", "expiry", "encoding")}
        return await _keys(context, status=exc.code, error=exc.detail, form=shown)
    where = _where(context)
    target = (
        _table_url(where["database"], where["table"]) + "/record?" + urlencode({"key": record.key})
    )
    return RedirectResponse(target, status_code=303)


def _shown(value: bytes) -> dict[str, str]:
    """A value for the page: its text, or base64 and (the start of) hex."""
    try:
        return {"text": value.decode()}
    except UnicodeDecodeError:
        return {
            "base64": base64.b64encode(value).decode(),
            "hex": value[:HEX_BYTES].hex(" "),
        }


async def record(context: Context) -> Response:
    """``/store/{database}/{table}/record?key=``: one record (404 when it is not there)."""
    key = context.request.query_params.get("key", "")
    if not key:
        raise errors.BadRequest(_WHERE, "which key? (?key=)")
    answer = await _store(context).call(
        "store", "Store.Read", {"key": key, "options": _where(context)}
    )
    found = msgspec.convert(answer.get("records") or [], list[Record])
    if not found:
        raise errors.NotFound(_WHERE, f"no record {key!r}")
    rec, where = found[0], _where(context)
    return context.render(
        "store_record.html",
        database=where["database"],
        table=where["table"],
        record=rec,
        value=_shown(rec.value),
        size=len(rec.value),
        truncated=len(rec.value) > HEX_BYTES,
        hex_bytes=HEX_BYTES,
        expires=humanize(rec.expiry) if rec.expiry else "",
        metadata=msgspec.json.encode(rec.metadata).decode() if rec.metadata else "",
    )


async def delete(context: Context) -> Response:
    """``POST /store/{database}/{table}/delete``: remove a record (missing is fine)."""
    key = str((await context.request.form()).get("key", ""))
    await _store(context).call("store", "Store.Delete", {"key": key, "options": _where(context)})
    where = _where(context)
    return RedirectResponse(_table_url(where["database"], where["table"]), status_code=303)


ROUTES = [
    Route("/store", page(databases)),
    Route("/store/{database}", page(tables)),
    Route("/store/{database}/{table}", page(keys)),
    Route("/store/{database}/{table}/record", page(record)),
    Route("/store/{database}/{table}/write", page(write), methods=["POST"]),
    Route("/store/{database}/{table}/delete", page(delete), methods=["POST"]),
]
