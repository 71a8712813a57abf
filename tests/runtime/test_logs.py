"""Log files: rotation, reading the tail across files, followers."""

from __future__ import annotations

from pathlib import Path

from micro.runtime.base import LogRecord
from micro.runtime.logs import LogFile, LogHub, read_tail


def record(i: int, instance: str = "0") -> LogRecord:
    return LogRecord(1_700_000_000 + i, f"line {i}", {"instance": instance})


def test_rotation_keeps_one_old_file_and_the_tail_spans_both(tmp_path: Path) -> None:
    log = LogFile(tmp_path / "0.log", max_bytes=200)
    for i in range(20):
        log.write(record(i))
    log.close()
    assert (tmp_path / "0.log.1").exists()
    assert (tmp_path / "0.log").stat().st_size <= 200 + 60
    tail = read_tail([tmp_path / "0.log"], 5, "latest")
    assert [r.message for r in tail] == [f"line {i}" for i in range(15, 20)]
    assert tail[0].metadata == {"instance": "0", "version": "latest"}
    # asking for more than both files hold gives what they hold, oldest first
    everything = read_tail([tmp_path / "0.log"], 1000, "latest")
    assert everything[-1].message == "line 19"
    assert [r.timestamp for r in everything] == sorted(r.timestamp for r in everything)


def test_tail_merges_instances_by_time(tmp_path: Path) -> None:
    a, b = LogFile(tmp_path / "0.log"), LogFile(tmp_path / "1.log")
    for i in range(6):
        (a if i % 2 else b).write(record(i, instance=str(i % 2)))
    a.close()
    b.close()
    tail = read_tail([tmp_path / "0.log", tmp_path / "1.log", tmp_path / "none.log"], 4, "v")
    assert [r.message for r in tail] == ["line 2", "line 3", "line 4", "line 5"]
    assert read_tail([tmp_path / "0.log"], 0, "v") == []


def test_a_message_with_newlines_stays_one_record(tmp_path: Path) -> None:
    log = LogFile(tmp_path / "0.log")
    log.write(LogRecord(1.0, "two\nlines", {"instance": "0"}))
    log.close()
    [only] = read_tail([tmp_path / "0.log"], 10, "v")
    assert only.message == "two lines"


async def test_followers_get_the_backlog_then_new_records_of_their_version() -> None:
    hub = LogHub()
    stream = hub.stream([record(0)], follow=True, version="v2")
    hub.publish(LogRecord(1.0, "other version", {"version": "v1"}))
    hub.publish(LogRecord(2.0, "mine", {"version": "v2"}))
    assert (await stream.next()).message == "line 0"
    assert (await stream.next()).message == "mine"
    hub.close()  # the service is gone: the stream ends
    received = [r async for r in stream]
    assert received == []
