"""A service's outbox table (``<table>.outbox``) is its own as its table is: the store
handler lets the service's account write both, and no other service's."""

from __future__ import annotations

import pytest

from micro import errors
from micro.auth.base import Account
from micro.rpc import context
from micro.store.base import Record, Write
from micro.store.handler import Store
from micro.store.memory import MemoryStore
from micro.store.proto import CommitOptions, CommitRequest, WriteOptions, WriteRequest


def _as(account: Account) -> None:
    call = context.Call("store", "Store.Commit", {"micro-namespace": "shop"}, "application/json")
    call.account, call.checked = account, True
    context._set(call)


async def test_a_service_account_uses_its_table_and_its_outbox_only() -> None:
    handler = Store(MemoryStore())
    orders = Account("orders-svc", type="service", issuer="shop", metadata={"service": "orders"})
    _as(orders)
    mine = [Write(Record("o/1", b"x"), "orders"), Write(Record("e/1", b"y"), "orders.outbox")]
    await handler.commit(CommitRequest(mine, CommitOptions("shop")))
    for table in ("billing", "billing.outbox"):
        with pytest.raises(errors.Forbidden):
            await handler.commit(CommitRequest([Write(Record("k", b"z"), table)]))
        with pytest.raises(errors.Forbidden):
            await handler.write(WriteRequest(Record("k", b"z"), WriteOptions("shop", table)))
    # The platform's own tables stay reserved, their outbox names too.
    _as(Account("root", issuer="micro", scopes=["admin"]))
    context.current().metadata["micro-namespace"] = "micro"  # type: ignore[union-attr]
    with pytest.raises(errors.Forbidden):
        await handler.commit(CommitRequest([Write(Record("k", b"z"), "auth.outbox")]))
