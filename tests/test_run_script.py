"""The README's first command, ./scripts/run, brings up a server with helloworld callable."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

from tests._support import ROOT, free_port


def test_scripts_run_serves_helloworld(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MICRO_")}
    env.update(MICRO_HOME=str(tmp_path), MICRO_PROXY_ADDRESS=address, MICRO_PROXY=address)
    proc = subprocess.Popen(
        [str(ROOT / "scripts" / "run")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    try:
        while True:
            line = lines.get(timeout=120)
            assert line is not None, "".join(seen)
            seen.append(line)
            if "Registered [service] helloworld" in line:
                break
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "micro",
                "call",
                "helloworld",
                "Helloworld.Call",
                '{"name":"John"}',
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.stdout == '{\n\t"msg": "Hello John"\n}\n', out.stderr
        assert "Successfully logged in." in "".join(seen)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
