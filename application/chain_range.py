"""Recompute the hash chain over one range of the event store (a worker of ``tuohu audit verify``).

    python chain_range.py JOB_JSON

The job is one JSON object (on the command line: no secret is in it)::

    {"store": "sqlite", "path": DB_PATH, "table": TABLE,                   # or
     "store": "postgres", "schema": SCHEMA, "table": TABLE, "snapshot": ID,  # (connection from PG* variables)
     "after": AFTER, "upto": UPTO, "start": START_LINK_HEX, "report": [POSITION, ...]}

The worker reads the stored events with ``AFTER < position <= UPTO`` in order,
starting from the link ``START`` (the stored link at ``AFTER``), and prints one
JSON object: ``{"links": {position: hex}, "rows": n, "last": position or null}``
— the recomputed link at each position of ``report`` that holds an event, how
many events were read and the last position. Over PostgreSQL it reads in the
transaction snapshot ``ID`` that the caller exported (``pg_export_snapshot()``),
so every worker sees exactly the caller's view of the table.

The link rule (:func:`link`) is defined here, so that
:class:`application.chain.AuditChain` can start this file as a plain subprocess
(safe from a threaded server, and nothing of the caller's main module is imported
again), one per range; :mod:`application.chain` imports it from here. The loop
(:func:`chain_headed`) inlines it: one call per stored event is the cost of a
check. A worker has the database write each row's header (the rule's text
between the previous link and the state) in front of the state, which hands
Python two values a row instead of five and takes the formatting and the
joining out of the loop.

SQLite rows are read with APSW when it is installed (a dependency of tuohu): it
hands rows to Python about a quarter faster than the standard ``sqlite3``
module, and reading is half of a check. Without it, ``sqlite3`` reads the same
bytes. PostgreSQL rows come through a binary ``COPY`` (psycopg).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any

PAGE = 5000

#: The stored events as the chain hashes them, from the library's PostgreSQL table.
POSTGRES_SELECT = ("SELECT notification_id, convert_to(replace(originator_id::text, '-', ''), 'UTF8'), "
                   "originator_version, convert_to(topic, 'UTF8'), state FROM {} WHERE notification_id > {} "
                   "AND notification_id <= {} ORDER BY notification_id")

#: The same with the link header written by PostgreSQL in front of the state: (position, header || state),
#: as :func:`chain_headed` takes.
POSTGRES_HEADED_SELECT = (
    "SELECT notification_id, convert_to(format('%s:%s:%s:%s:%s:%s:%s:', notification_id, "
    "octet_length(replace(originator_id::text, '-', '')), replace(originator_id::text, '-', ''), originator_version, "
    "octet_length(convert_to(topic, 'UTF8')), topic, octet_length(state)), 'UTF8') || state FROM {} "
    "WHERE notification_id > {} AND notification_id <= {} ORDER BY notification_id")

Result = tuple[dict[int, bytes], int, "int | None"]


def link(prev: bytes, position: int, originator_id: bytes, version: int, topic: bytes, state: bytes) -> bytes:
    """The chain link of one stored event after ``prev`` (the rule in :mod:`application.chain`)."""
    return hashlib.sha256(b"%b%d:%d:%b:%d:%d:%b:%d:%b" % (prev, position, len(originator_id), originator_id, version,
                                                          len(topic), topic, len(state), state)).digest()


def chain(rows: Iterable[tuple[int, bytes, int, bytes, bytes]], prev: bytes, report: Iterable[int]) -> Result:
    """The links of ``rows`` from ``prev``: ``({position: link} for the ``report`` positions, count, last)``."""
    return chain_headed(((position, b"%d:%d:%b:%d:%d:%b:%d:%b" % (position, len(oid), oid, version, len(topic), topic,
                                                                  len(state), state))
                         for position, oid, version, topic, state in rows), prev, report)


def chain_headed(rows: Iterable[tuple[int, bytes]], prev: bytes, report: Iterable[int]) -> Result:
    """:func:`chain` over rows whose link header (everything the rule puts between the previous
    link and the state) the database wrote in front of the state: ``(position, header || state)``."""
    wanted = sorted(set(report), reverse=True)
    sha, found, count, position = hashlib.sha256, {}, 0, None
    next_report = wanted.pop() if wanted else None
    for position, data in rows:
        prev = sha(prev + data).digest()
        count += 1
        if next_report is not None and position >= next_report:
            while next_report is not None and next_report < position:  # not stored: not reported
                next_report = wanted.pop() if wanted else None
            if position == next_report:
                found[position] = prev
                next_report = wanted.pop() if wanted else None
    return found, count, position


def _sqlite_select(table: str) -> str:
    """(position, header || state) with the header written by SQLite: fewer values handed to Python
    per row, and no formatting or joining in the loop. Every column is read as the bytes it holds
    (as the one-pass check reads it), and the lengths are of those bytes, as the rule says;
    ``||`` joins text byte for byte (SQLite does not check or convert the encoding of text it
    joins), and the cast back to a BLOB hands the joined bytes over as they are."""
    return (f"SELECT rowid, CAST(CAST(printf('%d:%d:%s:%d:%d:%s:%d:', rowid, length(CAST(originator_id AS BLOB)), "
            f"originator_id, originator_version, length(CAST(topic AS BLOB)), topic, length(CAST(state AS BLOB))) "
            f"AS BLOB) || coalesce(CAST(state AS BLOB), X'') AS BLOB) FROM {table} WHERE rowid > ? AND rowid <= ? "
            f"ORDER BY rowid")


def recompute_sqlite(path: str, table: str, after: int, upto: int, prev: bytes, report: Iterable[int]) -> Result:
    """:func:`chain` over the events in ``(after, upto]`` of a SQLite file."""
    try:
        import apsw
    except ImportError:
        return recompute_sqlite3(path, table, after, upto, prev, report)
    conn = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READWRITE)
    conn.set_busy_timeout(30_000)
    try:
        return chain_headed(conn.execute(_sqlite_select(table), (after, upto)), prev, report)
    finally:
        conn.close()


def recompute_sqlite3(path: str, table: str, after: int, upto: int, prev: bytes, report: Iterable[int]) -> Result:
    """:func:`recompute_sqlite` with the standard library's ``sqlite3``."""
    import sqlite3

    conn = sqlite3.connect(path, timeout=30)
    try:
        cursor = conn.execute(_sqlite_select(table), (after, upto))
        return chain_headed((row for rows in iter(lambda: cursor.fetchmany(PAGE), []) for row in rows), prev, report)
    finally:
        conn.close()


def recompute_postgres(schema: str, table: str, snapshot: str, after: int, upto: int, prev: bytes,
                       report: Iterable[int]) -> Result:
    """:func:`chain` over the events in ``(after, upto]`` of a PostgreSQL table, in an exported snapshot."""
    import psycopg
    from psycopg.sql import SQL, Identifier, Literal

    with psycopg.connect("") as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        conn.execute(SQL("SET TRANSACTION SNAPSHOT {}").format(Literal(snapshot)))
        found = chain_headed(postgres_rows(conn, SQL("{}.{}").format(Identifier(schema), Identifier(table)), after,
                                           upto, headed=True), prev, report)
        conn.rollback()
    return found


def postgres_rows(conn: Any, table: Any, after: int, upto: int, headed: bool = False) -> Iterator[tuple[Any, ...]]:
    """The stored events in ``(after, upto]`` of ``table`` (a psycopg SQL identifier) by binary ``COPY``:
    the state's bytes as stored, not hex-encoded; rows as :func:`chain` takes them, or ``headed`` as
    :func:`chain_headed` does. Read it to the end before using ``conn`` again."""
    from psycopg.sql import SQL, Literal

    select, types = ((POSTGRES_HEADED_SELECT, ["int8", "bytea"]) if headed
                     else (POSTGRES_SELECT, ["int8", "bytea", "int8", "bytea", "bytea"]))
    query = SQL("COPY ({}) TO STDOUT (FORMAT BINARY)").format(
        SQL(select).format(table, Literal(int(after)), Literal(int(upto))))
    with conn.cursor() as cursor, cursor.copy(query) as copy:
        copy.set_types(types)
        yield from copy.rows()


def run(job: dict[str, Any]) -> Result:
    after, upto, start = int(job["after"]), int(job["upto"]), bytes.fromhex(job["start"])
    report = [int(p) for p in job.get("report", [])]
    if job["store"] == "postgres":
        return recompute_postgres(job["schema"], job["table"], job["snapshot"], after, upto, start, report)
    return recompute_sqlite(job["path"], job["table"], after, upto, start, report)


def main() -> None:
    links, rows, last = run(json.loads(sys.argv[1]))
    print(json.dumps({"links": {str(p): v.hex() for p, v in links.items()}, "rows": rows, "last": last}))


if __name__ == "__main__":
    main()
