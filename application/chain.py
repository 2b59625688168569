"""The audit chain: a SHA-256 hash chain over the stored events, sealed in batches (tamper evidence).

Each stored event at notification id (position) ``n`` gets a link::

    link_n = SHA-256( link_prev
                      || b"%d:%d:%s:%d:%d:%s:%d:" % (n, len(id), id, version, len(topic), topic, len(state))
                      || state )

where ``link_prev`` is the link of the previous stored event (:data:`GENESIS` for
the first), ``id`` the originator id as 32 lowercase hex digits, and ``state``
the stored bytes exactly as the event store holds them (personal fields
encrypted: erasing a person does not change them). The links live in
``tuohu_chain`` (position, originator_id, originator_version, link) in the
event database, and ``tuohu audit seal`` extends the chain over the events
stored since, in batches, and records a seal (the position and link of the
head) in ``tuohu_seals``. Publish a seal outside the database
(``tuohu audit seal --export FILE``): a database administrator could rewrite
events, links and seals together, but not the seal you hold.

:meth:`AuditChain.verify` recomputes every link from the stored events and
compares it with the seals (and a published seal). On a difference it walks the
stored events and links side by side and names the first position where an
event was edited, deleted, inserted or reordered; events stored after the last
seal are reported as unsealed, not as tampering. A chain that holds links but
no stored seal is not passed (``seals_missing``): the seals were deleted, or the
first seal stopped between writing its links and recording its seal.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from application.chain_range import PAGE as _PAGE
from application.chain_range import POSTGRES_SELECT
from application.chain_range import Result as RangeResult
from application.chain_range import chain, link, postgres_rows

log = logging.getLogger(__name__)
GENESIS = hashlib.sha256(b"tuohu audit chain v1").digest()
EXPORT_FORMAT = "tuohu-audit-export/1"
SEAL_FORMAT = "tuohu-seal/1"
FIRST = -(2**63)




Row = tuple[int, bytes, int, bytes, bytes]
"""A stored event as the chain sees it: (position, originator id hex, version, topic, state)."""


@dataclass(frozen=True)
class Seal:
    """The chain's head at one moment: ``events`` links up to ``position``, the last being ``link``."""

    seal_id: int
    position: int
    link: str
    events: int
    sealed_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"format": SEAL_FORMAT, **asdict(self), "sealed_at": self.sealed_at.isoformat()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Seal:
        return cls(int(data["seal_id"]), int(data["position"]), str(data["link"]), int(data["events"]),
                   datetime.fromisoformat(data["sealed_at"]))


@dataclass(frozen=True)
class Problem:
    """The first place where the stored events and the chain disagree."""

    position: int
    # edited, deleted, inserted, reordered, chain_altered, seal_mismatch, seals_missing;
    # in files also truncated, not_covered, format
    kind: str
    detail: str


@dataclass
class Verification:
    """What :meth:`AuditChain.verify` found.

    ``seal`` is the last stored seal (None when none is stored); ``unsealed`` counts the stored
    events after it (all of them when none is stored). ``problem`` fails the check; ``warning``
    does not: it is the ``seals_missing`` finding when a published seal vouched for the events.
    """

    ok: bool
    checked: int = 0
    seal: Seal | None = None
    unsealed: int = 0
    published: Seal | None = None
    problem: Problem | None = None
    seconds: float = 0.0
    warning: Problem | None = None

    def summary(self) -> str:
        if self.problem is not None:
            verdict = "NOT VERIFIED" if self.problem.kind == "seals_missing" else "TAMPERED"
            return f"{verdict} at position {self.problem.position}: {self.problem.kind} - {self.problem.detail}"
        against = ("" if self.published is None else f" and the published seal #{self.published.seal_id}"
                   if self.published.seal_id else f" and the published seal at position {self.published.position}")
        if self.seal is None and self.warning is not None:
            return (f"OK: {self.checked} events up to position {self.warning.position} match the stored chain"
                    f"{against}; but {self.warning.kind} - {self.warning.detail}")
        if self.seal is None:
            return f"OK: nothing sealed yet; {self.unsealed} events are not sealed (run tuohu audit seal)"
        text = (f"OK: {self.checked} events up to position {self.seal.position} match seal #{self.seal.seal_id} "
                f"(sealed {self.seal.sealed_at.isoformat()}, link {self.seal.link[:16]}…){against}")
        if self.unsealed:
            text += f"; {self.unsealed} events stored after it are not sealed yet"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked, "unsealed": self.unsealed,
                "seal": self.seal.to_json() if self.seal else None,
                "published": _published_json(self.published),
                "problem": asdict(self.problem) if self.problem else None,
                "warning": asdict(self.warning) if self.warning else None, "seconds": round(self.seconds, 3),
                "summary": self.summary()}


# --------------------------------------------------------------------------
# Where the events and the chain are stored
# --------------------------------------------------------------------------


class ChainStorage:
    """Raw access to the stored events and the chain tables of one event store."""

    def snapshot(self) -> Any:
        """A context manager giving a :class:`Snapshot` (one consistent read)."""
        raise NotImplementedError

    def append(self, rows: list[tuple[int, str, int, bytes]], after: int | None) -> None:
        """Add links (position, originator_id, version, link); refuse if the chain's head moved from ``after``."""
        raise NotImplementedError

    def add_seal(self, position: int, link_: bytes, events: int, sealed_at: datetime) -> Seal:
        raise NotImplementedError

    def seals(self) -> list[Seal]:
        raise NotImplementedError

    def positions(self, originator_id: Any) -> dict[int, int]:
        """``{version: position}`` of one aggregate's stored events."""
        raise NotImplementedError

    def first_at_or_after(self, position: int) -> tuple[int, bytes] | None:
        """(position, state) of the first stored event at or after ``position``."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class Snapshot:
    """One consistent read of the stored events and the chain."""

    def pages(self, after: int = FIRST, upto: int | None = None) -> Iterator[list[Row]]:
        """The stored events in ``(after, upto]``, in position order, a page at a time."""
        raise NotImplementedError

    def scan(self, after: int = FIRST, upto: int | None = None) -> Iterator[list[Row]]:
        """:meth:`pages` for a reader that reads to the end and queries nothing else meanwhile
        (the check's one pass): the fastest read the store has."""
        return self.pages(after, upto)

    def events(self, after: int = FIRST, upto: int | None = None) -> Iterator[Row]:
        for page in self.pages(after, upto):
            yield from page

    def count_after(self, position: int) -> int:
        """How many stored events lie after ``position``."""
        raise NotImplementedError

    def positions_at_or_before(self, targets: list[int]) -> list[int]:
        """For each target position, the chain's last position at or before it; those that exist.
        An index seek each (the chain's positions are the events' notification ids)."""
        raise NotImplementedError

    def links_at(self, positions: list[int]) -> dict[int, bytes]:
        """The stored links at these positions; those that exist."""
        raise NotImplementedError

    def range_job(self) -> tuple[dict[str, Any], dict[str, str]]:
        """What a range worker (:mod:`application.chain_range`) needs to read this store: the
        job's fields and environment variables. Raises ``ValueError`` where workers cannot read it."""
        raise ValueError("range workers cannot read this store")

    def links(self, after: int = FIRST, upto: int | None = None) -> Iterator[tuple[int, bytes, int, bytes]]:
        """(position, originator id hex, version, link) in position order."""
        raise NotImplementedError

    def head(self) -> tuple[int, bytes, int] | None:
        """(position, link, number of links) of the chain's last link."""
        tip = self.tip()
        return None if tip is None else (*tip, self.link_count())

    def tip(self) -> tuple[int, bytes] | None:
        """(position, link) of the chain's last link: an index seek, no count."""
        raise NotImplementedError

    def link_count(self) -> int:
        """How many links the chain holds."""
        raise NotImplementedError

    def linked_at(self, originator_id: bytes, version: int) -> int | None:
        """The position the chain links the event (originator, version) at."""
        raise NotImplementedError

    def link_before(self, position: int) -> bytes:
        """The stored link of the last position before ``position`` (GENESIS if none)."""
        raise NotImplementedError


class ChainMissing(RuntimeError):
    """Seals are stored but the chain holds no link: its table was emptied. Sealing again would
    link whatever is stored now, altered or not; verify against a published seal first."""


class SealsMissing(ChainMissing):
    """The chain holds links but no seal is stored: the seals were deleted, or the first seal
    stopped (or is still running) between writing its links and recording its seal. Sealing now
    would record whatever is stored as sealed; verify against a published seal first, then seal
    with ``accept_missing_seals``."""


class ChainConflict(RuntimeError):
    """Another seal extended the chain at the same time; nothing was written (seal again)."""


class SQLiteChain(ChainStorage):
    """The chain in the events' SQLite file: ``tuohu_chain`` and ``tuohu_seals`` beside the event table."""

    def __init__(self, path: str, table: str) -> None:
        self.path, self.table = path, table
        self._lock = threading.RLock()
        self._write_lock = threading.Lock()
        self.conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.conn.text_factory = bytes
        # Links are written on a second connection, so a seal can read a snapshot while it writes.
        self.writer = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self.conn.execute("CREATE TABLE IF NOT EXISTS tuohu_chain (position INTEGER PRIMARY KEY, "
                          "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, link BLOB NOT NULL)")
        self.conn.execute("CREATE TABLE IF NOT EXISTS tuohu_seals (seal_id INTEGER PRIMARY KEY AUTOINCREMENT, "
                          "position INTEGER NOT NULL, link BLOB NOT NULL, events INTEGER NOT NULL, "
                          "sealed_at TEXT NOT NULL)")

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        with self._lock:
            self.conn.execute("BEGIN")
            try:
                yield _SQLiteSnapshot(self.conn, self.table, self.path)
            finally:
                self.conn.execute("ROLLBACK")

    def append(self, rows: list[tuple[int, str, int, bytes]], after: int | None) -> None:
        with self._write_lock:
            self.writer.execute("BEGIN IMMEDIATE")
            try:
                head = self.writer.execute("SELECT MAX(position) FROM tuohu_chain").fetchone()[0]
                if head != after:
                    raise ChainConflict(f"the chain's head moved from {after} to {head}")
                self.writer.executemany("INSERT INTO tuohu_chain VALUES (?, ?, ?, ?)", rows)
            except BaseException:
                self.writer.execute("ROLLBACK")
                raise
            self.writer.execute("COMMIT")

    def add_seal(self, position: int, link_: bytes, events: int, sealed_at: datetime) -> Seal:
        with self._write_lock:
            cursor = self.writer.execute("INSERT INTO tuohu_seals (position, link, events, sealed_at) "
                                       "VALUES (?, ?, ?, ?)", (position, link_, events, sealed_at.isoformat()))
            return Seal(int(cursor.lastrowid or 0), position, link_.hex(), events, sealed_at)

    def seals(self) -> list[Seal]:
        with self._lock:
            rows = self.conn.execute("SELECT seal_id, position, link, events, sealed_at FROM tuohu_seals "
                                     "ORDER BY seal_id").fetchall()
        return [Seal(r[0], r[1], bytes(r[2]).hex(), r[3], datetime.fromisoformat(r[4].decode())) for r in rows]

    def positions(self, originator_id: Any) -> dict[int, int]:
        with self._lock:
            rows = self.conn.execute(f"SELECT originator_version, rowid FROM {self.table} WHERE originator_id = ?",
                                     (_hex(originator_id).decode(),)).fetchall()
        return dict(rows)

    def first_at_or_after(self, position: int) -> tuple[int, bytes] | None:
        with self._lock:
            row = self.conn.execute(f"SELECT rowid, state FROM {self.table} WHERE rowid >= ? ORDER BY rowid LIMIT 1",
                                    (position,)).fetchone()
        return (row[0], bytes(row[1])) if row else None

    def close(self) -> None:
        with self._lock, self._write_lock:
            self.conn.close()
            self.writer.close()


class _SQLiteSnapshot(Snapshot):
    def __init__(self, conn: sqlite3.Connection, table: str, path: str) -> None:
        self.conn, self.table, self.path = conn, table, path

    def range_job(self) -> tuple[dict[str, Any], dict[str, str]]:
        return {"store": "sqlite", "path": self.path, "table": self.table}, {}

    def _pages(self, sql: str, after: int, upto: int | None) -> Iterator[Any]:
        cursor = self.conn.execute(sql, (after, upto if upto is not None else 2**63 - 1))
        while True:
            rows = cursor.fetchmany(_PAGE)
            if not rows:
                return
            yield from rows

    def pages(self, after: int = FIRST, upto: int | None = None) -> Iterator[list[Row]]:
        cursor = self.conn.execute(f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.table} "
                                   "WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
                                   (after, upto if upto is not None else 2**63 - 1))
        while True:
            rows = cursor.fetchmany(_PAGE)
            if not rows:
                return
            yield rows

    def count_after(self, position: int) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {self.table} WHERE rowid > ?", (position,)).fetchone()[0])

    def positions_at_or_before(self, targets: list[int]) -> list[int]:
        found = []
        for target in targets:
            row = self.conn.execute("SELECT position FROM tuohu_chain WHERE position <= ? ORDER BY position DESC "
                                    "LIMIT 1", (target,)).fetchone()
            if row is not None:
                found.append(row[0])
        return found

    def links_at(self, positions: list[int]) -> dict[int, bytes]:
        found = {}
        for position in positions:
            row = self.conn.execute("SELECT link FROM tuohu_chain WHERE position = ?", (position,)).fetchone()
            if row is not None:
                found[position] = bytes(row[0])
        return found

    def links(self, after: int = FIRST, upto: int | None = None) -> Iterator[tuple[int, bytes, int, bytes]]:
        return self._pages("SELECT position, originator_id, originator_version, link FROM tuohu_chain "
                           "WHERE position > ? AND position <= ? ORDER BY position", after, upto)

    def tip(self) -> tuple[int, bytes] | None:
        row = self.conn.execute("SELECT position, link FROM tuohu_chain ORDER BY position DESC LIMIT 1").fetchone()
        return None if row is None else (row[0], bytes(row[1]))

    def link_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM tuohu_chain").fetchone()[0])

    def linked_at(self, originator_id: bytes, version: int) -> int | None:
        row = self.conn.execute("SELECT position FROM tuohu_chain WHERE originator_id = ? AND originator_version = ?",
                                (originator_id.decode(errors="replace"), version)).fetchone()
        return row[0] if row else None

    def link_before(self, position: int) -> bytes:
        row = self.conn.execute("SELECT link FROM tuohu_chain WHERE position < ? ORDER BY position DESC LIMIT 1",
                                (position,)).fetchone()
        return bytes(row[0]) if row else GENESIS


class PostgresChain(ChainStorage):
    """The chain in the event store's PostgreSQL schema (through the library's connection pool)."""

    def __init__(self, datastore: Any, table: str) -> None:
        from psycopg.sql import SQL, Identifier

        self.datastore = datastore
        self.table_name = table
        self.SQL = SQL
        schema = Identifier(datastore.schema)
        self.events_table = SQL("{}.{}").format(schema, Identifier(table))
        self.chain = SQL("{}.{}").format(schema, Identifier("tuohu_chain"))
        self.seal_table = SQL("{}.{}").format(schema, Identifier("tuohu_seals"))
        with datastore.transaction(commit=True) as curs:
            curs.execute(SQL("CREATE TABLE IF NOT EXISTS {} (position bigint PRIMARY KEY, originator_id text NOT NULL, "
                             "originator_version bigint NOT NULL, link bytea NOT NULL)").format(self.chain))
            curs.execute(SQL("CREATE TABLE IF NOT EXISTS {} (seal_id bigserial PRIMARY KEY, position bigint NOT NULL, "
                             "link bytea NOT NULL, events bigint NOT NULL, sealed_at timestamptz NOT NULL)")
                         .format(self.seal_table))

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        with self.datastore.get_connection() as conn:
            with conn.transaction(force_rollback=True):
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield _PostgresSnapshot(conn, self)

    def append(self, rows: list[tuple[int, str, int, bytes]], after: int | None) -> None:
        with self.datastore.get_connection() as conn, conn.transaction():
            conn.execute(self.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(self.chain))
            head = conn.execute(self.SQL("SELECT MAX(position) AS head FROM {}").format(self.chain)).fetchone()["head"]
            if head != after:
                raise ChainConflict(f"the chain's head moved from {after} to {head}")
            with conn.cursor().copy(self.SQL("COPY {} (position, originator_id, originator_version, link) FROM STDIN")
                                    .format(self.chain)) as copy:
                for row in rows:
                    copy.write_row(row)

    def add_seal(self, position: int, link_: bytes, events: int, sealed_at: datetime) -> Seal:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self.SQL("INSERT INTO {} (position, link, events, sealed_at) VALUES (%s, %s, %s, %s) "
                                  "RETURNING seal_id").format(self.seal_table), (position, link_, events, sealed_at))
            seal_id = curs.fetchone()["seal_id"]
        return Seal(int(seal_id), position, link_.hex(), events, sealed_at)

    def seals(self) -> list[Seal]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self.SQL("SELECT seal_id, position, link, events, sealed_at FROM {} ORDER BY seal_id")
                         .format(self.seal_table))
            rows = curs.fetchall()
        return [Seal(r["seal_id"], r["position"], bytes(r["link"]).hex(), r["events"], r["sealed_at"]) for r in rows]

    def positions(self, originator_id: Any) -> dict[int, int]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self.SQL("SELECT originator_version, notification_id FROM {} WHERE originator_id = %s")
                         .format(self.events_table), (originator_id,))
            return {r["originator_version"]: r["notification_id"] for r in curs.fetchall()}

    def first_at_or_after(self, position: int) -> tuple[int, bytes] | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self.SQL("SELECT notification_id, state FROM {} WHERE notification_id >= %s "
                                  "ORDER BY notification_id LIMIT 1").format(self.events_table), (position,))
            row = curs.fetchone()
        return (row["notification_id"], bytes(row["state"])) if row else None


class _PostgresSnapshot(Snapshot):
    def __init__(self, conn: Any, chain: PostgresChain) -> None:
        self.conn, self.c = conn, chain
        self._cursors = 0

    def _stream(self, sql: Any, after: int, upto: int | None) -> Iterator[Any]:
        from psycopg.rows import tuple_row

        self._cursors += 1
        cursor = self.conn.cursor(name=f"tuohu_chain_{self._cursors}", row_factory=tuple_row)
        try:
            cursor.itersize = _PAGE
            cursor.execute(sql, (after, upto if upto is not None else 2**63 - 1))
            yield from cursor
        finally:
            with suppress(Exception):
                cursor.close()

    def pages(self, after: int = FIRST, upto: int | None = None) -> Iterator[list[Row]]:
        """A server-side cursor in binary: the state's bytes as stored, not hex-encoded by the server
        and decoded here again; other queries may run while it is open."""
        from psycopg.rows import tuple_row
        from psycopg.sql import Placeholder

        self._cursors += 1
        cursor = self.conn.cursor(name=f"tuohu_chain_{self._cursors}", row_factory=tuple_row, binary=True)
        try:
            cursor.execute(self.c.SQL(POSTGRES_SELECT).format(self.c.events_table, Placeholder(), Placeholder()),
                           (after, upto if upto is not None else 2**63 - 1))
            while True:
                rows = cursor.fetchmany(_PAGE)
                if not rows:
                    return
                yield rows
        finally:
            with suppress(Exception):
                cursor.close()

    def scan(self, after: int = FIRST, upto: int | None = None) -> Iterator[list[Row]]:
        """A binary ``COPY``: no round trip per page. Nothing else may run on the connection until it
        has been read to the end (a ``COPY`` left early is cancelled, which ends the snapshot)."""
        page: list[Row] = []
        for row in postgres_rows(self.conn, self.c.events_table, after, upto if upto is not None else 2**63 - 1):
            page.append(row)
            if len(page) >= _PAGE:
                yield page
                page = []
        if page:
            yield page

    def count_after(self, position: int) -> int:
        return int(self.conn.execute(self.c.SQL("SELECT COUNT(*) AS n FROM {} WHERE notification_id > %s")
                                     .format(self.c.events_table), (position,)).fetchone()["n"])

    def positions_at_or_before(self, targets: list[int]) -> list[int]:
        found = []
        for target in targets:
            row = self.conn.execute(self.c.SQL("SELECT position FROM {} WHERE position <= %s ORDER BY position DESC "
                                               "LIMIT 1").format(self.c.chain), (target,)).fetchone()
            if row is not None:
                found.append(row["position"])
        return found

    def links_at(self, positions: list[int]) -> dict[int, bytes]:
        rows = self.conn.execute(self.c.SQL("SELECT position, link FROM {} WHERE position = ANY(%s)")
                                 .format(self.c.chain), (positions,)).fetchall()
        return {row["position"]: bytes(row["link"]) for row in rows}

    def range_job(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The workers read in this transaction's exported snapshot, as the same user. The transaction
        waits idle for them, so the store's idle-in-transaction timeout is lifted for it alone."""
        self.conn.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        snapshot = self.conn.execute("SELECT pg_export_snapshot() AS id").fetchone()["id"]
        info = self.conn.info
        env = {"PGHOST": info.host, "PGPORT": str(info.port), "PGUSER": info.user, "PGDATABASE": info.dbname}
        if info.password:
            env["PGPASSWORD"] = info.password
        return ({"store": "postgres", "schema": self.c.datastore.schema, "table": self.c.table_name,
                 "snapshot": snapshot}, env)

    def links(self, after: int = FIRST, upto: int | None = None) -> Iterator[tuple[int, bytes, int, bytes]]:
        return self._stream(self.c.SQL(
            "SELECT position, convert_to(originator_id, 'UTF8'), originator_version, link FROM {} "
            "WHERE position > %s AND position <= %s ORDER BY position").format(self.c.chain), after, upto)

    def tip(self) -> tuple[int, bytes] | None:
        row = self.conn.execute(self.c.SQL("SELECT position, link FROM {} ORDER BY position DESC LIMIT 1")
                                .format(self.c.chain)).fetchone()
        return None if row is None else (row["position"], bytes(row["link"]))

    def link_count(self) -> int:
        return int(self.conn.execute(self.c.SQL("SELECT COUNT(*) AS n FROM {}").format(self.c.chain)).fetchone()["n"])

    def linked_at(self, originator_id: bytes, version: int) -> int | None:
        row = self.conn.execute(self.c.SQL("SELECT position FROM {} WHERE originator_id = %s AND "
                                           "originator_version = %s").format(self.c.chain),
                                (originator_id.decode(errors="replace"), version)).fetchone()
        return row["position"] if row else None

    def link_before(self, position: int) -> bytes:
        row = self.conn.execute(self.c.SQL("SELECT link FROM {} WHERE position < %s ORDER BY position DESC LIMIT 1")
                                .format(self.c.chain), (position,)).fetchone()
        return bytes(row["link"]) if row else GENESIS


class MemoryChain(ChainStorage):
    """The chain in memory over any recorder's ``select_notifications`` (the library's POPO store, tests)."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.chain: dict[int, tuple[bytes, int, bytes]] = {}
        self._seals: list[Seal] = []

    @contextmanager
    def snapshot(self) -> Iterator[Snapshot]:
        yield _MemorySnapshot(self)

    def append(self, rows: list[tuple[int, str, int, bytes]], after: int | None) -> None:
        head = max(self.chain, default=None)
        if head != after:
            raise ChainConflict(f"the chain's head moved from {after} to {head}")
        for position, originator_id, version, link_ in rows:
            self.chain[position] = (originator_id.encode(), version, link_)

    def add_seal(self, position: int, link_: bytes, events: int, sealed_at: datetime) -> Seal:
        seal = Seal(len(self._seals) + 1, position, link_.hex(), events, sealed_at)
        self._seals.append(seal)
        return seal

    def seals(self) -> list[Seal]:
        return list(self._seals)

    def positions(self, originator_id: Any) -> dict[int, int]:
        found, start = {}, 1
        while True:
            page = self.recorder.select_notifications(start=start, limit=1000)
            if not page:
                return found
            found.update({n.originator_version: n.id for n in page if n.originator_id == originator_id})
            start = page[-1].id + 1

    def first_at_or_after(self, position: int) -> tuple[int, bytes] | None:
        page = self.recorder.select_notifications(start=max(position, 1), limit=1)
        return (page[0].id, page[0].state) if page else None


class _MemorySnapshot(Snapshot):
    def __init__(self, store: MemoryChain) -> None:
        self.store = store

    def pages(self, after: int = FIRST, upto: int | None = None) -> Iterator[list[Row]]:
        start = max(after + 1, 1)
        while True:
            page = self.store.recorder.select_notifications(start=start, limit=_PAGE, stop=upto)
            if not page:
                return
            yield [(n.id, _hex(n.originator_id), n.originator_version, n.topic.encode(), n.state) for n in page]
            start = page[-1].id + 1

    def count_after(self, position: int) -> int:
        return sum(len(page) for page in self.pages(after=position))

    def links(self, after: int = FIRST, upto: int | None = None) -> Iterator[tuple[int, bytes, int, bytes]]:
        for position in sorted(self.store.chain):
            if after < position and (upto is None or position <= upto):
                yield (position, *self.store.chain[position])

    def tip(self) -> tuple[int, bytes] | None:
        if not self.store.chain:
            return None
        position = max(self.store.chain)
        return position, self.store.chain[position][2]

    def link_count(self) -> int:
        return len(self.store.chain)

    def linked_at(self, originator_id: bytes, version: int) -> int | None:
        return next((p for p, (o, v, _) in self.store.chain.items() if (o, v) == (originator_id, version)), None)

    def link_before(self, position: int) -> bytes:
        before = [p for p in self.store.chain if p < position]
        return self.store.chain[max(before)][2] if before else GENESIS


_PARALLEL_FROM = 100_000


def _recompute_ranges(jobs: list[dict[str, Any]], env: dict[str, str] | None = None,
                      meanwhile: Callable[[], None] | None = None) -> list[RangeResult]:
    """Each job (see :mod:`application.chain_range`) recomputed in its own ``chain_range.py``
    subprocess, all at once: ``[({position: link}, events, last position)]``.

    Plain subprocesses (fork + exec of a fresh interpreter) are safe from any thread of
    a server, unlike forking the caller. ``env`` is added to the workers' environment
    (PostgreSQL's connection variables). ``meanwhile`` runs in the caller while the
    workers do (the caller's own queries). Raises ``RuntimeError`` when a worker fails."""
    import subprocess
    import sys

    script = str(Path(__file__).with_name("chain_range.py"))
    environment = {**os.environ, **(env or {})}
    workers = []
    try:
        for job in jobs:  # the job on the command line: every worker has it at once, and they run at once
            workers.append(subprocess.Popen([sys.executable, "-I", script, json.dumps(job)], stdin=subprocess.DEVNULL,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment))
        if meanwhile is not None:
            meanwhile()
        done = []
        for worker in workers:
            out, err = worker.communicate()
            if worker.returncode != 0:
                raise RuntimeError(f"chain range worker failed ({worker.returncode}): "
                                   f"{err.decode(errors='replace')[-500:]}")
            found = json.loads(out)
            done.append(({int(p): bytes.fromhex(v) for p, v in found["links"].items()}, int(found["rows"]),
                         found["last"]))
        return done
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()


def _hex(originator_id: Any) -> bytes:
    """The originator id as the chain hashes it: 32 lowercase hex digits."""
    return (originator_id.hex if hasattr(originator_id, "hex") and not isinstance(originator_id, (bytes, str))
            else str(originator_id).replace("-", "").lower()).encode()


def storage_for(app: Any) -> ChainStorage:
    """The chain storage beside ``app``'s event store."""
    recorder = app.recorder
    module = type(recorder).__module__
    if module.endswith("sqlite"):
        db_name = recorder.datastore.pool.db_name
        if not recorder.datastore.pool.is_sqlite_memory_mode:
            return SQLiteChain(db_name, recorder.events_table_name)
    elif module.endswith("postgres"):
        return PostgresChain(recorder.datastore, recorder.events_table_name)
    return MemoryChain(recorder)


def sqlite_chain(settings: Any) -> AuditChain | None:
    """The chain of the SQLite event store that ``settings`` name, opened without the
    application (so without loading the domain model): enough to seal and verify.
    None for PostgreSQL or an in-memory store: use ``bootstrap(settings).chain``."""
    if getattr(settings, "uses_postgres", False):
        return None
    path = settings.event_store_env().get("SQLITE_DBNAME", "")
    if not path or path == ":memory:" or "mode=memory" in path:
        return None
    return AuditChain(None, SQLiteChain(path, "stored_events"))


# --------------------------------------------------------------------------
# Sealing, verifying, exporting
# --------------------------------------------------------------------------


class AuditChain:
    """Seal, verify and export the hash chain of an application's event store."""

    batch_size = 20_000

    def __init__(self, app: Any, storage: ChainStorage | None = None) -> None:
        self.app = app
        self.storage = storage or storage_for(app)

    def close(self) -> None:
        self.storage.close()

    def seals(self) -> list[Seal]:
        return self.storage.seals()

    def seal(self, now: datetime | None = None, *, accept_missing_seals: bool = False) -> Seal | None:
        """Link the events stored since the last link, in batches, and record a seal of the new head.

        The links are written in batches of :attr:`batch_size`, each in its own transaction, and the
        seal after them in another: a seal stopped in between leaves links that no seal covers (the
        next seal goes on from them).

        Returns the new seal, the last one when nothing new was stored, or None for an empty store.
        Raises :class:`ChainConflict` when another seal runs at the same time,
        :class:`ChainMissing` when seals are stored but the chain's links are gone, and
        :class:`SealsMissing` (a :class:`ChainMissing`) when the chain holds links but no seal is
        stored - unless ``accept_missing_seals`` (someone verified the stored events against a
        published seal, or knows the first seal was interrupted): then the chain is extended and
        sealed as usual.
        """
        with self.storage.snapshot() as snap:
            head = snap.head()
            if head is None:
                earlier = self.storage.seals()
                if earlier:
                    raise ChainMissing(f"{len(earlier)} seals are stored (the last at position "
                                       f"{earlier[-1].position}) but the chain holds no link: its table was emptied. "
                                       "Verify against a published seal (tuohu audit verify --seal FILE) before "
                                       "sealing again")
            elif not accept_missing_seals and not self.storage.seals():
                raise SealsMissing(f"the chain links {head[2]} events up to position {head[0]} but no seal is "
                                   f"stored: {_SEALS_GONE}. Sealing now would record the stored events as sealed; "
                                   "verify them against a published seal (tuohu audit verify --seal FILE), then run "
                                   "tuohu audit seal --accept-missing-seals")
            after, prev, count = (head if head is not None else (None, GENESIS, 0))
            rows: list[tuple[int, str, int, bytes]] = []
            written_after = after
            with closing(snap.events(after if after is not None else FIRST)) as events:
                for position, originator_id, version, topic, state in events:
                    prev = link(prev, position, originator_id, version, topic, state)
                    rows.append((position, originator_id.decode(), version, prev))
                    if len(rows) >= self.batch_size:
                        self.storage.append(rows, written_after)
                        written_after, count, rows = rows[-1][0], count + len(rows), []
        if rows:
            self.storage.append(rows, written_after)
            written_after, count = rows[-1][0], count + len(rows)
        seals = self.storage.seals()
        if written_after is None:
            return None
        if seals and seals[-1].position == written_after:
            return seals[-1]
        return self.storage.add_seal(written_after, prev, count, now or datetime.now(timezone.utc))

    def verify(self, published: Seal | None = None, workers: int | None = None) -> Verification:
        """Recompute every link from the stored events and compare with the seals (and ``published``).

        With ``workers`` > 1 (default: one per CPU) over a SQLite file of at least
        100,000 events, ranges of the chain are recomputed in that many subprocesses
        (``chain_range.py``), each from the stored link where its range starts; every
        range's last link must equal the stored link (or seal) there, which proves the
        same as one pass.

        Returns a :class:`Verification`: ``ok``, how many events were ``checked``, the last stored
        ``seal``, the events stored after it (``unsealed``; all of them when no seal is stored),
        and the first ``problem``. A chain that holds links while no seal is stored fails with
        ``seals_missing`` at the chain's head (the seals were deleted, or the first seal stopped
        between writing its links and recording its seal: the store cannot tell which), unless
        ``published`` is given and the stored events match it: then ``ok``, with the same finding
        as ``warning``. Raises ``ValueError`` for a published position outside 1 to 2**63 - 1.
        """
        started = time.perf_counter()
        if published is not None and not 1 <= published.position <= 2**63 - 1:
            raise ValueError(f"a published seal's position is from 1 to 2**63 - 1 (a stored position); "
                             f"got {published.position}")
        workers = workers if workers is not None else (os.cpu_count() or 1)
        seals = self.storage.seals()
        result = Verification(ok=True, seal=seals[-1] if seals else None, published=published)
        with self.storage.snapshot() as snap:
            head = snap.tip()
            # A published seal past the chain's stored head (or with no chain at all) is checked on its
            # own afterwards, against the stored events: the chain's tables may have been emptied.
            beyond_head = published is not None and (head is None or published.position > head[0])
            checks: dict[int, list[tuple[str, Any]]] = {}
            for seal in seals:
                checks.setdefault(seal.position, []).append(("seal", seal))
            if published is not None and not beyond_head:
                checks.setdefault(published.position, []).append(("published", published))
            if head is not None:
                checks.setdefault(head[0], []).append(("head", head))
            parallel = (workers > 1 and isinstance(self.storage, (SQLiteChain, PostgresChain)) and head is not None
                        and head[0] >= _PARALLEL_FROM)
            problem = (self._parallel_check(snap, head, checks, result, workers) if parallel  # type: ignore[arg-type]
                       else self._fast_check(snap, head, checks, result))
            if problem is not None:
                result.problem = self._find(snap, head) or self._unfound(problem, head)
            elif beyond_head:
                assert published is not None
                result.problem = self._past_head(snap, head, published)
            elif head is None and seals:  # seals stored, not one link: the chain's table was emptied
                result.problem = self._past_head(snap, head, seals[-1], f"seal #{seals[-1].seal_id}")
            elif head is not None and not seals:  # links, not one seal: deleted, or the first seal stopped
                missing = Problem(head[0], "seals_missing", f"the chain links the events up to position {head[0]}, "
                                                            f"but no seal is stored: {_SEALS_GONE}")
                if published is None:
                    missing = Problem(head[0], missing.kind, f"{missing.detail}; check the stored events against a "
                                                             "published seal (tuohu audit verify --seal FILE)")
                    result.problem = missing
                else:  # the published seal was checked with the chain above, and matched
                    result.warning = missing
            result.unsealed = snap.count_after(seals[-1].position if seals else FIRST)
            result.ok = result.problem is None
        result.seconds = time.perf_counter() - started
        return result

    @staticmethod
    def _unfound(problem: Problem, head: tuple[int, bytes] | None) -> Problem:
        """``problem`` when the stored events agree with the stored links: a seal does not."""
        if problem.detail == _DIFFERS.format("published"):
            return Problem(problem.position, "seal_mismatch",
                           "the stored events agree with the stored links, but not with the published seal: the "
                           "events and the chain were rewritten together after it was published, or the seal is "
                           "not this store's")
        if head is not None:
            return Problem(head[0], "chain_altered", "the stored events match the links, but a seal does not: "
                                                     "the chain or seal table was changed")
        return problem

    @staticmethod
    def _past_head(snap: Snapshot, head: tuple[int, bytes] | None, published: Seal,
                   which: str = "the published seal") -> Problem:
        """A seal (``which``: the published one, or a stored one when the chain holds no link) beyond
        the chain's stored head: recompute the stored events up to it.

        Always a problem - the chain's tables do not reach a position that was sealed - but the
        detail says whether the stored events still hash to the seal's link."""
        held = f"{which} covers position {published.position}, but the stored chain " + (
            "holds no link" if head is None else f"stops at position {head[0]}")
        with closing(snap.scan(FIRST, published.position)) as pages:
            found, _rows, last = chain((row for page in pages for row in page), GENESIS, [published.position])
        if last != published.position:
            return Problem(published.position, "deleted", f"{held}, and no event is stored at that position "
                                                          f"(the last one up to it is {last}): events were deleted, "
                                                          "or the seal is not this store's")
        if found[published.position] == bytes.fromhex(published.link):
            return Problem(published.position, "chain_altered", f"{held}: the chain or seal table was emptied or "
                                                                "rolled back (the stored events up to it still "
                                                                "hash to that seal's link)")
        return Problem(published.position, "seal_mismatch", f"{held}, and the stored events up to it do not hash to "
                                                            "that seal's link: events were altered and the chain "
                                                            "removed, so the altered position cannot be named")

    @staticmethod
    def _fast_check(snap: Snapshot, head: tuple[int, bytes] | None, checks: dict[int, list[tuple[str, Any]]],
                    result: Verification) -> Problem | None:
        """One pass over the stored events: recompute the chain, compare it at every seal and at the head."""
        if head is None:
            return None
        sealed_upto = head[0]
        beyond = [p for p in checks if p > sealed_upto]
        prev, checked, after = GENESIS, 0, FIRST
        for check in sorted(p for p in checks if p <= sealed_upto):
            with closing(snap.scan(after, check)) as pages:
                found, rows, last = chain((row for page in pages for row in page), prev, [check])
            checked += rows
            result.checked = checked
            if last != check:
                return Problem(check, "deleted", "a sealed position holds no event any more")
            prev = found[check]
            problem = _mismatch(check, prev, checks[check])
            if problem is not None:
                return problem
            after = check
        if beyond:
            return Problem(min(beyond), "seal_mismatch", "a seal is beyond the chain's head: events were removed "
                                                         "or the chain was rolled back")
        linked = snap.link_count()
        if checked != linked:
            return Problem(sealed_upto, "seal_mismatch", f"{checked} events are stored up to the chain's head, "
                                                         f"{linked} were linked")
        return None

    def _parallel_check(self, snap: Snapshot, head: tuple[int, bytes], checks: dict[int, list[tuple[str, Any]]],
                        result: Verification, workers: int) -> Problem | None:
        """:meth:`_fast_check` split into ``workers`` ranges, each recomputed in a worker subprocess
        from the stored link where it starts; each reports its links at the seals in its range."""
        sealed_upto = head[0]
        beyond = [p for p in checks if p > sealed_upto]
        if beyond:
            return Problem(min(beyond), "seal_mismatch", "a seal is beyond the chain's head: events were removed "
                                                         "or the chain was rolled back")
        # Equal spans of positions (notification ids run on without gaps, so about equal numbers of
        # events), each ending at a stored link: one index seek each, no count of the chain first.
        ends = sorted(set(snap.positions_at_or_before([sealed_upto * k // workers for k in range(1, workers)]))
                      | {sealed_upto})
        stored = snap.links_at(ends)
        if len(stored) != len(ends):
            return self._fast_check(snap, head, checks, result)
        afters = [FIRST] + ends[:-1]
        starts = [GENESIS] + [stored[e] for e in ends[:-1]]
        reports = [sorted({end} | {p for p in checks if after < p <= end}) for after, end in zip(afters, ends)]
        counted: list[int] = []
        try:
            base, env = snap.range_job()
            done = _recompute_ranges([{**base, "after": after, "upto": end, "start": start.hex(), "report": report}
                                      for after, end, start, report in zip(afters, ends, starts, reports)], env,
                                     meanwhile=lambda: counted.append(snap.link_count()))
        except (OSError, RuntimeError, ValueError):  # a worker could not run: the same check in one pass
            log.warning("chain range workers failed; verifying in one pass", exc_info=True)
            return self._fast_check(snap, head, checks, result)
        count = counted[0] if counted else snap.link_count()
        checked = 0
        for end, report, (links, rows, _last) in zip(ends, reports, done):
            checked += rows
            result.checked = checked
            for position in report:
                found = links.get(position)
                if found is None:
                    return Problem(position, "deleted", "a sealed position holds no event any more")
                if position == end and found != stored[end]:
                    return Problem(end, "seal_mismatch", _DIFFERS.format("chain's"))
                problem = _mismatch(position, found, checks.get(position, []))
                if problem is not None:
                    return problem
        if checked != count:
            return Problem(sealed_upto, "seal_mismatch", f"{checked} events are stored up to the chain's head, "
                                                         f"{count} were linked")
        return None

    @staticmethod
    def _find(snap: Snapshot, head: tuple[int, bytes] | None) -> Problem | None:
        """Walk the stored events and links side by side; the first disagreement, classified."""
        if head is None:
            return None
        with closing(snap.events(upto=head[0])) as events, closing(snap.links()) as links:
            return AuditChain._walk(snap, head, events, links)

    @staticmethod
    def _walk(snap: Snapshot, head: tuple[int, bytes], events: Iterator[Row],
              links: Iterator[tuple[int, bytes, int, bytes]]) -> Problem | None:
        """The first disagreement of the stored events and links; None when they agree throughout."""
        event, chained = next(events, None), next(links, None)
        prev = GENESIS
        while event is not None or chained is not None:
            if chained is None or (event is not None and event[0] < chained[0]):
                assert event is not None
                return Problem(event[0], "inserted", f"event {_id(event[1])} v{event[2]} is stored at a position "
                                                     "the chain never linked")
            if event is None or chained[0] < event[0]:
                return Problem(chained[0], "deleted", f"event {_id(chained[1])} v{chained[2]} linked here is gone")
            position, originator_id, version, topic, state = event
            if link(prev, position, originator_id, version, topic, state) != chained[3]:
                if (originator_id, version) == (chained[1], chained[2]):
                    return Problem(position, "edited", f"the stored bytes of event {_id(originator_id)} v{version} "
                                                       "differ from those sealed")
                moved_from = snap.linked_at(originator_id, version)
                if moved_from is not None:
                    return Problem(position, "reordered", f"event {_id(originator_id)} v{version} was linked at "
                                                          f"position {moved_from}; position {position} held "
                                                          f"{_id(chained[1])} v{chained[2]}")
                return Problem(position, "inserted", f"event {_id(originator_id)} v{version} was never linked; "
                                                     f"position {position} held {_id(chained[1])} v{chained[2]}")
            prev = chained[3]
            event, chained = next(events, None), next(links, None)
        return None

    # ------------------------------------------------------------------ export

    def position_range(self, start: datetime | None, end: datetime | None) -> tuple[int | None, int | None]:
        """First and last position recorded in ``[start, end]`` (assumes recording times rise with position);
        ``(None, None)`` when no event was recorded in it."""
        decode = self.app.mapper.transcoder.decode
        top = self.app.recorder.max_notification_id() or 0
        if top <= 0:
            return None, None

        def first_after(moment: datetime, strictly: bool) -> int | None:
            lo, hi, found = 1, top, None
            while lo <= hi:
                mid = (lo + hi) // 2
                row = self.storage.first_at_or_after(mid)
                if row is None:
                    hi = mid - 1
                    continue
                stamp = decode(row[1])["timestamp"]
                if stamp > moment or (not strictly and stamp == moment):
                    found, hi = row[0], mid - 1
                else:
                    lo = row[0] + 1
            return found

        first = first_after(start, strictly=False) if start else 1
        if first is None:
            return None, None
        after_end = first_after(end, strictly=True) if end else None
        last = (after_end - 1) if after_end is not None else top
        return (first, last) if last >= first else (None, None)

    def export(self, out: IO[str], start: datetime | None = None, end: datetime | None = None,
               anchor: bool = True) -> dict[str, Any]:
        """Write the events recorded in ``[start, end]`` as JSON Lines with their links.

        The first line is a header (range, previous link, the seal); then one
        line per event: position, originator id, version, topic, the stored
        state (base64) and the link. With ``anchor`` the file runs on to the
        first seal at or after the range (those lines have ``in_range: false``),
        so :func:`verify_export` can check it against that seal. Seals first.
        """
        self.seal()
        first, last = self.position_range(start, end)
        seals = self.storage.seals()
        header: dict[str, Any] = {"type": "header", "format": EXPORT_FORMAT,
                                  "from": start.isoformat() if start else None,
                                  "to": end.isoformat() if end else None, "first_position": first,
                                  "last_position": last, "exported_at": datetime.now(timezone.utc).isoformat(),
                                  "genesis": GENESIS.hex(), "seal": None, "previous_link": None}
        if first is None or last is None:  # no event recorded in the range
            out.write(json.dumps(header) + "\n")
            return header
        upto = last
        if anchor:
            covering = [s for s in seals if s.position >= last]
            if covering:
                header["seal"] = covering[0].to_json()
                upto = covering[0].position
        written = 0
        with self.storage.snapshot() as snap:
            prev = snap.link_before(first)
            header["previous_link"] = prev.hex()
            out.write(json.dumps(header) + "\n")
            with closing(snap.links(after=first - 1, upto=upto)) as links, \
                    closing(snap.events(after=first - 1, upto=upto)) as events:
                written = self._write_events(out, links, events, prev, last)
        header["events"] = written
        return header

    @staticmethod
    def _write_events(out: IO[str], links: Iterator[tuple[int, bytes, int, bytes]], events: Iterator[Row],
                      prev: bytes, last: int) -> int:
        written = 0
        chained = next(links, None)
        for position, originator_id, version, topic, state in events:
            while chained is not None and chained[0] < position:
                chained = next(links, None)
            stored_link = chained[3] if chained is not None and chained[0] == position else None
            out.write(json.dumps({
                "type": "event", "position": position, "originator_id": originator_id.decode(errors="replace"),
                "originator_version": version, "topic": topic.decode(errors="replace"),
                "state": base64.b64encode(state).decode("ascii"), "previous_link": prev.hex(),
                "link": stored_link.hex() if stored_link else None, "in_range": position <= last,
            }) + "\n")
            prev = stored_link or prev
            written += 1
        return written


def _id(originator_id: bytes) -> str:
    text = originator_id.decode(errors="replace")
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}" if len(text) == 32 else text


_DIFFERS = "the recomputed link differs from the {}"
_SEALS_GONE = ("the seals were deleted, or the first seal stopped (or is still running) between writing its links "
               "and recording its seal")


def _mismatch(position: int, found: bytes, expected: list[tuple[str, Any]]) -> Problem | None:
    """The first of the seals, published seal or head ``expected`` at ``position`` that ``found`` differs from."""
    for what, seal in expected:
        if found != (seal[1] if what == "head" else bytes.fromhex(seal.link)):
            return Problem(position, "seal_mismatch", _DIFFERS.format(what))
    return None


def _published_json(seal: Seal | None) -> dict[str, Any] | None:
    """A published seal as given: a seal file in full; a position and link alone (``seal_id`` 0) as such."""
    if seal is None:
        return None
    return seal.to_json() if seal.seal_id else {"format": SEAL_FORMAT, "position": seal.position, "link": seal.link}


@dataclass
class FileVerification:
    """What :func:`verify_export` found in an export file."""

    ok: bool
    events: int = 0
    first_position: int | None = None
    last_position: int | None = None
    anchored: bool = False
    seal: Seal | None = None
    published: bool | None = None
    problem: Problem | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.problem is not None:
            return f"TAMPERED at position {self.problem.position}: {self.problem.kind} - {self.problem.detail}"
        text = f"OK: {self.events} events, positions {self.first_position}..{self.last_position}, links consistent"
        if self.anchored and self.seal is not None:
            text += f"; the last link matches seal #{self.seal.seal_id} at position {self.seal.position}"
        else:
            text += "; not anchored to a seal"
        if self.published:
            text += "; matches the published seal"
        return text

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "events": self.events, "first_position": self.first_position,
                "last_position": self.last_position, "anchored": self.anchored,
                "seal": self.seal.to_json() if self.seal else None, "published": self.published,
                "problem": asdict(self.problem) if self.problem else None, "notes": self.notes,
                "summary": self.summary()}


def verify_export(path: Path, published: Seal | None = None) -> FileVerification:
    """Check an export file offline: every link recomputed from the file's own events."""
    with Path(path).open(encoding="utf-8", errors="replace") as fh:
        try:
            header = json.loads(fh.readline() or "{}")
        except ValueError:
            header = {}
        if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
            return FileVerification(False, problem=Problem(0, "format", f"not a {EXPORT_FORMAT} file"))
        result = FileVerification(ok=True)
        if header.get("seal"):
            result.seal = Seal.from_json(header["seal"])
        if header.get("previous_link") is None:
            if header.get("first_position") is not None:
                result.ok, result.problem = False, Problem(int(header["first_position"]), "truncated",
                                                           "the header names events, but gives no previous link")
                return result
            if published is not None:
                result.ok, result.problem = False, Problem(published.position, "not_covered",
                                                           "the file holds no events to check the published seal "
                                                           "against")
                return result
            result.notes.append("the file holds no events")
            return result
        prev = bytes.fromhex(header["previous_link"])
        last_position = None
        published_link = None
        for number, line in enumerate(fh, start=2):
            try:
                item = json.loads(line)
                position = int(item["position"])
                fields = (item["originator_id"].encode(), int(item["originator_version"]), item["topic"].encode(),
                          base64.b64decode(item["state"], validate=True))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                result.problem = Problem(last_position or 0, "format",
                                         f"line {number} is not an exported event ({type(exc).__name__}: {exc})")
                break
            if last_position is not None and position <= last_position:
                result.problem = Problem(position, "reordered", f"line {number}: positions do not rise")
                break
            if item.get("previous_link") != prev.hex():
                result.problem = Problem(position, "chain_broken", f"line {number}: previous link does not follow")
                break
            computed = link(prev, position, *fields)
            if item.get("link") is None:
                result.problem = Problem(position, "unsealed", f"line {number}: the event has no link")
                break
            if computed.hex() != item["link"]:
                result.problem = Problem(position, "edited", f"line {number}: the event's bytes do not give its link")
                break
            prev, last_position = computed, position
            if published is not None and position == published.position:
                published_link = computed
            result.events += 1
            result.first_position = position if result.first_position is None else result.first_position
        result.last_position = last_position
    if result.problem is None:
        result.problem = _export_truncated(header, result)
    if result.problem is None and result.seal is not None:
        result.anchored = prev.hex() == result.seal.link
        if not result.anchored:
            result.problem = Problem(last_position or 0, "seal_mismatch", "the last link differs from the file's seal")
    if result.problem is None and published is not None:
        if published_link is None:
            result.problem = Problem(published.position, "not_covered",
                                     f"the published seal is at position {published.position}, outside the file's "
                                     f"positions {result.first_position}..{last_position}: the file cannot be "
                                     "checked against it")
        else:
            result.published = published_link.hex() == published.link
            if not result.published:
                result.problem = Problem(published.position, "seal_mismatch",
                                         "the link at the published seal's position differs from it")
    result.ok = result.problem is None
    return result


def _export_truncated(header: dict[str, Any], result: FileVerification) -> Problem | None:
    """Whether the file's events cover what its header says: from ``first_position`` to its
    seal's position (or to ``last_position`` when it has no seal)."""
    first = header.get("first_position")
    end = result.seal.position if result.seal is not None else header.get("last_position")
    if first is not None and result.first_position != int(first):
        return Problem(int(first), "truncated", f"the header says the events start at {first}; the file's first "
                                                f"event is at {result.first_position}")
    if end is not None and result.last_position != int(end):
        return Problem(int(end), "truncated", f"the header says the events run to {end}; the file stops at "
                                              f"{result.last_position}")
    return None
