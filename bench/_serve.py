"""Server-side helpers shared by every benchmark server process.

Stdlib only, on purpose: servers may run in another interpreter or venv (the
Nameko baseline lives in ``bench/.venv-nameko``) and must still be able to
import this module.

Two duties every bench server has:

* announce readiness with one ``READY <host:port>`` line on stdout, which
  ``bench._harness.start_server`` waits for;
* never outlive the driver: a watchdog exits the process if its parent dies or
  a hard lifetime runs out, so a crashed driver cannot leave load generators
  or listeners behind.
"""

from __future__ import annotations

import ipaddress
import os
import sys
import threading
import time
from collections.abc import Callable

DEFAULT_LIFETIME_S = 900.0


def check_loopback(host: str) -> str:
    """Return ``host`` if it is a loopback address, else raise ValueError.

    Benchmarks here must only ever talk to this machine.
    """
    if host == "localhost":
        return host
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"benchmarks only run on loopback, got {host!r}")
    return host


def announce_ready(host: str, port: int) -> None:
    """Print the READY line the harness waits for, and flush it."""
    sys.stdout.write(f"READY {host}:{port}\n")
    sys.stdout.flush()


def start_watchdog(
    lifetime_s: float = DEFAULT_LIFETIME_S,
    poll_s: float = 0.5,
    before_exit: Callable[[], object] | None = None,
) -> None:
    """Exit hard when the parent process goes away or ``lifetime_s`` passes, after
    ``before_exit`` (a server that runs children stops them there).

    A plain daemon thread (green under eventlet's monkey patching, which is
    fine: it only sleeps and polls).
    """
    parent = os.getppid()
    deadline = time.monotonic() + lifetime_s

    def watch() -> None:
        while True:
            time.sleep(poll_s)
            if os.getppid() != parent or time.monotonic() > deadline:
                if before_exit is not None:
                    before_exit()
                os._exit(0)

    threading.Thread(target=watch, name="bench-watchdog", daemon=True).start()
