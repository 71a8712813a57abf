"""The SQL of the embedded event streams: the schema and every operation, each run on a
connection inside one transaction by :mod:`micro.events._sql`'s writer thread.

Tables: ``topics`` (the last sequence given, so retention never reuses one), ``events``,
``groups`` (each group's next sequence) and ``pending`` (deliveries awaiting their ack, with
attempt and deadline), so positions and unacked events survive restarts.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from typing import Any, Final

import msgspec

from micro.events.base import DEAD_LETTER_SUFFIX, Event, Group

_BATCH: Final = 1024
_EPHEMERAL: Final = "~"
_encode_metadata = msgspec.json.Encoder().encode
_decode_metadata = msgspec.json.Decoder(dict[str, str]).decode

_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS topics (namespace TEXT NOT NULL, topic TEXT NOT NULL, "
    "last INTEGER NOT NULL, PRIMARY KEY (namespace, topic)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS events (namespace TEXT NOT NULL, topic TEXT NOT NULL, "
    "sequence INTEGER NOT NULL, id TEXT NOT NULL, timestamp REAL NOT NULL, "
    "payload BLOB NOT NULL, metadata TEXT)",
    "CREATE UNIQUE INDEX IF NOT EXISTS events_seq ON events (namespace, topic, sequence)",
    "CREATE INDEX IF NOT EXISTS events_time ON events (namespace, topic, timestamp)",
    'CREATE TABLE IF NOT EXISTS groups (namespace TEXT NOT NULL, topic TEXT NOT NULL, "group" '
    'TEXT NOT NULL, next INTEGER NOT NULL, PRIMARY KEY (namespace, topic, "group")) '
    "WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS pending (namespace TEXT NOT NULL, topic TEXT NOT NULL, "
    '"group" TEXT NOT NULL, sequence INTEGER NOT NULL, attempt INTEGER NOT NULL, '
    'deadline REAL NOT NULL, PRIMARY KEY (namespace, topic, "group", sequence)) WITHOUT ROWID',
)

_COLUMNS: Final = "sequence, id, timestamp, payload, metadata"


def _event(topic: str, row: tuple[Any, ...]) -> Event:
    seq, id_, ts, payload, metadata = row
    return Event(
        id=id_,
        topic=topic,
        sequence=seq,
        timestamp=ts,
        payload=bytes(payload),
        metadata=_decode_metadata(metadata) if metadata else {},
    )


# --- the SQL, run on the stream's thread inside a transaction -------------------------------


def _append(
    conn: sqlite3.Connection,
    ns: str,
    topic: str,
    payload: bytes,
    metadata: dict[str, str],
    timestamp: float,
) -> Event:
    row = conn.execute(
        "SELECT last FROM topics WHERE namespace = ? AND topic = ?", (ns, topic)
    ).fetchone()
    seq = (row[0] if row else 0) + 1
    conn.execute(
        "INSERT INTO topics (namespace, topic, last) VALUES (?, ?, ?) "
        "ON CONFLICT (namespace, topic) DO UPDATE SET last = excluded.last",
        (ns, topic, seq),
    )
    event = Event(
        id=str(uuid.uuid4()),
        topic=topic,
        sequence=seq,
        timestamp=timestamp,
        payload=payload,
        metadata=metadata,
    )
    conn.execute(
        f"INSERT INTO events (namespace, topic, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            ns,
            topic,
            seq,
            event.id,
            timestamp,
            payload,
            _encode_metadata(metadata).decode() if metadata else None,
        ),
    )
    return event


def _start(conn: sqlite3.Connection, ns: str, topic: str, offset: float | int | None) -> int:
    """The first sequence for a start at ``offset`` (an int sequence, a float time, None:
    the end)."""
    row = conn.execute(
        "SELECT last FROM topics WHERE namespace = ? AND topic = ?", (ns, topic)
    ).fetchone()
    end = (row[0] if row else 0) + 1
    if offset is None:
        return end
    if isinstance(offset, int):
        return max(offset, 1)
    first = conn.execute(
        "SELECT min(sequence) FROM events WHERE namespace = ? AND topic = ? AND timestamp >= ?",
        (ns, topic, offset),
    ).fetchone()
    return first[0] if first and first[0] is not None else end


def _read(
    conn: sqlite3.Connection, ns: str, topic: str, offset: float | int | None, limit: int
) -> list[Event]:
    start = 1 if offset is None else _start(conn, ns, topic, offset)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM events WHERE namespace = ? AND topic = ? AND sequence >= ? "
        "ORDER BY sequence LIMIT ?",
        (ns, topic, start, limit or -1),
    ).fetchall()
    return [_event(topic, row) for row in rows]


def _topics(conn: sqlite3.Connection, ns: str) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT topic FROM events WHERE namespace = ? ORDER BY topic", (ns,)
    ).fetchall()
    return [topic for (topic,) in rows]


_Claim = tuple[list[tuple[Event, int]], float | None, list[str]]

CLAIM_BATCH = 32
"""New events a consumer that acks takes in one transaction (then hands out one by one)."""


def _claim(
    conn: sqlite3.Connection,
    ns: str,
    topic: str,
    group: str,
    offset: float | int | None,
    auto_ack: bool,
    ack_wait: float,
    retry_limit: int | None,
) -> _Claim:
    """(claimed (event, attempt) pairs, earliest pending deadline when none, topics to wake)."""
    now = time.time()
    woken: list[str] = []
    key = (ns, topic, group)
    row = conn.execute(
        'SELECT next FROM groups WHERE namespace = ? AND topic = ? AND "group" = ?', key
    ).fetchone()
    if row is None:
        nxt = _start(conn, ns, topic, offset)
        conn.execute(
            'INSERT INTO groups (namespace, topic, "group", next) VALUES (?, ?, ?, ?)',
            (*key, nxt),
        )
    else:
        nxt = row[0]
    while True:
        due = conn.execute(
            'SELECT sequence, attempt FROM pending WHERE namespace = ? AND topic = ? AND "group" '
            "= ? AND deadline <= ? ORDER BY sequence LIMIT 1",
            (*key, now),
        ).fetchone()
        if due is None:
            break
        seq, attempt = due
        found = conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE namespace = ? AND topic = ? AND sequence = ?",
            (ns, topic, seq),
        ).fetchone()
        attempt += 1
        if found is None or (retry_limit is not None and attempt > retry_limit + 1):
            conn.execute(
                'DELETE FROM pending WHERE namespace = ? AND topic = ? AND "group" = ? '
                "AND sequence = ?",
                (*key, seq),
            )
            if found is not None:
                woken.append(_bury(conn, ns, topic, found))
            continue
        conn.execute(
            'UPDATE pending SET attempt = ?, deadline = ? WHERE namespace = ? AND topic = ? AND "group" '
            "= ? AND sequence = ?",
            (attempt, now + ack_wait, *key, seq),
        )
        return [(_event(topic, found), attempt)], None, woken
    # New events: a batch at a time when they must be acked (each stays pending until then),
    # one at a time with auto-ack (a claimed event counts as handled: none may sit in a buffer).
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM events WHERE namespace = ? AND topic = ? AND sequence >= ? "
        "ORDER BY sequence LIMIT ?",
        (ns, topic, nxt, 1 if auto_ack else CLAIM_BATCH),
    ).fetchall()
    if rows:
        events = [_event(topic, row) for row in rows]
        conn.execute(
            'UPDATE groups SET next = ? WHERE namespace = ? AND topic = ? AND "group" = ?',
            (events[-1].sequence + 1, *key),
        )
        if not auto_ack:
            conn.executemany(
                'INSERT OR REPLACE INTO pending (namespace, topic, "group", sequence, attempt, '
                "deadline) VALUES (?, ?, ?, ?, 1, ?)",
                [(*key, event.sequence, now + ack_wait) for event in events],
            )
        return [(event, 1) for event in events], None, woken
    earliest = conn.execute(
        'SELECT min(deadline) FROM pending WHERE namespace = ? AND topic = ? AND "group" = ?', key
    ).fetchone()
    return [], earliest[0] if earliest else None, woken


def _bury(conn: sqlite3.Connection, ns: str, topic: str, found: tuple[Any, ...]) -> str:
    """Append an event that ran out of retries to the dead-letter topic; that topic."""
    event = _event(topic, found)
    dead = topic + DEAD_LETTER_SUFFIX
    meta = {**event.metadata, "micro-topic": topic, "micro-sequence": str(event.sequence)}
    _append(conn, ns, dead, event.payload, meta, time.time())
    return dead


def _ack(
    conn: sqlite3.Connection,
    ns: str,
    topic: str,
    group: str,
    seq: int,
    success: bool,
    retry_limit: int | None,
) -> list[str]:
    """Ack, or nack (due again now, or dead past the retry limit); the topics to wake."""
    where = 'namespace = ? AND topic = ? AND "group" = ? AND sequence = ?'
    key = (ns, topic, group, seq)
    if success:
        conn.execute(f"DELETE FROM pending WHERE {where}", key)
        return []
    row = conn.execute(f"SELECT attempt FROM pending WHERE {where}", key).fetchone()
    if row is None:
        return []
    if retry_limit is not None and row[0] + 1 > retry_limit + 1:
        conn.execute(f"DELETE FROM pending WHERE {where}", key)
        found = conn.execute(
            f"SELECT {_COLUMNS} FROM events WHERE namespace = ? AND topic = ? AND sequence = ?",
            (ns, topic, seq),
        ).fetchone()
        return [] if found is None else [_bury(conn, ns, topic, found)]
    conn.execute(f"UPDATE pending SET deadline = ? WHERE {where}", (time.time(), *key))
    return [topic]


def _release(
    conn: sqlite3.Connection, ns: str, topic: str, group: str, claimed: list[tuple[int, int]]
) -> None:
    """Give back events a consumer claimed but never handed out: due again at once, with
    the attempt they had, so the next consumer sees them as if never delivered."""
    conn.executemany(
        'UPDATE pending SET attempt = ?, deadline = 0 WHERE namespace = ? AND topic = ? AND "group" '
        "= ? AND sequence = ?",
        [(attempt - 1, ns, topic, group, seq) for seq, attempt in claimed],
    )


def _drop_group(conn: sqlite3.Connection, ns: str, topic: str, group: str) -> None:
    key = (ns, topic, group)
    conn.execute('DELETE FROM groups WHERE namespace = ? AND topic = ? AND "group" = ?', key)
    conn.execute('DELETE FROM pending WHERE namespace = ? AND topic = ? AND "group" = ?', key)


def _groups(conn: sqlite3.Connection, ns: str, topic: str) -> list[Group]:
    """The named groups of a topic: next sequence, unacked deliveries, events not given."""
    rows = conn.execute(
        'SELECT g."group", g.next, '
        "(SELECT count(*) FROM pending AS p WHERE p.namespace = g.namespace AND p.topic = g.topic "
        'AND p."group" = g."group"), '
        "(SELECT count(*) FROM events AS e WHERE e.namespace = g.namespace AND e.topic = g.topic "
        "AND e.sequence >= g.next) "
        'FROM groups AS g WHERE g.namespace = ? AND g.topic = ? AND substr(g."group", 1, 1) != ? '
        'ORDER BY g."group"',
        (ns, topic, _EPHEMERAL),
    ).fetchall()
    return [Group(group, nxt, pending, lag) for group, nxt, pending, lag in rows]


def _reset(
    conn: sqlite3.Connection, ns: str, topic: str, group: str, offset: float | int | None
) -> Group:
    """Move a group (made if new) to ``offset`` and forget its unacked deliveries."""
    nxt = _start(conn, ns, topic, offset)
    conn.execute(
        'INSERT INTO groups (namespace, topic, "group", next) VALUES (?, ?, ?, ?) '
        'ON CONFLICT (namespace, topic, "group") DO UPDATE SET next = excluded.next',
        (ns, topic, group, nxt),
    )
    conn.execute(
        'DELETE FROM pending WHERE namespace = ? AND topic = ? AND "group" = ?', (ns, topic, group)
    )
    [found] = [g for g in _groups(conn, ns, topic) if g.group == group]
    return found


def _sweep(conn: sqlite3.Connection, max_age: float | None, max_events: int | None) -> int:
    deleted = 0
    if max_age is not None:
        cur = conn.execute("DELETE FROM events WHERE timestamp < ?", (time.time() - max_age,))
        deleted += max(cur.rowcount, 0)
    if max_events is not None:
        cur = conn.execute(
            "DELETE FROM events WHERE rowid IN (SELECT e.rowid FROM events e JOIN topics t "
            "ON e.namespace = t.namespace AND e.topic = t.topic WHERE e.sequence <= t.last - ?)",
            (max_events,),
        )
        deleted += max(cur.rowcount, 0)
    return deleted


# --- the thread ------------------------------------------------------------------------------
