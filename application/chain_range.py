"""Recompute the hash chain over one range of a SQLite event store (a worker of ``tuohu audit verify``).

    python chain_range.py DB_PATH TABLE AFTER UPTO START_LINK_HEX

Reads the stored events with ``AFTER < rowid <= UPTO`` in order and prints one
JSON object: ``{"link": hex, "rows": n, "last": position or null}`` — the link
after the last event, how many events were read and the last position. The link
rule is :func:`application.chain.link`, repeated here so that this file runs with
the standard library alone: :class:`application.chain.AuditChain` starts it as a
plain subprocess (safe from a threaded server, and nothing of the caller's main
module is imported again), one per range.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys

PAGE = 5000


def recompute(path: str, table: str, after: int, upto: int, prev: bytes) -> tuple[bytes, int, int | None]:
    """The link after the events in ``(after, upto]`` starting from ``prev``; the count; the last position."""
    conn = sqlite3.connect(path, timeout=30)
    conn.text_factory = bytes
    sha, rows_seen, last = hashlib.sha256, 0, None
    try:
        cursor = conn.execute(f"SELECT rowid, originator_id, originator_version, topic, state FROM {table} "
                              "WHERE rowid > ? AND rowid <= ? ORDER BY rowid", (after, upto))
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
