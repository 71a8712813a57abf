"""A keep-alive HTTP client for the attacks that send thousands of requests, and the
server's memory as the operating system sees it."""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit

import psutil

from micro.testing import MicroServerProcess


class Client:
    """Requests over one kept-alive connection, dialled again whenever the server closed it."""

    def __init__(self, base: str, timeout: float = 30.0) -> None:
        parts = urlsplit(base)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """(status, body) of one request."""
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
            try:
                self._conn.request(method, path, body=body, headers=headers or {})
                response = self._conn.getresponse()
                data = response.read()
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                self.close()
            return response.status, data
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def rss(server: MicroServerProcess) -> int:
    """The resident memory of the ``micro server`` process, in bytes."""
    return int(psutil.Process(server.process.pid).memory_info().rss)


MIB = 1024 * 1024
