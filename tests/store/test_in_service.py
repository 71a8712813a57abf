"""micro.store from inside a service: no set-up, the service's namespace and table."""

from __future__ import annotations

import msgspec

import micro
import micro.store
from micro.store.client import RPCStore
from micro.testing import MicroServerProcess, serving


class Note(msgspec.Struct):
    title: str
    stars: int = 0


class Notes:
    async def save(self, note: Note) -> dict[str, str]:
        await micro.store.write_value(f"note/{note.title}", note)
        await micro.store.write("last", note.title, expiry=60)
        return {"saved": note.title}

    async def load(self, req: dict[str, str]) -> Note:
        return await micro.store.read_value(f"note/{req['title']}", Note)


async def test_service_store_defaults_to_its_namespace_and_name(
    micro_env: MicroServerProcess,
) -> None:
    service = micro.Service("notes")
    service.handle(Notes())
    async with serving(service):
        await micro.client.call("notes", "Notes.Save", {"title": "a", "stars": 3})
        loaded = await micro.client.call("notes", "Notes.Load", {"title": "a"})
    assert loaded == {"title": "a", "stars": 3}
    outside = RPCStore(micro.client.new_client())
    [record] = await outside.read("note/a", database="micro", table="notes")
    assert msgspec.json.decode(record.value) == {"title": "a", "stars": 3}
    [last] = await outside.read("last", database="micro", table="notes")
    assert last.value == b"a"
    assert 0 < last.expiry <= 60
