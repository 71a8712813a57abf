"""A handler whose messages use every shape a generated client must type: nested and
recursive structs, optionals, enums and literals, maps, dates, bytes, renamed fields,
pydantic models and dataclasses, and every kind of endpoint."""

from __future__ import annotations

import datetime
import enum
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

import msgspec
import pydantic


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Tree(msgspec.Struct):
    """A node and its children: a type that contains itself."""

    name: str
    children: list[Tree] = []


class Order(msgspec.Struct, rename={"from_": "from"}):
    id: int
    from_: str
    items: list[str]
    note: str | None = None
    quantity: int = 1
    price: float = 0.5
    color: Color = Color.RED
    size: Literal["s", "m", "l"] = "m"
    tags: dict[str, int] = {}
    created: datetime.datetime | None = None
    ref: uuid.UUID | None = None
    blob: bytes = b""
    tree: Tree | None = None
    pair: tuple[int, str] | None = None


class Receipt(pydantic.BaseModel):
    order: int
    lines: list[str] = pydantic.Field(default_factory=list)


@dataclass
class Count:
    total: int = 0
    seen: list[int] = field(default_factory=list)


class Shapes:
    async def place(self, req: Order) -> Receipt:
        return Receipt(order=req.id, lines=req.items)

    async def ping(self) -> None:
        return None

    async def grow(self, req: Tree) -> AsyncIterator[Tree]:
        for child in req.children:
            yield child

    async def count(self, reqs: AsyncIterator[Count]) -> Count:
        total = Count()
        async for req in reqs:
            total.total += req.total
            total.seen.append(req.total)
        return total

    async def echo(self, reqs: AsyncIterator[Order]) -> AsyncIterator[Order]:
        async for req in reqs:
            yield req
