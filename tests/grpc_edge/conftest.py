"""Fixtures for the gRPC edge's tests: a foreign client (Node.js grpc-js) and protobuf
classes generated from greeter.proto with grpcio-tools' protoc."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from tests._support import backend_missing

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "client.js"
NPM_FILES = ("package.json", "package-lock.json")
NPM_TIMEOUT = 300.0

NodeClient = Callable[..., list[dict[str, Any]]]


def _node_modules(cache: Path) -> Path:
    """The folder of grpc-js and its dependencies, installed once per content of
    package.json/package-lock.json under ``cache`` (which git ignores)."""
    digest = hashlib.sha256(b"".join((HERE / name).read_bytes() for name in NPM_FILES))
    target = cache / f"node-{digest.hexdigest()[:12]}"
    if (target / "node_modules" / "@grpc" / "grpc-js").is_dir():
        return target / "node_modules"
    # Install beside it, then rename: a concurrent run sees a whole install or none.
    staging = cache / f"{target.name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in NPM_FILES:
        shutil.copy(HERE / name, staging / name)
    try:
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(staging)],
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        backend_missing(f"npm install of @grpc/grpc-js took over {NPM_TIMEOUT:.0f}s")
    if done.returncode != 0:
        backend_missing(f"npm install of @grpc/grpc-js failed: {done.stderr.strip()[-2000:]}")
    try:
        staging.rename(target)
    except OSError:  # another run installed it first
        shutil.rmtree(staging, ignore_errors=True)
    return target / "node_modules"


@pytest.fixture(scope="session")
def node_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> NodeClient:
    """Runs client.js: ``node_client(target, shape, method, request, metadata=None,
    deadline_ms=10000)`` -> the JSON lines it printed (responses; an error is the last,
    ``{"code": "NOT_FOUND", "details": ..., "micro_error": ...}``)."""
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        backend_missing(f"Node.js is not installed ({' and '.join(missing)} not found)")
    cache = getattr(request.config, "cache", None)  # None under -p no:cacheprovider
    root = cache.mkdir("micro-grpc-node") if cache is not None else tmp_path_factory.mktemp("node")
    env = dict(os.environ, NODE_PATH=str(_node_modules(root)))

    def run(
        target: str,
        shape: str,
        method: str,
        body: Any,
        metadata: dict[str, str] | None = None,
        deadline_ms: int = 10_000,
    ) -> list[dict[str, Any]]:
        args = [
            target,
            shape,
            method,
            json.dumps(body),
            json.dumps(metadata or {}),
            str(deadline_ms),
        ]
        done = subprocess.run(
            ["node", str(CLIENT), *args], capture_output=True, text=True, env=env, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()]

    return run


@pytest.fixture(scope="session")
def greeter_pb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ModuleType, ModuleType]:
    """(folder, greeter_pb2, greeter_pb2_grpc): classes generated from greeter.proto now, with
    grpcio-tools' protoc, into a folder a service can have on its ``PYTHONPATH``."""
    try:
        from grpc_tools import protoc
    except ImportError:
        backend_missing("grpcio-tools is not installed (a dev dependency): no protoc")
    out = tmp_path_factory.mktemp("greeter_pb")
    well_known = Path(protoc.__file__).parent / "_proto"  # timestamp.proto and the like
    status = protoc.main(
        ["protoc", f"-I{HERE}", f"-I{well_known}", f"--python_out={out}",
         f"--grpc_python_out={out}", "greeter.proto"]
    )  # fmt: skip
    assert status == 0, "protoc failed on greeter.proto"
    return out, _load(out, "greeter_pb2"), _load(out, "greeter_pb2_grpc")


def _load(folder: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # greeter_pb2_grpc imports greeter_pb2 by name
    spec.loader.exec_module(module)
    return module
