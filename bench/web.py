"""The dashboard's pages with 200 registered services: server-side render time per page.

    .venv/bin/python bench/web.py [--services 200] [--requests 50]

Target (issue "Web dashboard"): each page renders in <= 100 ms server-side with 200
registered services. Measured from a client on loopback (the time to the whole answer,
which is the server's time plus a loopback round trip), medians and p95 of ``--requests``
sequential requests per page, logged in as the admin. Side by side: ``GET /`` of the API
gateway (a tiny JSON answer through the same uvicorn set-up) as the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._harness import print_table, write_results
from bench._platform import micro, register_many, start_platform

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 100.0


def timed(session: requests.Session, url: str, count: int) -> list[float]:
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        response = session.get(url, allow_redirects=False, timeout=30)
        out.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
    return out


def log_in(web: str) -> requests.Session:
    """A session logged in as the admin through the login form (and its token)."""
    session = requests.Session()
    form = session.get(f"{web}/login", timeout=30)
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None, form.text
    data = {"username": "admin", "password": "bench", "namespace": "micro", "csrf": token[1]}
    # The dashboard's cookies are Secure (__Host-) on loopback, which Chromium sends to
    # http://127.0.0.1 but requests sends over HTTPS only: let it send them here too.
    for cookie in session.cookies:
        cookie.secure = False
    done = session.post(f"{web}/login", data=data, allow_redirects=False, timeout=30)
    assert done.status_code == 303, done.text
    for cookie in session.cookies:
        cookie.secure = False
    return session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    server, env, edges = start_platform(tempfile.mkdtemp(prefix="micro-bench-web-"))
    micro(env, "run", str(ROOT / "examples" / "helloworld"))
    web, api = f"http://{edges['web']}", f"http://{edges['api']}"
    try:
        asyncio.run(register_many(env, args.services))
        session = log_in(web)
        pages = [
            "/services",
            "/services/helloworld",
            "/runtime",
            "/store",
            "/config",
            "/events",
            "/accounts",
        ]
        rows = []
        results: dict[str, list[float]] = {}
        floor = timed(requests.Session(), f"{api}/", args.requests)
        results["api GET / (floor)"] = floor
        for path in pages:
            timed(session, f"{web}{path}", 3)  # warm up
            results[path] = timed(session, f"{web}{path}", args.requests)
        for name, values in results.items():
            median = statistics.median(values)
            p95 = sorted(values)[int(len(values) * 0.95) - 1]
            floor_row = name.endswith("(floor)")
            rows.append(
                {
                    "page": name,
                    "median_ms": round(median, 2),
                    "p95_ms": round(p95, 2),
                    "goal_ms": "-" if floor_row else TARGET_MS,
                    "ok": "-" if floor_row else ("yes" if p95 <= TARGET_MS else "NO"),
                }
            )
    finally:
        server.terminate()
        server.wait(timeout=60)
    print_table(
        f"dashboard pages with {args.services} more services ({args.requests} requests each)", rows
    )
    write_results("web", {"services": args.services, "pages_ms": results})


if __name__ == "__main__":
    main()
