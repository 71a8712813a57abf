"""A monorepo for the runtime's tests: two services sharing code, and a git HTTP server
that wants a token (git's own ``http-backend`` behind a tiny server on loopback)."""

from __future__ import annotations

import base64
import http.server
import os
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests._support import git, write

SERVICE = textwrap.dedent(
    """
    import msgspec

    import micro
    from {module} import greeting


    class Empty(msgspec.Struct):
        pass


    class Text(msgspec.Struct):
        text: str


    class {handler}:
        async def greet(self, req: Empty) -> Text:
            return Text(greeting("{name}"))


    service = micro.Service("{name}")
    service.handle({handler}())
    service.run()
    """
)


@dataclass(frozen=True)
class Monorepo:
    """A bare repository (``bare``, named ``mono.git``) and a work tree (``work``)."""

    bare: Path
    work: Path


def make_monorepo(root: Path) -> Monorepo:
    """``services/hello`` depends on the local package ``libs/shared`` (a path in its
    requirements.txt); ``services/bye`` imports ``common`` from the root's ``src/``.
    Tag ``v1`` says "v1", branch ``dev`` says "dev"."""
    work = root / "work"
    write(
        work / "services/hello/main.py",
        SERVICE.format(module="shared", handler="Hello", name="hello"),
    )
    write(work / "services/hello/requirements.txt", "../../libs/shared\n")
    write(work / "services/bye/main.py", SERVICE.format(module="common", handler="Bye", name="bye"))
    write(
        work / "libs/shared/pyproject.toml",
        '[project]\nname = "shared"\nversion = "0"\ndependencies = []\n',
    )
    shared = 'def greeting(who: str) -> str:\n    return f"{who} from {VERSION}"\n'
    write(work / "libs/shared/src/shared/__init__.py", 'VERSION = "v1"\n' + shared)
    write(work / "src/common/__init__.py", 'VERSION = "v1"\n' + shared)
    git(work, "init", "-q", "-b", "main")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "v1")
    git(work, "tag", "v1")
    git(work, "checkout", "-q", "-b", "dev")
    for path in ("libs/shared/src/shared/__init__.py", "src/common/__init__.py"):
        write(work / path, 'VERSION = "dev"\n' + shared)
    git(work, "commit", "-q", "-am", "dev")
    git(work, "checkout", "-q", "main")
    bare = root / "mono.git"
    git(root, "clone", "-q", "--bare", str(work), str(bare))
    return Monorepo(bare, work)


class _Backend(http.server.BaseHTTPRequestHandler):
    """``git http-backend`` as CGI, for requests that carry the token."""

    root: Path
    token: str
    seen: list[str]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._cgi()

    def do_POST(self) -> None:
        self._cgi()

    def _cgi(self) -> None:
        auth = self.headers.get("Authorization", "")
        self.seen.append(auth)
        user_token = base64.b64decode(auth.removeprefix("Basic ")).decode() if auth else ""
        if user_token.partition(":")[2] != self.token:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "tester",
            "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60
        ).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(": ")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@contextmanager
def git_http_server(root: Path, token: str) -> Iterator[tuple[str, list[str]]]:
    """Serve the repositories under ``root`` at ``http://127.0.0.1:<port>/``, to requests
    with HTTP basic auth whose password is ``token``; the base URL and the
    Authorization headers seen."""
    seen: list[str] = []
    handler = type("Backend", (_Backend,), {"root": root, "token": token, "seen": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
