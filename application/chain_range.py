"""Recompute the hash chain over one range of a SQLite event store (a worker of ``tuohu audit verify``).

    python chain_range.py DB_PATH TABLE AFTER UPTO START_LINK_HEX

Reads the stored events with ``AFTER < rowid <= UPTO`` in order and prints one
JSON object: ``{"link": hex, "rows": n, "last": position or null}`` — the link
after the last event, how many events were read and the last position. The link
rule (:func:`link`) is defined here, with the standard library alone, so that
:class:`application.chain.AuditChain` can start this file as a plain subprocess
(safe from a threaded server, and nothing of the caller's main module is imported
again), one per range; :mod:`application.chain` imports it from here. The loops
inline it: one call per stored event is the cost of a check.

The rows are read with APSW when it is installed (a dependency of tuohu): it
hands rows to Python about a quarter faster than the standard ``sqlite3``
module, and reading is half of a check. Without it, ``sqlite3`` reads the same
bytes (text columns as their stored UTF-8 bytes in both).
"""

from __future__ import annotations

import hashlib
import json
import sys

PAGE = 5000


def link(prev: bytes, position: int, originator_id: bytes, version: int, topic: bytes, state: bytes) -> bytes:
    """The chain link of one stored event after ``prev`` (the rule in :mod:`application.chain`)."""
    return hashlib.sha256(b"%b%d:%d:%b:%d:%d:%b:%d:%b" % (prev, position, len(originator_id), originator_id, version,
                                                          len(topic), topic, len(state), state)).digest()


def _select(table: str) -> str:
    # CAST AS BLOB: the text columns as their stored bytes (what the chain hashes), with either module.
    return (f"SELECT rowid, CAST(originator_id AS BLOB), originator_version, CAST(topic AS BLOB), state "
            f"FROM {table} WHERE rowid > ? AND rowid <= ? ORDER BY rowid")


def recompute(path: str, table: str, after: int, upto: int, prev: bytes) -> tuple[bytes, int, int | None]:
    """The link after the events in ``(after, upto]`` starting from ``prev``; the count; the last position."""
    try:
        import apsw
    except ImportError:
        return _recompute_sqlite3(path, table, after, upto, prev)
    conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READWRITE)
    conn.set_busy_timeout(30_000)
    sha, rows_seen, position = hashlib.sha256, 0, None
    try:
        for position, oid, version, topic, state in conn.execute(_select(table), (after, upto)):
            prev = sha(b"%b%d:%d:%b:%d:%d:%b:%d:%b" % (prev, position, len(oid), oid, version, len(topic), topic,
                                                       len(state), state)).digest()
            rows_seen += 1
    finally:
        conn.close()
    return prev, rows_seen, position


def _recompute_sqlite3(path: str, table: str, after: int, upto: int, prev: bytes) -> tuple[bytes, int, int | None]:
    import sqlite3

    conn = sqlite3.connect(path, timeout=30)
    sha, rows_seen, last = hashlib.sha256, 0, None
    try:
        cursor = conn.execute(_select(table), (after, upto))
        while True:
            rows = cursor.fetchmany(PAGE)
            if not rows:
                break
            for position, oid, version, topic, state in rows:
                prev = sha(b"%b%d:%d:%b:%d:%d:%b:%d:%b" % (prev, position, len(oid), oid, version, len(topic),
                                                           topic, len(state), state)).digest()
            rows_seen += len(rows)
            last = rows[-1][0]
    finally:
        conn.close()
    return prev, rows_seen, last


def main(argv: list[str]) -> None:
    path, table, after, upto, start = argv
    link, rows, last = recompute(path, table, int(after), int(upto), bytes.fromhex(start))
    print(json.dumps({"link": link.hex(), "rows": rows, "last": last}))


if __name__ == "__main__":
    main(sys.argv[1:])
