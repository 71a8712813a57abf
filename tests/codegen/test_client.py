"""micro gen client: a typed client module that type-checks, round-trips every shape of
message, and calls a real service, the same whether read from the registry or the module."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import msgspec
from tests.codegen import shapes

import micro
from micro.codegen import endpoints_from, load_module, render
from micro.testing import MicroNamespace, serving, wait_for_service

SHAPES = Path(shapes.__file__)


def generated(tmp_path: Path, text: str, name: str = "shapes_client") -> ModuleType:
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # msgspec resolves the postponed annotations through it
    spec.loader.exec_module(module)
    return module


def from_module() -> str:
    return render("shapes", endpoints_from(load_module(SHAPES)), source="tests/codegen/shapes.py")


def test_the_module_passes_mypy_strict_and_ruff(tmp_path: Path) -> None:
    path = tmp_path / "shapes_client.py"
    path.write_text(from_module())
    for tool in (
        ["mypy", "--strict", "--no-incremental", str(path)],
        ["ruff", "check", "--no-cache", "--select", "E,F,W,I,B,UP,SIM,RUF,RET,C4", str(path)],
        ["ruff", "format", "--check", "--no-cache", str(path)],
    ):
        done = subprocess.run(
            [sys.executable, "-m", *tool], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_messages_round_trip_as_the_services_own_types(tmp_path: Path) -> None:
    client = generated(tmp_path, from_module())
    order = shapes.Order(
        id=1,
        from_="shop",
        items=["a"],
        tags={"x": 1},
        color=shapes.Color.GREEN,
        tree=shapes.Tree("root", [shapes.Tree("leaf")]),
        pair=(1, "b"),
    )
    wire = msgspec.json.encode(order)
    mine = msgspec.json.decode(wire, type=client.Order)
    assert mine.from_ == "shop"
    assert mine.tree.children[0].name == "leaf"
    assert msgspec.json.decode(msgspec.json.encode(mine)) == msgspec.json.decode(wire)
    # A field with a default the schema cannot say is left out, for the service to fill in.
    assert msgspec.json.encode(client.Receipt(order=1)) == b'{"order":1}'
    assert [m for m in dir(client.ShapesClient) if not m.startswith("_")] == [
        "count",
        "echo",
        "grow",
        "ping",
        "place",
    ]


def test_a_handler_module_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import nowhere_to_be_found\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "micro",
            "gen",
            "client",
            "x",
            "--from",
            str(tmp_path / "broken.py"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    assert "ModuleNotFoundError: No module named 'nowhere_to_be_found'" in done.stderr


async def test_the_registry_gives_the_same_client_and_it_calls_the_service(
    micro_namespace_env: MicroNamespace, tmp_path: Path
) -> None:
    service = micro.Service("shapes")
    service.handle(shapes.Shapes())
    async with serving(service):
        await wait_for_service("shapes", domain=micro_namespace_env.name)
        done = micro_namespace_env.micro("gen", "client", "shapes")
        assert done.returncode == 0, done.stderr
        assert _body(done.stdout) == _body(from_module())
        await _use(generated(tmp_path, done.stdout, "shapes_registry_client"))


def _body(text: str) -> str:
    """The module after its docstring, which says where the endpoints were read."""
    return text.split('"""', 2)[2]


async def _use(client: Any) -> None:
    shapes_client = client.ShapesClient()
    receipt = await shapes_client.place(client.Order(id=7, from_="x", items=["a", "b"]))
    assert (receipt.order, receipt.lines) == (7, ["a", "b"])
    assert await shapes_client.ping() is None
    tree = client.Tree(name="root", children=[client.Tree(name="a"), client.Tree(name="b")])
    assert [t.name async for t in shapes_client.grow(tree)] == ["a", "b"]

    async def counts() -> AsyncIterator[Any]:
        for n in (1, 2, 3):
            yield client.Count(total=n)

    total = await shapes_client.count(counts())
    assert (total.total, total.seen) == (6, [1, 2, 3])

    async def orders() -> AsyncIterator[Any]:
        for n in (1, 2):
            yield client.Order(id=n, from_="y", items=[])

    assert [o.id async for o in shapes_client.echo(orders())] == [1, 2]


def test_a_service_not_in_the_registry_is_exit_4(micro_namespace: MicroNamespace) -> None:
    done = micro_namespace.micro("gen", "client", "nothing-here")
    assert done.returncode == 4
    assert 'Service "nothing-here" not found' in done.stderr
