"""The attacker's web site: pages served from another port of 127.0.0.1, the dashboard's
own host, as any local program or a service of the platform could serve them.

Another port is another origin but the same site, and cookies know nothing of ports: such
a page sends the dashboard's SameSite=Strict cookies with its requests, and the cookies it
sets (``Set-Cookie`` on its own responses) reach the dashboard too ("cookie tossing").
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape


@dataclass
class Site:
    """Pages by path: their HTML, and the cookies each sets."""

    port: int = 0
    pages: dict[str, tuple[str, list[str]]] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def page(self, path: str, html: str, *, cookies: tuple[str, ...] = ()) -> str:
        """Serve ``html`` at ``path``, setting ``cookies`` (``Set-Cookie`` values); its URL."""
        self.pages[path] = (html, list(cookies))
        return self.origin + path


def autopost(action: str, fields: dict[str, str]) -> str:
    """A page whose form posts ``fields`` to ``action`` as soon as it loads."""
    inputs = "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items()
    )
    return (
        f'<form method="post" action="{escape(action)}">{inputs}</form>'
        "<script>document.forms[0].submit()</script>"
    )


def tossed(name: str, value: str) -> tuple[str, ...]:
    """``Set-Cookie`` values planting cookie ``name`` for the whole host, under the plain
    name and the ``__Host-`` one (Chromium keeps Secure cookies on http://127.0.0.1)."""
    return (f"{name}={value}; Path=/", f"__Host-{name}={value}; Path=/; Secure")


@contextmanager
def attacker_site() -> Iterator[Site]:
    """A :class:`Site` listening on 127.0.0.1 (a free port) until the block ends."""
    site = Site()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            html, cookies = site.pages.get(self.path.partition("?")[0], ("not here", []))
            body = f"<!doctype html><html><body>{html}</body></html>".encode()
            self.send_response(200)
            for cookie in cookies:
                self.send_header("Set-Cookie", cookie)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
