"""The projection machinery: generations of tables, tracked positions, the runner.

A **projection** turns domain events into rows of its own tables. Its tables
live in *generations*: ``rm_<table>_g<N>``. Queries read the projection's
*active* generation; a rebuild fills a new generation while queries keep
reading the old one, then swaps the active generation in one transaction
(blue-green). Verification and as-of reports fill *scratch* generations that
are never made active and are dropped afterwards.

Tracking: ``rm_tracking`` holds, per projection and generation, the last
notification id applied. A batch writes its rows and moves its position in the
same transaction, and the position moves only from the value the batch started
at, so a crash anywhere, a second runner, or a rerun never applies an event
twice. A projection that cannot apply an event commits everything before it,
records the event's position and the error, and stops there: it never skips
an event.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import inspect as pyinspect
import json
import logging
import sqlite3
import threading
import time
import weakref
from collections import defaultdict
from contextlib import contextmanager, nullcontext, suppress
from operator import itemgetter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, ClassVar, Collection, Iterable, Iterator, Sequence

from eventsourcing.utils import resolve_topic
from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateIndex, DropIndex

from application.decoding import UUIDs, stored_rows
from application.privacy import personal_fields
from projections.textsearch import TextIndexes, TextSearch

log = logging.getLogger(__name__)

state_metadata = MetaData()

projection_state = Table(
    "rm_state",
    state_metadata,
    Column("projection", String(), primary_key=True),
    Column("active_generation", Integer, nullable=False),
)

tracking = Table(
    "rm_tracking",
    state_metadata,
    Column("projection", String(), primary_key=True),
    Column("generation", Integer, primary_key=True),
    Column("position", Integer, nullable=False),
    Column("last_event_at", DateTime(timezone=True)),
    Column("error_position", Integer),
    Column("error", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


def utc(value: datetime | None) -> datetime | None:
    """A timezone-aware UTC datetime (SQLite hands back naive UTC values)."""
    if value is None:
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _snapshot(conn: Connection) -> None:
    """Make ``conn``'s reads, until its next commit or rollback, see one state of the database:
    an explicit ``BEGIN`` on SQLite (whose driver starts no transaction for reads), REPEATABLE READ
    on PostgreSQL. Call it before the connection's first statement."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


def _now() -> datetime:
    return datetime.now(timezone.utc)


@functools.lru_cache(maxsize=1 << 14)
def uuid_text(value: Any) -> str:
    """``str(value)``, remembered for the ids seen last (an aggregate's events come close together)."""
    return str(value)


INDEX_NAMES = {"ix": "ix_%(table_name)s_%(column_0_N_name)s"}
"""Index names: ``ix_<table>_<every column>`` (a one-column index keeps SQLAlchemy's default name)."""


@dataclass(frozen=True)
class TableSpec:
    """A table of a projection: its base name, a factory of fresh columns, and the column
    searched by substring, if any (:mod:`projections.textsearch`)."""

    name: str
    columns: Callable[[], list[Column[Any]]]
    search: TextSearch | None = None


class Tables:
    """The tables of one generation of a projection, by base name (``tables.customers``)."""

    def __init__(self, projection: str, generation: int, tables: dict[str, Table],
                 text: TextIndexes | None = None) -> None:
        self.projection, self.generation, self._tables = projection, generation, tables
        self.text = text
        """The database's text indexes (None for views, which have none)."""

    def __getattr__(self, name: str) -> Table:
        try:
            return self._tables[name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self) -> Iterator[Table]:
        return iter(self._tables.values())

    def items(self) -> Iterable[tuple[str, Table]]:
        return self._tables.items()

    def contains(self, base: str, pattern: str) -> list[Any]:
        """``where`` clauses keeping the rows of ``base`` whose searched column contains ``pattern``
        (:meth:`projections.textsearch.TextIndexes.contains`)."""
        table = getattr(self, base)
        if self.text is None:
            return TextIndexes.like(table, pattern)
        return self.text.contains(table, pattern)


class FillMemory:
    """Every row of a generation that a fill started on empty tables, as last written.

    ``rows``: ``{table base name: {primary key: row}}`` for the rows written with
    ``put`` (or ``increment``); ``appended``: the base names of tables written with
    ``add``, whose rows stay in the database only; ``stored``: ``{table base name:
    {primary key: checkpoint}}``, the checkpoint each row of a versioned projection was
    last written at (so a write knows which rows have a stored version to keep in the
    history, without asking). Valid while the fill is the only writer of the generation
    and every batch it wrote committed.
    """

    def __init__(self) -> None:
        self.rows: defaultdict[str, dict[Any, dict[str, Any] | None]] = defaultdict(dict)
        self.appended: set[str] = set()
        self.stored: defaultdict[str, dict[Any, int]] = defaultdict(dict)


class Batch:
    """The rows one batch of events touches: loaded once, changed in memory, written once.

    With a :class:`FillMemory` the batch knows every row of its tables (except those of
    appended tables): lookups miss without a query and preloading is not needed.
    """

    def __init__(self, conn: Connection, tables: Tables, memory: FillMemory | None = None,
                 read_tables: Tables | None = None, history: bool = True) -> None:
        self.conn = conn
        self.tables = tables
        self.memory = memory
        self.read_tables = read_tables
        """Where rows are read from, when not ``tables`` (an as-of overlay; see :func:`as_of_tables`)."""
        self.history = history
        """Whether a flush keeps the superseded versions of a versioned projection's rows."""
        self.checkpoint = 0
        """The checkpoint the events being applied fall in (versioned projections; 0 otherwise)."""
        self._rows: defaultdict[str, dict[Any, dict[str, Any] | None]] = (
            memory.rows if memory is not None else defaultdict(dict))
        self._dirty: defaultdict[str, dict[Any, dict[str, Any]]] = defaultdict(dict)
        self._added: dict[str, list[dict[str, Any]]] = {}
        self._pk_cache: dict[str, list[Column[Any]]] = {}
        self._pk_names: dict[str, tuple[str, ...]] = {}
        self._key_getters: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self._covered: dict[str, tuple[int, set[Any]]] = {}
        self._purge: set[str] = set()
        self.position = 0
        """The notification id of the event being applied."""
        self.deferred = False
        """Whether :meth:`flush` keeps its writes for :meth:`write_deferred` (a fill that applies a
        batch's events in memory before it takes the database's write lock)."""
        self._deferred: list[Callable[[], None]] = []
        self.before_read: Callable[[], None] | None = None
        """Called before each read of the database (a fill from memory writes the batches it holds first)."""
        self.elsewhere: tuple[frozenset[type] | None, int] | None = None
        """``(event classes or None for all, last position)``: the events whose row of the projection's
        :attr:`Projection.event_rows` table another process writes (a rebuild's helper), or None."""

    def row_elsewhere(self, event: Any) -> bool:
        """Whether another process writes the row of :attr:`Projection.event_rows` for ``event``, the
        event being applied (at :attr:`position`): the projection's ``apply`` leaves it out then."""
        elsewhere = self.elsewhere
        return (elsewhere is not None and self.position <= elsewhere[1]
                and (elsewhere[0] is None or type(event) in elsewhere[0]))

    def _query(self, statement: Any) -> Any:
        """``conn.execute(statement)`` for a read; refused while a flush's writes wait in a deferred batch,
        whose rows the database does not hold yet."""
        if self._deferred:
            raise RuntimeError("a deferred batch cannot read rows while writes of an earlier checkpoint wait")
        if self.before_read is not None:
            self.before_read()
        return self.conn.execute(statement)

    def _pk(self, base: str) -> list[Column[Any]]:
        cols = self._pk_cache.get(base)
        if cols is None:
            cols = self._pk_cache[base] = list(getattr(self.tables, base).primary_key.columns)
        return cols

    def _key_getter(self, base: str) -> Callable[[dict[str, Any]], Any]:
        getter = self._key_getters.get(base)
        if getter is None:
            getter = self._key_getters[base] = itemgetter(*(c.name for c in self._pk(base)))
        return getter

    def _key_of(self, base: str, row: dict[str, Any]) -> Any:
        names = self._pk_names.get(base)
        if names is None:
            names = self._pk_names[base] = tuple(c.name for c in self._pk(base))
        return row[names[0]] if len(names) == 1 else tuple(row[n] for n in names)

    def _source(self, base: str) -> Any:
        """The table (or as-of overlay) rows of ``base`` are read from."""
        return getattr(self.read_tables if self.read_tables is not None else self.tables, base)

    def get(self, base: str, key: Any) -> dict[str, Any] | None:
        """The row with primary key ``key`` (a value, or a tuple for a composite key), or None."""
        cache = self._rows[base]
        if key not in cache:
            if self.memory is not None and base not in self.memory.appended:
                return None
            source, cols = self._source(base), self._pk(base)
            values = key if isinstance(key, tuple) else (key,)
            covered = self._covered.get(base)
            if covered is not None and values[covered[0]] in covered[1]:
                cache[key] = None  # preload_where loaded every row with this value: there is none
                return None
            row = self._query(
                select(source).where(and_(*(source.c[c.name] == v for c, v in zip(cols, values))))
            ).mappings().first()
            cache[key] = dict(row) if row else None
        return cache[key]

    def preload(self, base: str, keys: Iterable[Any]) -> None:
        """Load the rows for many single-column keys in a few queries."""
        if self.memory is not None:
            return
        cache = self._rows[base]
        wanted = list({k for k in keys if k not in cache})
        if not wanted:
            return
        source, [col] = self._source(base), self._pk(base)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            found = {r[col.name]: dict(r)
                     for r in self._query(select(source).where(source.c[col.name].in_(chunk))).mappings()}
            for key in chunk:
                cache[key] = found.get(key)

    def preload_where(self, base: str, column: str, values: Iterable[Any]) -> None:
        """Load every row whose key column ``column`` is one of ``values``; later misses
        on those values are known to be absent, without a query."""
        if self.memory is not None:
            return
        values = set(values)
        index = [c.name for c in self._pk(base)].index(column)
        covered = self._covered.get(base)
        if covered is not None and covered[0] == index:
            values -= covered[1]
        if not values:
            return
        source, names = self._source(base), [c.name for c in self._pk(base)]
        cache = self._rows[base]
        for row in self._query(select(source).where(source.c[column].in_(sorted(values)))).mappings():
            data = dict(row)
            key = data[names[0]] if len(names) == 1 else tuple(data[n] for n in names)
            cache.setdefault(key, data)
        if covered is not None and covered[0] == index:
            covered[1].update(values)
        else:
            self._covered[base] = (index, values)

    def put(self, base: str, row: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace ``row`` (it carries its primary key)."""
        key = (self._key_getters.get(base) or self._key_getter(base))(row)
        self._rows[base][key] = row
        self._dirty[base][key] = row
        return row

    def add(self, base: str, row: dict[str, Any]) -> None:
        """Append a row to an insert-only table."""
        self._added.setdefault(base, []).append(row)
        if self.memory is not None:
            self.memory.appended.add(base)

    def update_where(self, base: str, column: str, value: Any, change: Callable[[dict[str, Any]], None]) -> None:
        """Apply ``change`` to every row whose ``column`` equals ``value``: stored rows (as this
        batch left them) and rows put or added in this batch. ``column`` should be indexed."""
        source = self._source(base)
        cache = self._rows[base]
        stored = []
        for row in self._query(select(source).where(source.c[column] == value)).mappings():
            key = self._key_of(base, row)
            stored.append(key)
            cache.setdefault(key, dict(row))
        # With a fill memory the cache holds every row: those matching are stored with
        # the value, or were put in this batch.
        candidates = (list({**{k: cache[k] for k in stored}, **self._dirty.get(base, {})}.values())
                      if self.memory is not None else list(cache.values()))
        for row in candidates:
            if row is not None and row.get(column) == value:
                change(row)
                self.put(base, row)
        for row in self._added.get(base, []):
            if row.get(column) == value:
                change(row)

    def purge_text(self, base: str) -> None:
        """Have the flush leave text that rows of ``base`` no longer hold out of its text index's
        storage too (:meth:`projections.textsearch.TextIndexes.purge`); for erased personal data."""
        self._purge.add(base)

    def increment(self, base: str, key: Any, column: str, by: Any) -> None:
        """Add ``by`` to ``column`` of the row at ``key`` (a tuple; created at zero)."""
        if len(key) == 1:
            key = key[0]
        row = self._rows[base].get(key)
        if row is None:
            row = self.get(base, key)
        if row is None:
            cols = self._pk(base)
            row = {c.name: v for c, v in zip(cols, key if isinstance(key, tuple) else (key,))}
            for c in getattr(self.tables, base).columns:
                if c.name not in row:
                    row[c.name] = 0
            self._rows[base][key] = row
        row[column] = row[column] + by
        self._dirty[base][key] = row

    def flush(self) -> None:
        """Write the rows put (upserted by primary key) and added (inserted) since the last flush.

        In a versioned projection each row written carries :attr:`checkpoint`, and the
        stored version it replaces, if from an earlier checkpoint, is first copied to the
        table's history (``superseded_at`` = this checkpoint).

        A :attr:`deferred` batch keeps the writes instead, with copies of the rows as they
        stand now, for :meth:`write_deferred`."""
        for write in self._writes():
            if self.deferred:
                self._deferred.append(write)
            else:
                write()
        self._dirty, self._added, self._purge = defaultdict(dict), {}, set()

    def write_deferred(self) -> None:
        """Make the writes a :attr:`deferred` batch kept, in order, and the next ones at once."""
        self.deferred = False
        writes, self._deferred = self._deferred, []
        for write in writes:
            write()

    def _writes(self) -> list[Callable[[], None]]:
        """The writes of a flush, each a call (see :meth:`flush`)."""
        checkpoint, deferred = self.checkpoint, self.deferred
        writes: list[Callable[[], None]] = []
        for base, rows in self._dirty.items():
            if not rows:
                continue
            values = list(rows.values())
            if checkpoint > 0:
                for row in values:
                    row[CHECKPOINT] = checkpoint
            writes.append(functools.partial(self._upsert_rows, base, [dict(r) for r in values] if deferred else values,
                                            checkpoint))
        for base, added in self._added.items():
            if added:
                if checkpoint > 0:
                    for row in added:
                        row[CHECKPOINT] = checkpoint
                writes.append(functools.partial(self._insert_rows, base,
                                                [dict(r) for r in added] if deferred else added))
        if self.tables.text is not None:
            for base in self._purge:
                writes.append(functools.partial(self._purge_text, base))
        return writes

    # The writes use the batch's connection as it is when they run: a fill from memory may write a
    # batch it held with another connection than the one the batch was applied with.

    def _insert_rows(self, base: str, rows: list[dict[str, Any]]) -> None:
        _write_many(self.conn, getattr(self.tables, base), rows, False)

    def _purge_text(self, base: str) -> None:
        assert self.tables.text is not None
        self.tables.text.purge(self.conn, getattr(self.tables, base))

    def _upsert_rows(self, base: str, rows: list[dict[str, Any]], checkpoint: int) -> None:
        table, cols = getattr(self.tables, base), self._pk(base)
        if checkpoint > 0 and self.history:
            superseded = rows
            if self.memory is not None:  # only the rows stored at an earlier checkpoint have a version to keep
                stored, key_of = self.memory.stored[base], self._key_of
                superseded = [r for r in rows if stored.get(key_of(base, r), checkpoint) < checkpoint]
                stored.update((key_of(base, r), checkpoint) for r in rows)
            _execute_many(self.conn, _keep_superseded(table, getattr(self.tables, base + HISTORY_SUFFIX)),
                          [{f"k_{c.name}": r[c.name] for c in cols} | {"k_checkpoint": checkpoint} for r in superseded])
        if self.conn.dialect.name in ("sqlite", "postgresql"):
            _write_many(self.conn, table, rows, upsert=True)
            return
        keys = [{f"k_{c.name}": r[c.name] for c in cols} for r in rows]
        self.conn.execute(delete(table).where(and_(*(c == bindparam(f"k_{c.name}") for c in cols))), keys)
        self.conn.execute(insert(table), rows)


_KEEPERS: weakref.WeakKeyDictionary[Table, Any] = weakref.WeakKeyDictionary()

CHECKPOINT = "checkpoint"
"""The column of a versioned projection's row: the checkpoint its values stand at."""
SUPERSEDED_AT = "superseded_at"
"""The column of a history row: the checkpoint from which a newer version replaced it."""
HISTORY_SUFFIX = "_history"


def checkpoint_of(position: int, every: int) -> int:
    """The checkpoint a position falls in: the next multiple of ``every`` at or after it."""
    return -(-position // every) * every


def _keep_superseded(table: Table, history: Table) -> Any:
    """``INSERT INTO history SELECT …, :k_checkpoint FROM table WHERE key = :k_… AND checkpoint < :k_checkpoint``."""
    found = _KEEPERS.get(table)
    if found is None:
        names = [c.name for c in table.columns]
        keys = [c for c in table.primary_key.columns if c.name != CHECKPOINT]
        source = select(*(table.c[n] for n in names), bindparam("k_checkpoint", type_=Integer)).where(
            *(c == bindparam(f"k_{c.name}") for c in keys), table.c[CHECKPOINT] < bindparam("k_checkpoint"))
        found = _KEEPERS[table] = insert(history).from_select([*names, SUPERSEDED_AT], source)
    return found


_STATEMENTS: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _execute_many(conn: Connection, statement: Any, params: list[dict[str, Any]]) -> None:
    """``conn.execute(statement, params)`` in one ``executemany`` of the driver: the statement
    compiled once per dialect, each value through its bind parameter's processor, as
    SQLAlchemy's own ``execute`` does (for a statement whose every bind is in ``params``)."""
    if not params:
        return
    dialect = conn.dialect
    per_statement = _STATEMENTS.setdefault(statement, {})
    plan = per_statement.get(dialect.name)
    if plan is None:
        compiled = statement.compile(dialect=dialect)
        names = list(compiled.positiontup) if compiled.positional else list(compiled.binds)
        if set(names) != set(params[0]):  # a positional statement may name a bind twice
            plan = per_statement[dialect.name] = (None, None)
        else:
            processors = [(i, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
                          for i, name in enumerate(names)]
            plan = per_statement[dialect.name] = (compiled.string, (names, compiled.positional,
                                                                   [(i, p) for i, p in processors if p]))
    sql, detail = plan
    if sql is None:
        conn.execute(statement, params)
        return
    names, positional, processors = detail
    if not processors and positional:
        conn.exec_driver_sql(sql, [tuple([p[n] for n in names]) for p in params])
        return
    columns = [[p[name] for p in params] for name in names]
    for i, process in processors:
        columns[i] = list(map(process, columns[i]))
    rows: list[Any] = list(zip(*columns)) if positional else [dict(zip(names, values)) for values in zip(*columns)]
    conn.exec_driver_sql(sql, rows)


_WRITES: weakref.WeakKeyDictionary[Table, dict[Any, Any]] = weakref.WeakKeyDictionary()


def _write_many(conn: Connection, table: Table, rows: list[dict[str, Any]], upsert: bool) -> None:
    """Insert (or upsert) ``rows`` of ``table`` in one ``executemany``.

    The statement is compiled once per table, dialect and column set; each value goes
    through its column type's bind processor, as SQLAlchemy's own ``execute`` does, so
    the stored values are the same.
    """
    dialect = conn.dialect
    columns = tuple(rows[0])
    per_table = _WRITES.setdefault(table, {})
    key = (dialect.name, upsert, columns)
    plan = per_table.get(key)
    if plan is None:
        statement = _upsert(table, dialect.name) if upsert else insert(table)
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        names = list(compiled.positiontup) if compiled.positional else list(compiled.binds)
        if sorted(names) != sorted(columns) or len(names) != len(set(names)):
            plan = per_table[key] = (None, statement)
        else:
            processors = [(i, _fast(table.c[name].type.dialect_impl(dialect).bind_processor(dialect)))
                          for i, name in enumerate(names)]
            kept = [(i, process) for i, process in processors if process]
            getter = itemgetter(*names) if len(names) > 1 else (lambda row, name=names[0]: (row[name],))
            plan = per_table[key] = (compiled.string, (names, compiled.positional, kept, getter))
    sql, detail = plan
    if sql is None:
        conn.execute(detail, rows)
        return
    names, positional, processors, getter = detail
    values: list[Any] = list(map(getter, rows))  # a tuple per row, in the statement's order
    if processors:
        columns = list(zip(*values))
        for i, process in processors:
            columns[i] = tuple(map(process, columns[i]))
        values = list(zip(*columns))
    conn.exec_driver_sql(sql, values if positional else [dict(zip(names, row)) for row in values])


_PROBES = (datetime(2009, 5, 5, 9, 30, 1, 250, tzinfo=timezone.utc), datetime(2009, 12, 31, 23, 59, 59),
           datetime(1999, 1, 2, 3, 4, 5, 999999, tzinfo=timezone(timedelta(hours=8))))


_DAY_TEXT: dict[int, str] = {}
"""``YYYY-MM-DD `` by ``date.toordinal()``: the days written so far."""


def _stored_text(value: datetime) -> str:
    """``value.isoformat(" ", "microseconds")[:26]`` of a naive or UTC datetime, in fewer steps: the
    day's text remembered, the time's from a naive ``time`` (``isoformat`` of an aware datetime
    formats its offset too)."""
    ordinal = value.toordinal()
    day = _DAY_TEXT.get(ordinal)
    if day is None:
        if len(_DAY_TEXT) >= _STORED_TEXT_LIMIT:
            _DAY_TEXT.clear()
        day = _DAY_TEXT[ordinal] = value.date().isoformat() + " "
    return day + value.time().isoformat("microseconds")


_STORED_TEXT: dict[datetime, str] = {}
"""The SQLite text of the naive and UTC datetimes written last (see :func:`_fast`)."""
_STORED_TEXT_LIMIT = 1 << 17


def _fast(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """``process``, or an equivalent that gives the same value in fewer steps:

    - for a datetime processor that writes ``YYYY-MM-DD HH:MM:SS.ffffff`` (SQLite's default
      storage format, the offset left out), that text, remembered for the naive and UTC
      datetimes written last (many events share a business date, and a row's time is often
      an event's ``timestamp`` written to several tables): ``isoformat`` of an aware
      datetime costs more than a dict look-up. Naive and UTC datetimes that are equal have
      the same fields, so the same text; a naive one never equals an aware one;
    - for a boolean processor that writes ``True`` as 1 and ``False`` as 0 (no native
      boolean), those, for ``True`` and ``False`` themselves (anything else still goes
      through ``process``, which checks it).
    """
    if process is None:
        return None
    try:
        same = all(process(probe) == probe.isoformat(" ", "microseconds")[:26] for probe in _PROBES)
    except Exception:  # noqa: BLE001 - not a datetime processor
        same = False
    if same:
        def stored(value: Any, exact: type = datetime, known: dict[datetime, str] = _STORED_TEXT,
                   utc: timezone = timezone.utc) -> Any:
            if type(value) is not exact:
                return process(value)
            zone = value.tzinfo
            if zone is not utc and zone is not None:
                return value.isoformat(" ", "microseconds")[:26]
            text = known.get(value)
            if text is None:
                if len(known) >= _STORED_TEXT_LIMIT:
                    known.clear()
                text = known[value] = _stored_text(value)
            return text

        return stored
    try:
        boolean = [process(True), process(False)] == [1, 0] and all(type(process(v)) is int for v in (True, False))
    except Exception:  # noqa: BLE001 - not a boolean processor
        boolean = False
    if boolean:
        def as_int(value: Any) -> Any:
            return 1 if value is True else 0 if value is False else process(value)

        return as_int
    return process


_UPSERTS: weakref.WeakKeyDictionary[Table, dict[str, Any]] = weakref.WeakKeyDictionary()


def _upsert(table: Table, dialect: str) -> Any:
    """``INSERT … ON CONFLICT (primary key) DO UPDATE`` for ``table`` (cached per table)."""
    per_table = _UPSERTS.setdefault(table, {})
    found = per_table.get(dialect)
    if found is None:
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        statement = dialect_insert(table)
        keys = [c.name for c in table.primary_key.columns]
        others = {c.name: statement.excluded[c.name] for c in table.columns if c.name not in keys}
        found = (statement.on_conflict_do_update(index_elements=keys, set_=others) if others
                 else statement.on_conflict_do_nothing(index_elements=keys))
        per_table[dialect] = found
    return found


class Projection:
    """Base class: a name, table specs, and ``apply(batch, event)`` per event."""

    name: ClassVar[str]
    specs: ClassVar[tuple[TableSpec, ...]]
    checkpoint_every: ClassVar[int] = 0
    """Positions between checkpoints of a *versioned* projection (0: not versioned).

    A versioned projection's rows carry the checkpoint their values stand at, and
    each table has a ``<table>_history`` of the versions replaced at later
    checkpoints, so its tables as they stood at any checkpoint can be read without
    replaying the log (:func:`as_of_tables`). Batches are written at every
    checkpoint they cross, so the versions do not depend on batch sizes."""


    fill_apart: ClassVar[bool] = False
    """Whether a rebuild of every projection may fill this one in a second process while
    the first fills the others (:meth:`ProjectionRunner.rebuild`): true for projections
    that apply few of the log's events, so that the second process, which decodes only
    those (:meth:`event_classes`), takes about as long as the first."""

    event_rows: ClassVar[str | None] = None
    """The base name of a table each row of which depends on one event alone and is keyed by its
    position (:meth:`event_row`), or None. A projection with one is not versioned. When a rebuild
    fills other projections in a second process, that process writes these rows for the events it
    decodes anyway, and this projection's :meth:`apply` leaves them out (:meth:`Batch.row_elsewhere`):
    the two processes share the work (:meth:`ProjectionRunner.rebuild`)."""

    def event_row(self, position: int, event: Any) -> dict[str, Any] | None:
        """The row of :attr:`event_rows` for ``event`` at notification id ``position``, or None (it has none)."""
        raise NotImplementedError

    def handlers(self) -> dict[type, Callable[[Batch, Any], None]]:
        """Event class -> handler. Events without a handler leave the projection's rows alone."""
        raise NotImplementedError

    def event_classes(self) -> frozenset[type] | None:
        """The classes of the events :meth:`apply` acts on: those with a handler, or None
        (every event) when the projection has its own ``apply``."""
        if type(self).apply is not Projection.apply:
            return None
        return frozenset(self._handlers)

    def personal_fields_read(self, event_class: type) -> tuple[str, ...] | None:
        """The personal fields of events of ``event_class`` (named as in
        :func:`application.privacy.personal_fields` of its topic: ``("display_name",)``, ``("reason",)``)
        that this projection's :meth:`apply`, handlers or :meth:`prefetch` read; ``()`` for none, None
        for all of them (the default: a projection that does not say). A name that is not a personal
        field of the class is ignored.

        The runner decrypts only the personal fields that the projections it fills read
        (:meth:`ProjectionRunner._read`); any other reads as a stand-in that raises
        :class:`application.privacy.PersonalFieldNotRead` when used, so a handler that reads a field
        not named here stops the projection at that event (:class:`ProjectionFailed`)."""
        return None

    def prefetch(self, batch: Batch, events: Sequence[Any]) -> None:
        """Load the rows ``events`` will touch (optional optimisation)."""

    def apply(self, batch: Batch, event: Any) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(batch, event)

    def relevant(self, events: Sequence[tuple[int, Any]]) -> list[tuple[int, Any]]:
        """The ``(position, event)`` pairs :meth:`apply` acts on: those with a handler, or all of
        them when the projection has its own ``apply``."""
        if type(self).apply is not Projection.apply:
            return list(events)
        handlers = self._handlers
        return [pair for pair in events if type(pair[1]) in handlers]

    @property
    def _handlers(self) -> dict[type, Callable[[Batch, Any], None]]:
        cached = self.__dict__.get("_handler_cache")
        if cached is None:
            cached = self.__dict__["_handler_cache"] = self.handlers()
        return cached


class ProjectionFailed(RuntimeError):
    """A projection could not apply the event at ``position``; it stopped there."""

    def __init__(self, projection: str, position: int, error: str) -> None:
        super().__init__(f"projection {projection} stopped at position {position}: {error}")
        self.projection, self.position, self.error = projection, position, error


class RebuildInterrupted(Exception):
    """A rebuild stopped when asked to (its ``stop`` event set), before its swap: the live generations are
    unchanged, and its unfinished ones were dropped.

    ``names``: the projections the rebuild was for; ``reached``: ``{projection: (generation, position)}``
    of the generations dropped, each with the position its last committed batch had reached (empty
    when the rebuild stopped before it created any); ``head``: the newest position of the log when it
    stopped; ``left``: ``{projection: why}`` of the generations that could not be dropped (``tuohu
    projections status`` shows them as unfinished; the next rebuild drops them)."""

    def __init__(self, names: Sequence[str], reached: dict[str, tuple[int, int]], head: int,
                 left: dict[str, str] | None = None) -> None:
        self.names, self.reached, self.head, self.left = list(names), reached, head, dict(left or {})
        if reached:
            said = f"stopped before the swap; its unfinished generations ({describe_fill(reached, head)}) were dropped"
        elif self.left:
            said = "stopped before the swap"
        else:
            said = "stopped before it created any table"
        if self.left:
            said += "; not dropped (the next rebuild drops them): " + "; ".join(
                f"{name} {why}" for name, why in self.left.items())
        super().__init__(f"rebuild of {', '.join(self.names)} {said}; the live tables are unchanged and still served")


class VerifyInterrupted(Exception):
    """A ``verify`` stopped when asked to (its ``stop`` event set): the scratch tables of the projection it
    was checking were dropped. ``checked``: the projections compared before it stopped; ``at``: the one it
    was checking; ``mismatches``: those found in ``checked`` (as :meth:`ProjectionRunner.verify` returns)."""

    def __init__(self, checked: Sequence[str], at: str, mismatches: list[dict[str, Any]]) -> None:
        self.checked, self.at, self.mismatches = list(checked), at, list(mismatches)
        done = (f"{', '.join(self.checked)} compared ({len(self.mismatches)} tables differ)" if self.checked
                else "nothing compared")
        super().__init__(f"verify stopped while checking {at}: {done}; its scratch tables were dropped; "
                         "the live tables are unchanged")


def describe_fill(reached: dict[str, tuple[int, int]], head: int) -> str:
    """How far generations had been filled, for ``{projection: (generation, position)}`` and the log's
    ``head``: ``generation 3 of pipeline, actors at position 20,000 of 59,680``, or
    ``pipeline generation 3 at position 40,000, team generation 2 at position 12,000, of 59,680``."""
    generations = {generation for generation, _ in reached.values()}
    positions = {position for _, position in reached.values()}
    if len(generations) == 1 and len(positions) == 1:
        return f"generation {generations.pop()} of {', '.join(reached)} at position {positions.pop():,} of {head:,}"
    return ", ".join(f"{name} generation {generation} at position {position:,}"
                     for name, (generation, position) in reached.items()) + f", of {head:,}"


class ReadModelStore:
    """The read-model database: generations of each projection's tables and their tracking."""

    def __init__(self, engine: Engine, projections: Sequence[Projection]) -> None:
        self.engine = engine
        self.projections = {p.name: p for p in projections}
        self._tables: dict[tuple[str, int], Tables] = {}
        self._lock = threading.Lock()
        self.text = TextIndexes(engine)
        """The text indexes of the tables whose spec names a searched column."""
        with engine.begin() as conn:  # once, whoever else opens a new database at the same moment
            _setup_lock(conn)
            state_metadata.create_all(conn)
            for name in self.projections:
                if conn.execute(select(projection_state).where(projection_state.c.projection == name)).first() is None:
                    conn.execute(insert(projection_state).values(projection=name, active_generation=1))
                    self._start_tracking(conn, name, 1)
            actives = {name: self.active_generation(name, conn) for name in self.projections}
            earlier = {name: active for name, active in actives.items()
                       if not self._has_current_columns(name, active, conn)}
            for name, active in actives.items():
                if name not in earlier:
                    self._ensure_tables(name, active, conn)
        for name, active in earlier.items():
            # Tables of an earlier release: start a new, empty generation (the runner fills it from the log);
            # outside the lock above, since a new generation takes one of its own.
            log.warning("read model %s: generation %s lacks columns of this release; starting a new one",
                        name, active)
            self.activate(name, self.new_generation(name))
            self.drop_generation(name, active)


    # ------------------------------------------------------------------ generations

    def tables(self, name: str, generation: int | None = None) -> Tables:
        """The tables of ``name`` in ``generation`` (the active one by default)."""
        generation = self.active_generation(name) if generation is None else generation
        with self._lock:
            found = self._tables.get((name, generation))
            if found is None:
                metadata = MetaData(naming_convention=INDEX_NAMES)
                projection = self.projections[name]
                tables = {}
                for spec in projection.specs:
                    if not projection.checkpoint_every:
                        tables[spec.name] = Table(f"rm_{spec.name}_g{generation}", metadata, *spec.columns(),
                                                  info={"search": spec.search} if spec.search else {})
                        continue
                    tables[spec.name] = Table(f"rm_{spec.name}_g{generation}", metadata, *spec.columns(),
                                              Column(CHECKPOINT, Integer, nullable=False, default=0))
                    history = [c for c in spec.columns() if isinstance(c, Column)]
                    for column in history:
                        column.index = None  # history is read by key and checkpoint only
                    tables[spec.name + HISTORY_SUFFIX] = Table(
                        f"rm_{spec.name}{HISTORY_SUFFIX}_g{generation}", metadata, *history,
                        Column(CHECKPOINT, Integer, primary_key=True), Column(SUPERSEDED_AT, Integer, nullable=False))
                found = Tables(name, generation, tables, self.text)
                self._tables[(name, generation)] = found
        return found

    def _has_current_columns(self, name: str, generation: int, conn: Connection) -> bool:
        """Whether the generation has every table and column this release defines (or no table yet), as
        ``conn``'s transaction sees it."""
        inspector = inspect(conn)
        tables = list(self.tables(name, generation))
        present = [t for t in tables if inspector.has_table(t.name)]
        if present and len(present) < len(tables):
            return False  # a table this release added
        for table in present:
            stored = {c["name"] for c in inspector.get_columns(table.name)}
            if not {c.name for c in table.columns} <= stored:
                return False
        return True

    def _ensure_tables(self, name: str, generation: int, conn: Connection | None = None) -> Tables:
        """The tables of the generation, created where missing, with their text indexes (in ``conn``'s
        transaction, or one of their own)."""
        tables = self.tables(name, generation)
        with self.engine.begin() if conn is None else nullcontext(conn) as conn:
            for table in tables:
                table.create(conn, checkfirst=True)
            for table in tables:
                self.text.create(conn, table)  # a generation of an earlier release gets it from its rows
        return tables

    def active_generation(self, name: str, conn: Connection | None = None) -> int:
        """The generation queries read (in ``conn``'s transaction, if given)."""
        with self.engine.connect() if conn is None else nullcontext(conn) as conn:
            return int(conn.execute(select(projection_state.c.active_generation)
                                    .where(projection_state.c.projection == name)).scalar_one())

    def new_generation(self, name: str) -> int:
        """Create empty tables for a new generation of ``name``, tracked from position 0. Its number is
        taken under a write lock - SQLite's, or the lock of the projection's state row on PostgreSQL -
        so callers at the same moment in other processes each get their own number, and each creates
        only its own generation's tables. Raises ``sqlalchemy.exc.NoResultFound`` if the store does
        not track ``name``."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")  # the write lock before the read
            conn.execute(select(projection_state.c.projection).where(projection_state.c.projection == name)
                         .with_for_update()).scalar_one()  # PostgreSQL: the next caller waits here
            latest = conn.execute(select(tracking.c.generation).where(tracking.c.projection == name)
                                  .order_by(tracking.c.generation.desc()).limit(1)).scalar_one()
            generation = int(latest) + 1
            self._start_tracking(conn, name, generation)
        self._ensure_tables(name, generation)
        return generation

    def _start_tracking(self, conn: Connection, name: str, generation: int) -> None:
        conn.execute(insert(tracking).values(projection=name, generation=generation, position=0, updated_at=_now()))

    def drop_indexes(self, name: str, generation: int) -> None:
        """Drop the secondary indexes and text indexes of ``generation`` of ``name`` (to fill its tables faster)."""
        with self.engine.begin() as conn:
            for table in self.tables(name, generation):
                for index in table.indexes:
                    conn.execute(DropIndex(index, if_exists=True))
                self.text.drop(conn, table)

    def create_indexes(self, name: str, generation: int) -> None:
        """Create the secondary indexes and text indexes of ``generation`` of ``name`` that are missing."""
        with self.engine.begin() as conn:
            for table in self.tables(name, generation):
                for index in table.indexes:
                    conn.execute(CreateIndex(index, if_not_exists=True))  # by its stored (shortened) name
                self.text.create(conn, table)

    def is_empty(self, name: str, generation: int) -> bool:
        """Whether every table of ``generation`` of ``name`` has no rows."""
        with self.engine.connect() as conn:
            return all(conn.execute(select(1).select_from(table).limit(1)).first() is None
                       for table in self.tables(name, generation))

    def activate(self, name: str, generation: int) -> None:
        """Make ``generation`` the one queries read (one transaction)."""
        with self.engine.begin() as conn:
            conn.execute(update(projection_state).where(projection_state.c.projection == name)
                         .values(active_generation=generation))

    def swap(self, generations: dict[str, int]) -> dict[str, int]:
        """Make each generation of ``{projection: generation}`` the one queries read, all in one
        transaction. Returns ``{projection: the generation active before}``."""
        olds = {}
        with self.engine.begin() as conn:
            for name, generation in generations.items():
                mine = projection_state.c.projection == name
                olds[name] = int(conn.execute(select(projection_state.c.active_generation).where(mine)).scalar_one())
                conn.execute(update(projection_state).where(mine).values(active_generation=generation))
        return olds

    def drop_generation(self, name: str, generation: int) -> None:
        """Drop the tables and tracking of a generation that is not active."""
        if generation == self.active_generation(name):
            raise ValueError(f"generation {generation} of {name} is active and cannot be dropped")
        tables = self.tables(name, generation)
        with self.engine.begin() as conn:
            for table in tables:
                self.text.drop(conn, table)
        for table in tables:
            table.drop(self.engine, checkfirst=True)
        with self.engine.begin() as conn:
            conn.execute(delete(tracking).where(and_(tracking.c.projection == name, tracking.c.generation == generation)))
        with self._lock:
            self._tables.pop((name, generation), None)

    def generations(self, name: str) -> list[int]:
        """Every generation of ``name`` that has tables (and tracking), oldest first."""
        with self.engine.connect() as conn:
            return [int(g) for g in conn.execute(select(tracking.c.generation).where(tracking.c.projection == name)
                                                 .order_by(tracking.c.generation)).scalars()]

    def tracked(self) -> dict[str, tuple[int, list[dict[str, Any]]]]:
        """Per projection, its active generation and the tracking row of every generation it has,
        oldest first, read in one statement (so the active generation and the rows agree):
        ``{projection: (active generation, [{"generation", "position", "last_event_at", "error_position",
        "error", "updated_at"}, ...])}``; ``updated_at`` is when a batch last wrote the generation
        (timezone-aware UTC, as ``last_event_at``)."""
        found: dict[str, tuple[int, list[dict[str, Any]]]] = {}
        columns = [c for c in tracking.c if c.name != "projection"]
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(projection_state.c.projection, projection_state.c.active_generation, *columns)
                .join(tracking, tracking.c.projection == projection_state.c.projection)
                .order_by(projection_state.c.projection, tracking.c.generation)).mappings()
            for row in rows:
                name = row["projection"]
                if name not in self.projections:
                    continue
                found.setdefault(name, (int(row["active_generation"]), []))[1].append(
                    {c.name: utc(row[c.name]) if isinstance(row[c.name], datetime) else row[c.name] for c in columns})
        return found

    # ------------------------------------------------------------------ tracking

    def tracking_row(self, name: str, generation: int | None = None) -> dict[str, Any]:
        generation = self.active_generation(name) if generation is None else generation
        with self.engine.connect() as conn:
            row = conn.execute(select(tracking).where(and_(tracking.c.projection == name,
                                                           tracking.c.generation == generation))).mappings().one()
        return dict(row)

    def position(self, name: str, generation: int | None = None) -> int:
        return int(self.tracking_row(name, generation)["position"])

    def standings(self, names: Sequence[str], conn: Connection | None = None) -> dict[str, tuple[int, int]]:
        """``{projection: (active generation, its position)}`` of ``names``, in one query (on ``conn``
        when given)."""
        with (nullcontext(conn) if conn is not None else self.engine.connect()) as conn:
            rows = conn.execute(
                select(projection_state.c.projection, projection_state.c.active_generation, tracking.c.position)
                .join(tracking, and_(tracking.c.projection == projection_state.c.projection,
                                     tracking.c.generation == projection_state.c.active_generation))
                .where(projection_state.c.projection.in_(list(names)))).all()
        found = {name: (int(generation), int(position)) for name, generation, position in rows}
        return {name: found[name] for name in names}

    # ------------------------------------------------------------------ checksums

    def checksum(self, name: str, generation: int | None = None, conn: Connection | None = None) -> dict[str, str]:
        """SHA-256 of every table of a generation: rows in primary-key order, values canonicalised;
        and of every FTS5 text index (as ``<table>_search``): its entries in index order."""
        tables = self.tables(name, generation)
        result = {}
        own = conn is None
        conn = conn or self.engine.connect()
        try:
            for base, table in tables.items():
                digest = hashlib.sha256()
                order = list(table.primary_key.columns)
                for row in conn.execute(select(table).order_by(*order)):
                    digest.update(json.dumps([_canonical(v) for v in row], separators=(",", ":")).encode())
                    digest.update(b"\n")
                result[base] = digest.hexdigest()
                searched = self.text.checksum(conn, table)
                if searched is not None:
                    result[f"{base}_search"] = searched
        finally:
            if own:
                conn.close()
        return result


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc(value).isoformat()  # type: ignore[union-attr]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else str(value.normalize())
    if isinstance(value, float):
        return repr(round(value, 9))
    return value


EventFilter = Callable[[Any], bool]

_FILL_CACHE_KIB = -131072
"""SQLite page cache of a connection while it writes a fill batch: 128 MiB (negative: KiB)."""
_DEFAULT_CACHE_KIB = -2000
"""SQLite's default page cache, 2 MB, set back once the fill batch is written."""


def _setup_lock(conn: Connection) -> None:
    """Begin ``conn``'s transaction holding a lock that other processes setting up the same read-model
    database wait for: SQLite's write lock; on PostgreSQL, a transaction-level advisory lock of the schema."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.tuohu read models'))")


def _fill_cache(conn: Connection, writing: bool) -> None:
    """On SQLite, the page cache of ``conn`` while it writes a fill batch (:data:`_FILL_CACHE_KIB`), or,
    once written, the default one again (:data:`_DEFAULT_CACHE_KIB`); nothing on other databases."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql(f"PRAGMA cache_size={_FILL_CACHE_KIB if writing else _DEFAULT_CACHE_KIB}")


def _commit_unchecked(conn: Connection) -> None:
    """Commit ``conn``'s transaction; on SQLite without the checkpoint of the write-ahead log that a commit
    runs when it finds the log over the connection's threshold (``PRAGMA wal_autocheckpoint``, 1,000 pages
    by default): the pages written stay in the log until another connection's commit, or a later one of
    this connection's, checkpoints them. Their readers see them either way."""
    if conn.dialect.name != "sqlite":
        conn.commit()
        return
    # On the driver's connection: restored even when the commit fails (SQLAlchemy then refuses statements
    # until a rollback), so that no pooled connection is left never checkpointing.
    driver = conn.connection.driver_connection
    pages = int(driver.execute("PRAGMA wal_autocheckpoint").fetchone()[0])  # type: ignore[union-attr]
    driver.execute("PRAGMA wal_autocheckpoint=0")  # type: ignore[union-attr]
    try:
        conn.commit()
    finally:
        driver.execute(f"PRAGMA wal_autocheckpoint={pages}")  # type: ignore[union-attr]


class ProjectionRunner:
    """Applies the application's event log to the projections; catches up, then follows."""

    def __init__(self, recorder: Any, mapper: Any, store: ReadModelStore, batch_size: int = 2000,
                 fill_batch_size: int = 20_000) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.store = store
        self.batch_size = batch_size
        """Events per transaction when catching up the active generations."""
        self.fill_batch_size = fill_batch_size
        """Events per transaction when filling a generation no query reads yet."""
        self._lock = threading.Lock()
        self._progress = threading.Condition()
        self._uuids = UUIDs()
        """The originator ids read last (:func:`application.decoding.stored_rows`)."""
        self.helper: Any = None
        """A recipe for a runner like this one in another process (:mod:`projections.helper`), or None:
        with one, :meth:`rebuild` fills the projections marked ``fill_apart`` in a helper process."""
        self.helper_threshold = 200_000
        """The fewest events in the log for :meth:`rebuild` to start a helper (which takes a second or two)."""
        self._elsewhere: dict[tuple[str, int], tuple[frozenset[type] | None, int]] = {}
        """``{(projection, generation): (event classes, last position)}`` of the fills now running whose
        :attr:`Projection.event_rows` another process writes (:meth:`fill_many`'s ``elsewhere``)."""
        self._unchecked: dict[tuple[str, int], Callable[[], bool]] = {}
        """``{(projection, generation): whether another process checkpoints now}`` of the fills whose batch
        commits leave SQLite's log to that process to checkpoint (:meth:`fill_many`'s ``checkpointed_elsewhere``)."""
        self._held: dict[tuple[str, int], list[_Held]] = {}
        """``{(projection, generation): batches}`` a fill from memory has applied but not yet written
        (:meth:`_write_held`)."""
        self._wanted = threading.Event()
        """Set by :meth:`wait_for`: a following runner catches up now rather than at its next poll."""
        self._reads: dict[frozenset[str], Callable[[str], tuple[str, ...]]] = {}
        """Per set of projections, the personal fields they read by topic (:meth:`_fields_read`)."""
        self._bulk_takes: frozenset[str] | None = None
        """The keywords the mapper's bulk decoding takes of ``fields`` and ``note_owners`` (None: not looked yet)."""

    # ------------------------------------------------------------------ catching up

    def catch_up(self, until: int | None = None, names: Sequence[str] | None = None) -> dict[str, int]:
        """Bring each active projection (or ``names``) up to the head, or to ``until``.

        Returns ``{projection: position}``. Raises :class:`ProjectionFailed` for the
        first projection that stopped on an event (the others still advance).
        """
        names = list(names or self.store.projections)
        failures: list[ProjectionFailed] = []
        with self._lock:
            standings = self.store.standings(names)
            targets = {n: generation for n, (generation, _) in standings.items()}
            positions = {n: position for n, (_, position) in standings.items()}
            stopped: set[str] = set()
            while True:
                pending = {n: p for n, p in positions.items() if n not in stopped and (until is None or p < until)}
                if not pending:
                    break
                start = min(pending.values())
                limit = self.batch_size if until is None else min(self.batch_size, until - start)
                decoded = self._read(start + 1, limit, names=pending)
                if not decoded:
                    break
                unconcerned = {}
                for name, position in pending.items():
                    todo = [(i, e) for i, e in decoded if i > position]
                    if not todo:
                        continue
                    if not self.store.projections[name].relevant(todo):
                        unconcerned[name] = position
                        continue
                    try:
                        positions[name] = self._apply(name, targets[name], position, todo)
                    except ProjectionFailed as failure:
                        failures.append(failure)
                        stopped.add(name)
                        positions[name] = failure.position - 1
                    except _Moved:
                        stopped.add(name)
                if unconcerned:
                    moved = self._pass_over({n: (targets[n], p) for n, p in unconcerned.items()}, *decoded[-1])
                    for name in unconcerned:
                        if name in moved:
                            positions[name] = decoded[-1][0]
                        else:
                            stopped.add(name)
                with self._progress:
                    self._progress.notify_all()
                if len(decoded) < limit:
                    break  # at the head as it stood when read: what came since waits for the next call
        if failures:
            raise failures[0]
        return positions

    def fill(self, name: str, generation: int, until: int | None = None, keep: EventFilter | None = None) -> int:
        """Fill a (non-active) generation from its position up to ``until`` or the head,
        applying only events ``keep`` accepts. Returns its new position."""
        return self.fill_many({name: generation}, until, keep)[name]

    def fill_many(self, targets: dict[str, int], until: int | None = None,
                  keep: EventFilter | None = None, read_through: dict[str, Tables] | None = None,
                  between: Callable[[], None] | None = None,
                  elsewhere: dict[str, tuple[frozenset[type] | None, int]] | None = None,
                  riders: dict[str, int] | None = None, defer_indexes: Collection[str] = (),
                  checkpointed_elsewhere: Callable[[], bool] | None = None) -> dict[str, int]:
        """Fill several generations (``{projection: generation}``) in one pass over the
        log, decoding each event once. Returns ``{projection: position}``. ``between`` is
        called before each batch and before the indexes are built (it may raise to stop the
        fill, whose committed batches stay).

        A generation that starts empty is filled from memory: its rows stay in memory
        between batches (:class:`FillMemory`), so no batch reads them back, and on SQLite a
        batch whose writes find the write lock taken (another process filling other
        generations) is held while the next are applied (:meth:`_write_held`); all are
        written before this returns, and a stop or failure leaves each generation at its
        last written batch. ``read_through`` (``{projection: tables}``) makes the batches read rows from
        other tables than they write (an as-of overlay, :func:`as_of_tables`). ``keep`` sees the
        events as the targets do: the personal fields none of them reads are sealed
        (:meth:`Projection.personal_fields_read`).

        Sharing a rebuild between two processes (:meth:`_fill_first`): ``riders``
        (``{projection: generation}``, projections not among ``targets``) has this pass also write
        the rows of their :attr:`Projection.event_rows` tables for the events of the targets' classes
        it decodes, up to ``until``, in transactions that move no position (held as the targets'
        batches are); ``elsewhere``
        (``{projection: (event classes or None for all, last position)}``) tells targets' batches
        which of those rows another pass writes (:meth:`Batch.row_elsewhere`); the indexes of
        ``defer_indexes`` are left for a later fill to build (another process still writes rows).
        While ``checkpointed_elsewhere()`` is true (another process writing the same SQLite database, whose
        commits checkpoint its write-ahead log), the commits of the targets' batches run no checkpoint
        (:func:`_commit_unchecked`); once it is false, they do again.
        """
        read_through = read_through or {}
        positions = {name: self.store.position(name, generation) for name, generation in targets.items()}
        memories = {name: FillMemory() if (positions[name] == 0 and name not in read_through
                                           and self.store.is_empty(name, generation)) else None
                    for name, generation in targets.items()}
        for name, memory in memories.items():
            if memory is not None:
                self.store.drop_indexes(name, targets[name])
        classes = self._event_classes(targets) if keep is None else None
        topics = _Wanted(classes) if classes is not None else None
        rider = None
        if riders:
            if until is None or keep is not None or read_through:
                raise ValueError("riders are written up to a given position, in a fill of every event")
            rider = _Rider(self.store, riders, classes, until, self.most_held)
        mine = {(name, targets[name]): value for name, value in (elsewhere or {}).items() if name in targets}
        self._elsewhere.update(mine)
        unchecked = {} if checkpointed_elsewhere is None else \
            {key: checkpointed_elsewhere for key in targets.items() if key not in self._unchecked}
        self._unchecked.update(unchecked)
        done = False
        try:
            with _Collector() as collector:
                while True:
                    low = min(positions.values())
                    if until is not None and low >= until:
                        break
                    limit = self.fill_batch_size if until is None else min(self.fill_batch_size, until - low)
                    if between is not None:
                        between()
                    with collector.paused():
                        if not self._fill_batch(targets, positions, memories, low, limit, keep, read_through,
                                                topics, rider):
                            break
            for name, generation in targets.items():
                self._write_held(name, generation, wait=True)
            if rider is not None:
                rider.write_held(wait=True)
            done = True
        finally:
            for key in mine:
                self._elsewhere.pop(key, None)
            for key in unchecked:
                self._unchecked.pop(key, None)
            if not done:  # stopped or failed: what was not written stays unwritten (see _write_held)
                for key in targets.items():
                    self._held.pop(key, None)
        if between is not None:
            between()  # once more before the indexes are built, which may take a while
        for name, generation in targets.items():
            if name not in defer_indexes:
                self.store.create_indexes(name, generation)
        return positions

    def _event_classes(self, names: Iterable[str]) -> frozenset[type] | None:
        """The classes of the events the projections ``names`` act on (:meth:`Projection.event_classes`),
        or None when one of them acts on every event."""
        classes: frozenset[type] = frozenset()
        for name in names:
            wanted = self.store.projections[name].event_classes()
            if wanted is None:
                return None
            classes |= wanted
        return classes

    def _fill_batch(self, targets: dict[str, int], positions: dict[str, int], memories: dict[str, FillMemory | None],
                    low: int, limit: int, keep: EventFilter | None,
                    read_through: dict[str, Tables] | None = None, topics: _Wanted | None = None,
                    rider: _Rider | None = None) -> bool:
        """Apply the next ``limit`` events after ``low`` to each target; False at the head.

        With ``topics``, only the events of the topics it wants are decoded, and the last one
        (the targets' new position, whose time the tracking keeps). With a ``rider``, its rows
        of the decoded events are written too (see :meth:`fill_many`); the personal fields its
        projections read are decrypted with the targets'."""
        decoded = self._read(low + 1, limit, topics,
                             names=targets if rider is None else [*targets, *rider.names])
        if not decoded:
            return False
        if rider is not None:
            rider.write(decoded)
        last = decoded[-1][0]
        if keep is not None:
            decoded = [(i, e) for i, e in decoded if keep(e)]
        for name, generation in targets.items():
            position = positions[name]
            todo = decoded if not decoded or decoded[0][0] > position else [(i, e) for i, e in decoded if i > position]
            if todo:
                positions[name] = self._apply(name, generation, positions[name], todo, through=last,
                                              memory=memories[name], read_tables=(read_through or {}).get(name))
            elif positions[name] < last:
                self._write_held(name, generation, wait=True)
                self._advance(name, generation, positions[name], last)
                positions[name] = last
        return True

    def _read(self, start: int, limit: int, topics: _Wanted | None = None,
              names: Iterable[str] | None = None) -> list[tuple[int, Any]]:
        """``(notification id, event)`` of the events from notification id ``start`` on, at most ``limit``;
        with ``topics``, only those of the topics it wants, and the last one whatever its topic.

        With a mapper that decodes in bulk (:meth:`application.privacy.PersonalDataMapper.to_domain_events`)
        the stored events are read as tuples (:func:`application.decoding.stored_rows`) and decoded
        together; otherwise each notification is decoded by ``mapper.to_domain_event``. With ``names``,
        the projections the events are for, a bulk decoder that takes ``fields`` decrypts only the
        personal fields they read (:meth:`Projection.personal_fields_read`), and one that takes
        ``note_owners`` notes no owners (projections write no events)."""
        bulk = getattr(self.mapper, "to_domain_events", None)
        if bulk is None:
            notifications = _of_topics(self.recorder.select_notifications(start=start, limit=limit), topics,
                                       lambda n: n.topic)
            return [(n.id, self.mapper.to_domain_event(n)) for n in notifications]
        rows = _of_topics(stored_rows(self.recorder, start, limit, self._uuids), topics, itemgetter(3))
        if names is None:
            return list(zip([row[0] for row in rows], bulk(rows)))
        if self._bulk_takes is None:
            self._bulk_takes = frozenset({"fields", "note_owners"} & set(pyinspect.signature(bulk).parameters))
        options: dict[str, Any] = {}
        if "fields" in self._bulk_takes:
            options["fields"] = self._fields_read(frozenset(names))
        if "note_owners" in self._bulk_takes:
            options["note_owners"] = False
        return list(zip([row[0] for row in rows], bulk(rows, **options)))

    def _fields_read(self, names: frozenset[str]) -> Callable[[str], tuple[str, ...]]:
        """By topic, the personal fields (:func:`application.privacy.personal_fields`) that at least one of
        the projections ``names`` reads (:meth:`Projection.personal_fields_read`; all of them when one
        does not say, or the topic names no class), remembered per set of projections and topic."""
        found = self._reads.get(names)
        if found is not None:
            return found
        projections = [self.store.projections[name] for name in sorted(names)]
        known: dict[str, tuple[str, ...]] = {}

        def fields(topic: str) -> tuple[str, ...]:
            read = known.get(topic)
            if read is None:
                read = known[topic] = _personal_fields_read(projections, topic)
            return read

        self._reads[names] = fields
        return fields

    def _apply(self, name: str, generation: int, position: int, events: list[tuple[int, Any]],
               through: int | None = None, memory: FillMemory | None = None,
               read_tables: Tables | None = None) -> int:
        """One transaction: rows of ``events`` and the position moved from ``position``."""
        projection = self.store.projections[name]
        try:
            return self._commit(projection, generation, position, events, through, memory, read_tables)
        except _EventFailed as failed:
            self._write_held(name, generation, wait=True)  # the batches before this one, so that it starts there
            good = [(i, e) for i, e in events if i < failed.position]
            if good:
                self._commit(projection, generation, position, good, None, read_tables=read_tables)
            self._record_error(name, generation, failed.position, failed.error)
            raise ProjectionFailed(name, failed.position, failed.error) from None
        except (_Moved, ProjectionFailed):
            raise
        except Exception as exc:  # noqa: BLE001 - outside a handler (prefetch, a checkpoint, the writes)
            self._write_held(name, generation, wait=True)
            self._fail_apart(name, generation, position, events, exc, read_tables)

    def _fail_apart(self, name: str, generation: int, position: int, events: list[tuple[int, Any]],
                    exc: Exception, read_tables: Tables | None = None) -> None:
        """After ``events`` failed together from ``position`` outside a handler (prefetch, a checkpoint,
        the writes): apply each alone, in a transaction of its own, to stop at the one that fails
        (:class:`ProjectionFailed` at it), or raise :class:`ProjectionFailed` at the last if each applies."""
        error = f"{type(exc).__name__}: {exc}"
        if len(events) > 1:
            for single in events:
                position = self._apply(name, generation, position, [single], read_tables=read_tables)
            error = f"the batch failed though each of its events applies alone: {error}"
        self._record_error(name, generation, events[-1][0], error)
        raise ProjectionFailed(name, events[-1][0], error) from exc

    def _commit(self, projection: Projection, generation: int, position: int, events: list[tuple[int, Any]],
                through: int | None, memory: FillMemory | None = None, read_tables: Tables | None = None) -> int:
        """One transaction: the rows of ``events`` and the position moved from ``position``.

        The batch is claimed first - this write locks the tracking row (PostgreSQL) or the
        database (SQLite), so a second runner waits there and then finds the position moved -
        except in a fill from memory: its generation has no other writer (:class:`FillMemory`),
        so the events are applied in memory first, their writes kept (:attr:`Batch.deferred`),
        and the batch is held to be claimed and written after (:meth:`_write_held`), holding
        SQLite's one write lock only while it writes (another process may fill other
        generations meanwhile)."""
        tables = self.store.tables(projection.name, generation)
        new_position = through or events[-1][0]
        mine = and_(tracking.c.projection == projection.name, tracking.c.generation == generation)
        key = (projection.name, generation)
        with self.store.engine.connect() as conn:
            batch = Batch(conn, tables, memory, read_tables=read_tables, history=read_tables is None)
            batch.elsewhere = self._elsewhere.get(key)
            if memory is None:
                self._claim(conn, mine, position)
                projection.prefetch(batch, [e for _, e in projection.relevant(events)])
            else:
                batch.deferred = True
                batch.before_read = functools.partial(self._write_held, *key, wait=True)
            self._apply_events(projection, batch, position, events)
            batch.flush()
            if memory is None:
                conn.execute(update(tracking).where(mine).values(
                    position=new_position, last_event_at=events[-1][1].timestamp, error=None, error_position=None,
                    updated_at=_now()))
                conn.commit()
                return new_position
        held = self._held.setdefault(key, [])
        held.append(_Held(batch, position, new_position, events))
        self._write_held(*key, wait=len(held) >= self.most_held)
        return new_position

    most_held = 3
    """The most batches a fill from memory holds unwritten while SQLite's write lock is taken (by
    another process filling other generations): with that many it waits for the lock."""

    def _write_held(self, name: str, generation: int, wait: bool) -> None:
        """Write the batches a fill from memory holds for generation ``generation`` of ``name``, in
        order, in one transaction with the position of the last, when the database lets this
        connection write (SQLite: at once, or else later, unless ``wait``; other databases lock the
        tracking row only, and always write). The batches were applied one after the other in
        memory: the writes are the rows as each batch left them, so holding them changes no row.

        A write that fails (not for the lock) is retried event by event from the position written
        last, without the memory, to stop at the failing event (:class:`ProjectionFailed`)."""
        key = (name, generation)
        held = self._held.get(key)
        if not held:
            return
        mine = and_(tracking.c.projection == name, tracking.c.generation == generation)
        position = held[0].position
        with self.store.engine.connect() as conn:
            if not self._claimed(conn, mine, position, wait):
                return
            try:
                _fill_cache(conn, writing=True)
                for one in held:
                    one.batch.conn = conn
                    one.batch.write_deferred()
                conn.execute(update(tracking).where(mine).values(
                    position=held[-1].new_position, last_event_at=held[-1].events[-1][1].timestamp, error=None,
                    error_position=None, updated_at=_now()))
                _fill_cache(conn, writing=False)
                elsewhere = self._unchecked.get(key)
                if elsewhere is not None and elsewhere():
                    _commit_unchecked(conn)
                else:
                    conn.commit()
            except Exception as exc:  # noqa: BLE001 - found at its event below
                conn.rollback()
                del self._held[key]
                self._fail_apart(name, generation, position, [e for one in held for e in one.events], exc)
        del self._held[key]

    def _claimed(self, conn: Connection, mine: Any, position: int, wait: bool) -> bool:
        """:meth:`_claim`; on SQLite without ``wait``, False at once (nothing done) when another
        connection holds the write lock."""
        if not wait and not _write_lock_now(conn):
            return False
        self._claim(conn, mine, position)
        return True

    @staticmethod
    def _claim(conn: Connection, mine: Any, position: int) -> None:
        """Touch the tracking row ``mine`` if it still stands at ``position`` (the batch's first write);
        raise :class:`_Moved` if another runner moved it."""
        claimed = conn.execute(update(tracking).where(and_(mine, tracking.c.position == position))
                               .values(updated_at=_now())).rowcount
        if claimed != 1:
            raise _Moved()

    def _apply_events(self, projection: Projection, batch: Batch, position: int,
                      events: list[tuple[int, Any]]) -> None:
        """Apply ``events`` to ``batch``; a failure is an :class:`_EventFailed` at its event."""
        notification_id = position
        every = projection.checkpoint_every
        try:
            if type(projection).apply is Projection.apply:
                # Straight to the handlers: events without one are passed over.
                handlers = projection._handlers
                for notification_id, event in events:
                    handler = handlers.get(type(event))
                    if handler is not None:
                        if every:
                            self._at_checkpoint(batch, checkpoint_of(notification_id, every))
                        batch.position = notification_id
                        handler(batch, event)
            else:
                for notification_id, event in events:
                    if every:
                        self._at_checkpoint(batch, checkpoint_of(notification_id, every))
                    batch.position = notification_id
                    projection.apply(batch, event)
        except Exception as exc:  # noqa: BLE001 - recorded, reported, never skipped
            raise _EventFailed(notification_id, f"{type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _at_checkpoint(batch: Batch, checkpoint: int) -> None:
        """Before an event of a versioned projection: write the rows as they stand at the
        checkpoint just passed, when the event falls in a later one."""
        if checkpoint != batch.checkpoint:
            if batch.checkpoint:
                batch.flush()
            batch.checkpoint = checkpoint

    def _advance(self, name: str, generation: int, position: int, new_position: int) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(update(tracking).where(and_(tracking.c.projection == name, tracking.c.generation == generation,
                                                     tracking.c.position == position))
                         .values(position=new_position, updated_at=_now()))

    def _pass_over(self, positions: dict[str, tuple[int, int]], new_position: int, last_event: Any) -> set[str]:
        """Move projections that apply none of the events up to ``new_position`` (``last_event``'s),
        in one transaction: ``positions`` is ``{projection: (generation, position)}``. Each moves
        only from the position given; returns the projections that moved."""
        moved = set()
        with self.store.engine.begin() as conn:
            for name, (generation, position) in positions.items():
                if conn.execute(update(tracking).where(and_(
                        tracking.c.projection == name, tracking.c.generation == generation,
                        tracking.c.position == position)).values(
                        position=new_position, last_event_at=last_event.timestamp, error=None, error_position=None,
                        updated_at=_now())).rowcount == 1:
                    moved.add(name)
        return moved

    def _record_error(self, name: str, generation: int, position: int, error: str) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(update(tracking).where(and_(tracking.c.projection == name, tracking.c.generation == generation))
                         .values(error_position=position, error=error, updated_at=_now()))

    # ------------------------------------------------------------------ following

    def follow(self, stop: threading.Event, poll_interval: float = 0.2) -> None:
        """Catch up, then keep up until ``stop`` is set.

        Over PostgreSQL this waits on the library's subscription (LISTEN/NOTIFY) and
        catches up when an event arrives, but not sooner than ``poll_interval``
        seconds after the previous catch-up; over SQLite, which cannot subscribe, it
        polls ``select_notifications`` every ``poll_interval`` seconds. Either way the
        events that arrived meanwhile are applied in one batch, and a catch-up starts
        at once when :meth:`wait_for` waits for a position.
        """
        subscribe = getattr(self.recorder, "subscribe", None)
        use_subscription = subscribe is not None and type(self.recorder).__module__.endswith("postgres")
        threading.Thread(target=lambda: (stop.wait(), self._wanted.set()), daemon=True,
                         name="tuohu-follow-stop").start()
        while not stop.is_set():
            self._wanted.clear()
            try:
                positions = self.catch_up()
            except ProjectionFailed as failure:
                log.error("%s", failure)
                stop.wait(max(poll_interval, 1.0))
                continue
            except Exception:  # noqa: BLE001 - a lost connection must not end the runner
                log.exception("projection runner: catch-up failed; retrying")
                stop.wait(1.0)
                continue
            if not use_subscription:
                self._wanted.wait(poll_interval)
                continue
            low = min(positions.values(), default=0)
            try:
                with subscribe(gt=low) as subscription:
                    watcher = threading.Thread(target=lambda: (stop.wait(), subscription.stop()), daemon=True)
                    watcher.start()
                    caught_up_at = time.monotonic()
                    for notification in subscription:
                        if stop.is_set():
                            break
                        if notification.id > low:
                            self._wanted.wait(max(0.0, caught_up_at + poll_interval - time.monotonic()))
                            if stop.is_set():
                                break
                            self._wanted.clear()
                            low = min(self.catch_up().values(), default=low)
                            caught_up_at = time.monotonic()
            except Exception:  # noqa: BLE001
                log.exception("projection runner: subscription ended; catching up again")
                stop.wait(1.0)

    def wait_for(self, position: int, timeout: float, names: Sequence[str] | None = None) -> bool:
        """Block until every projection (or ``names``) reached ``position``; False on timeout."""
        names = list(names or self.store.projections)
        deadline = time.monotonic() + timeout
        while True:
            if all(reached >= position for _, reached in self.store.standings(names).values()):
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._wanted.set()
            with self._progress:
                self._progress.wait(min(0.05, remaining))

    # ------------------------------------------------------------------ status, rebuild, verify

    def status(self) -> list[dict[str, Any]]:
        """Per projection, a JSON-ready dict: ``projection``; ``generation``, the active one (queries
        read it); ``head``, the log's newest position; ``position``, the active generation's; its lag
        in events (``lag_events``) and seconds (``lag_seconds``, by recorded time); ``error_position``
        and ``error`` if it stopped on an event (else None); ``previous_generation``, the generation
        active before the last swap, kept until the next rebuild so that queries still reading it finish
        (None before a first rebuild); and ``other_generations``, every other generation of the
        projection, oldest first, as ``{"generation", "state", "position", "last_written_at"}``
        (``last_written_at``: ISO 8601 UTC, when a batch last wrote it). ``state`` is:

        - ``"unfinished"``: a generation newer than the active one, which no query reads: one that a
          rebuild, ``verify`` or an as-of report is filling now (its ``last_written_at`` moves with
          every batch) or that one left behind when it was killed (SIGKILL, a crash, a lost
          connection). The database cannot tell the two apart; the next rebuild drops it.
        - ``"superseded"``: older than the previous generation, left by a rebuild that ended between
          its swap and dropping the other generations; the next rebuild drops it.

        The store records only the active generation. Generations are numbered in the order they
        are created and only a rebuild's new generation becomes active, so a generation newer than
        the active one never was active; right after its swap a rebuild drops every generation but
        the new one and the one active before, so the newest generation older than the active one
        is taken for the previous one (after a rebuild that ended between its swap and those drops,
        that may be an unfinished generation of an earlier rebuild, reported as the previous one)."""
        head = self.recorder.max_notification_id() or 0
        head_at = self._recorded_at(head)
        tracked = self.store.tracked()
        rows = []
        for name in self.store.projections:
            active, generations = tracked[name]
            [row] = [r for r in generations if r["generation"] == active]
            last_at = row["last_event_at"]
            lag_seconds = 0.0
            if row["position"] < head and head_at is not None:
                lag_seconds = max(0.0, (head_at - (last_at or head_at)).total_seconds())
                if last_at is None:
                    first = self._recorded_at(row["position"] + 1)
                    lag_seconds = (head_at - first).total_seconds() if first else 0.0
            previous = max((r["generation"] for r in generations if r["generation"] < active), default=None)
            others = [{"generation": r["generation"],
                       "state": "unfinished" if r["generation"] > active else "superseded",
                       "position": r["position"],
                       "last_written_at": r["updated_at"].isoformat() if r["updated_at"] else None}
                      for r in generations if r["generation"] not in (active, previous)]
            rows.append({
                "projection": name, "generation": active, "head": head, "position": row["position"],
                "lag_events": head - row["position"], "lag_seconds": round(lag_seconds, 3),
                "error_position": row["error_position"], "error": row["error"],
                "previous_generation": previous, "other_generations": others,
            })
        return rows

    def _recorded_at(self, position: int) -> datetime | None:
        if position <= 0:
            return None
        found = self.recorder.select_notifications(start=position, limit=1)
        return utc(self.mapper.to_domain_event(found[0]).timestamp) if found else None

    def rebuild(self, names: str | Sequence[str] | None = None, stop: threading.Event | None = None) -> dict[str, int]:
        """Blue-green rebuild: fill new generations of ``names`` (all by default) in one pass
        while queries read the old ones, then swap them all in one transaction when caught up.
        Returns ``{projection: new generation}``. The generations active before stay until the
        next rebuild (queries reading them finish); older ones, and unfinished ones left by an
        earlier rebuild, are dropped, but not those another process may be using (see
        :meth:`_drop_stale`).

        ``stop``: when it is set (by a signal handler, say), the rebuild stops before its next
        batch, or while it waits for its helper, and raises :class:`RebuildInterrupted`; set after
        the swap, it changes nothing (the rebuild is complete).

        Whatever ends the rebuild before the swap - ``stop``, :class:`ProjectionFailed`,
        :class:`projections.helper.HelperFailed`, ``KeyboardInterrupt``, a lost connection - the
        helper process is ended and the new generations are dropped; the live ones are unchanged.
        The exception raised then carries a note (``__notes__``) naming the generations dropped
        and how far they had been filled, and any that could not be dropped (``tuohu projections
        status`` shows those; the next rebuild drops them)."""
        names = [names] if isinstance(names, str) else list(names or self.store.projections)
        targets: dict[str, int] = {}
        started = _now()
        stopping = _stop_check(stop)
        try:
            stopping()
            for name in names:
                targets[name] = self.store.new_generation(name)
            self._fill_first(targets, stopping)
            with self._lock:  # no live batch runs while the last events are copied and the swap happens
                self.fill_many(targets, between=stopping)
                stopping()
                olds = self.store.swap(targets)
        except BaseException as exc:
            reached, left = self._discard(targets)
            try:
                head = self.recorder.max_notification_id() or 0
            except Exception:  # noqa: BLE001 - the event store is out of reach: the furthest position reached
                head = max((position for _, position in reached.values()), default=0)
            if isinstance(exc, _StopAsked):
                raise RebuildInterrupted(names, reached, head, left) from None
            if reached:
                exc.add_note(f"the rebuild's unfinished generations ({describe_fill(reached, head)}) were dropped")
            if left:
                exc.add_note("not dropped (the next rebuild drops them): "
                             + "; ".join(f"{name} {why}" for name, why in left.items()))
            raise
        self._drop_stale(targets, olds, started)
        return targets

    def _drop_stale(self, targets: dict[str, int], olds: dict[str, int], started: datetime) -> None:
        """After a rebuild's swap: drop the generations of ``targets``' projections other than the new one
        and the one active before (``olds``), except those another process may be using - one newer
        than the new generation (created after this rebuild began: a ``verify``'s or an as-of report's
        scratch tables, or another rebuild's) or one written since ``started`` (being filled now). The
        next rebuild drops them once they are left alone. A generation that cannot be dropped is
        logged and left: the rebuild is complete once it has swapped."""
        tracked = self.store.tracked()
        for name, generation in targets.items():
            for row in tracked[name][1]:
                stale = row["generation"]
                if stale in (generation, olds[name]) or stale > generation:
                    continue
                if row["updated_at"] is not None and row["updated_at"] >= started:
                    continue
                try:
                    self.store.drop_generation(name, stale)
                except Exception:  # noqa: BLE001 - dropped meanwhile by its owner, or in use: the next rebuild
                    log.warning("rebuild: generation %s of %s left for the next rebuild", stale, name, exc_info=True)

    def _discard(self, targets: dict[str, int]) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
        """Drop the generations of ``targets`` (``{projection: generation}``) that are not active: a rebuild's
        that did not swap. Returns ``{projection: (generation, position reached)}`` of those dropped and
        ``{projection: why}`` of those that could not be (logged; the next rebuild drops them)."""
        reached: dict[str, tuple[int, int]] = {}
        left: dict[str, str] = {}
        for name, generation in targets.items():
            try:
                if generation == self.store.active_generation(name):
                    continue
                try:
                    position = self.store.position(name, generation)
                except Exception:  # noqa: BLE001 - its tracking is gone (dropped meanwhile): its tables may not be
                    position = 0
                self.store.drop_generation(name, generation)
                reached[name] = (generation, position)
            except Exception as exc:  # noqa: BLE001 - the first failure is the one to report; this one is named
                log.exception("rebuild: could not drop unfinished generation %s of %s", generation, name)
                left[name] = f"generation {generation}: {type(exc).__name__}: {exc}"
        return reached, left

    def _fill_first(self, targets: dict[str, int], between: Callable[[], None] | None = None) -> None:
        """The first pass of :meth:`rebuild`: :meth:`fill_many` of ``targets``, the projections
        marked ``fill_apart`` in a helper process at the same time (:mod:`projections.helper`)
        when there is a recipe for one, the others too, and the log is long enough to pay.
        ``between`` is called before each batch and while waiting for the helper (it may raise to
        stop; the helper is ended then)."""
        apart = {name: g for name, g in targets.items() if self.store.projections[name].fill_apart}
        head = self.recorder.max_notification_id() or 0
        if self.helper is None or not apart or len(apart) == len(targets) or head < self.helper_threshold:
            self.fill_many(targets, between=between)
            return
        from projections import helper

        # The helper also writes the rows of one event alone (Projection.event_rows) of the events it
        # decodes for its own projections, up to the head as it stands now; this process leaves them out.
        projections = self.store.projections
        ours = {name: g for name, g in targets.items() if name not in apart}
        riders = {name: g for name, g in ours.items()
                  if projections[name].event_rows is not None and not projections[name].checkpoint_every}
        classes = self._event_classes(apart)  # those the helper decodes: its fill_many's
        helping = helper.start(self.helper, apart, until=head, riders=riders)

        def check() -> None:
            if between is not None:
                between()  # first: a helper ended by the same signal as this process is no failure of its own
            helping.check()

        try:
            # up to the same head: the events after it are the next fill's, here, all rows included
            # While the helper runs, its commits checkpoint SQLite's log and this process's do not: this
            # process has the longer part
            self.fill_many(ours, until=head, between=check, elsewhere=dict.fromkeys(riders, (classes, head)),
                           defer_indexes=riders, checkpointed_elsewhere=helping.running)
            helping.result(between)
        except BaseException:
            helping.kill()
            raise

    def verify(self, names: Sequence[str] | None = None, stop: threading.Event | None = None) -> list[dict[str, Any]]:
        """Rebuild each projection into scratch tables up to the live position and compare
        checksums of every table. Returns the mismatches (empty when all agree).

        ``stop``: when it is set (by a signal handler, say), the check stops before its next batch,
        drops its scratch tables and raises :class:`VerifyInterrupted`. Raises
        :class:`ProjectionFailed` when a projection fails in the scratch fill, or when another
        process dropped or filled the scratch tables meanwhile."""
        stopping = _stop_check(stop)
        mismatches = []
        checked: list[str] = []
        for name in names or list(self.store.projections):
            if stop is not None and stop.is_set():
                raise VerifyInterrupted(checked, name, mismatches)
            with self._lock:
                with self.store.engine.connect() as conn:
                    # One snapshot: a runner in another process (a server's) may apply events meanwhile.
                    _snapshot(conn)
                    live_generation, position = self.store.standings([name], conn=conn)[name]
                    live = self.store.checksum(name, live_generation, conn=conn)
                    conn.rollback()
            scratch = self.store.new_generation(name)
            try:
                self.fill_many({name: scratch}, until=position, between=stopping)
                rebuilt = self.store.checksum(name, scratch)
            except _StopAsked:
                raise VerifyInterrupted(checked, name, mismatches) from None
            except _Moved:
                raise ProjectionFailed(name, position, "the scratch tables of this check were dropped or filled "
                                                       "by another process meanwhile; run verify again") from None
            finally:
                with suppress(Exception):  # already gone if another process dropped it
                    self.store.drop_generation(name, scratch)
            for table, digest in live.items():
                if rebuilt.get(table) != digest:
                    mismatches.append({"projection": name, "table": table, "position": position,
                                       "live": digest, "rebuilt": rebuilt.get(table)})
            checked.append(name)
        return mismatches

    @contextmanager
    def as_of(self, names: Sequence[str], position: int) -> Iterator[dict[str, Tables] | None]:
        """The tables of versioned projections ``names`` as they stood at ``position``
        (read-only views), or None when a projection is not versioned or its live
        generation has not reached ``position`` (the caller replays the log instead).

        The views read each row's version at the last checkpoint at or before
        ``position``; the events after it are applied to small scratch tables that
        the views lay over those versions, and dropped on exit. The live tables are
        not changed."""
        projections = [self.store.projections[n] for n in names]
        every = {p.checkpoint_every for p in projections}
        lives = {n: self.store.active_generation(n) for n in names}
        if 0 in every or len(every) != 1 or any(self.store.position(n, g) < position for n, g in lives.items()):
            yield None
            return
        step = every.pop()
        checkpoint = position // step * step
        targets = {n: self.store.new_generation(n) for n in names}
        try:
            overlays = {}
            for name, generation in targets.items():
                self._advance(name, generation, 0, checkpoint)
                overlays[name] = as_of_tables(self.store.tables(name, lives[name]), checkpoint,
                                              self.store.tables(name, generation))
            if position > checkpoint:
                self.fill_many(targets, until=position, read_through=overlays)
            yield overlays
        finally:
            for name, generation in targets.items():
                self.store.drop_generation(name, generation)

    def scratch(self, name: str, keep: EventFilter, until: int | None = None) -> Tables:
        """Fill a scratch generation with the events ``keep`` accepts; the caller drops it
        with ``store.drop_generation``."""
        generation = self.store.new_generation(name)
        self.fill(name, generation, until=until, keep=keep)
        return self.store.tables(name, generation)


@dataclass
class _Held:
    """A batch a fill from memory applied but has not written (:meth:`ProjectionRunner._write_held`):
    its kept writes, the position it starts from and the one it moves to, and its events."""

    batch: Batch
    position: int
    new_position: int
    events: list[tuple[int, Any]]


def _write_lock_now(conn: Connection) -> bool:
    """On SQLite, begin a transaction of ``conn`` holding the write lock if no other connection holds it,
    without waiting; False (nothing begun) if one does. True at once on other databases (their
    writers lock rows, not the database)."""
    if conn.dialect.name != "sqlite":
        return True
    timeout = conn.exec_driver_sql("PRAGMA busy_timeout").scalar()
    conn.exec_driver_sql("PRAGMA busy_timeout=0")
    try:
        # On the driver's connection: a busy database raises sqlite3's error here, not SQLAlchemy's, whose
        # handling leaves the error, its traceback and the frames of this call (the caller's batch
        # included) in a reference cycle that only the cyclic collector frees (see _Collector).
        conn.connection.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
    except sqlite3.OperationalError as exc:
        if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:  # SQLITE_BUSY and its extended codes
            raise
        conn.rollback()
        return False
    finally:
        conn.exec_driver_sql(f"PRAGMA busy_timeout={int(timeout)}")
    return True


class _Rider:
    """The rows of other projections' :attr:`Projection.event_rows` tables that a fill writes for the
    events it decodes (:meth:`ProjectionRunner.fill_many`'s ``riders``): those of ``classes`` (None: every
    class) up to position ``until``, into the generations of ``riders`` (``{projection: generation}``)."""

    def __init__(self, store: ReadModelStore, riders: dict[str, int], classes: frozenset[type] | None,
                 until: int, most_held: int) -> None:
        self.store, self.classes, self.until = store, classes, until
        self.most_held = most_held
        """The most batches of rows held unwritten while another connection holds SQLite's write lock
        (the runner's :attr:`ProjectionRunner.most_held`)."""
        self.names = list(riders)
        self.parts: list[tuple[Projection, Table]] = []
        for name, generation in riders.items():
            projection = store.projections[name]
            if projection.event_rows is None or projection.checkpoint_every:
                raise ValueError(f"{name} has no rows of one event alone for another fill to write")
            self.parts.append((projection, getattr(store.tables(name, generation), projection.event_rows)))
        self._held: list[list[tuple[Table, list[dict[str, Any]]]]] = []

    def write(self, decoded: Sequence[tuple[int, Any]]) -> None:
        """Write the rows of ``decoded`` (``(position, event)``), with those held before, in one
        transaction; on SQLite, if another connection holds the write lock, hold them for the next
        call (or :meth:`write_held`) unless :attr:`most_held` batches are held. A failing event raises
        :class:`ProjectionFailed` at it, for its projection."""
        classes, until = self.classes, self.until
        events = [(i, e) for i, e in decoded if i <= until and (classes is None or type(e) in classes)]
        if not events:
            return
        writes = []
        for projection, table in self.parts:
            rows = []
            make = projection.event_row
            for position, event in events:
                try:
                    row = make(position, event)
                except Exception as exc:  # noqa: BLE001 - reported at its event, as a handler's failure is
                    raise ProjectionFailed(projection.name, position, f"{type(exc).__name__}: {exc}") from exc
                if row is not None:
                    rows.append(row)
            if rows:
                writes.append((table, rows))
        if writes:
            self._held.append(writes)
            self.write_held(wait=len(self._held) >= self.most_held)

    def write_held(self, wait: bool) -> None:
        """Write the rows held, in one transaction; on SQLite without ``wait``, only if no other
        connection holds the write lock."""
        if not self._held:
            return
        with self.store.engine.connect() as conn:
            if not wait and not _write_lock_now(conn):
                return
            _fill_cache(conn, writing=True)
            for writes in self._held:
                for table, rows in writes:
                    _write_many(conn, table, rows, upsert=False)
            _fill_cache(conn, writing=False)
            conn.commit()
        self._held = []


class _Wanted:
    """Whether a topic names one of ``classes`` (an event class may have several topics), remembered
    per topic. A topic that names no class is wanted: decoding its events raises the library's
    error, as it would without a filter."""

    def __init__(self, classes: frozenset[type]) -> None:
        self.classes = classes
        self._known: dict[str, bool] = {}

    def __call__(self, topic: str) -> bool:
        found = self._known.get(topic)
        if found is None:
            try:
                found = resolve_topic(topic) in self.classes
            except Exception:  # noqa: BLE001 - see the class docstring
                found = True
            self._known[topic] = found
        return found


def _personal_fields_read(projections: Sequence[Projection], topic: str) -> tuple[str, ...]:
    """The personal fields of ``topic`` that at least one of ``projections`` reads, in the order of
    :func:`application.privacy.personal_fields`: all of them when one of the projections does not say
    (:meth:`Projection.personal_fields_read` is None) or the topic names no class (decoding its events
    raises the library's error)."""
    personal = personal_fields(topic)
    if not personal:
        return personal
    try:
        event_class = resolve_topic(topic)
    except Exception:  # noqa: BLE001 - see the docstring
        return personal
    read: set[str] = set()
    for projection in projections:
        named = projection.personal_fields_read(event_class)
        if named is None:
            return personal
        read.update(named)
    return tuple(name for name in personal if name in read)


def _of_topics(found: Sequence[Any], topics: _Wanted | None, topic: Callable[[Any], str]) -> Sequence[Any]:
    """The stored events in ``found`` whose topic ``topics`` wants (all with None), and the last one."""
    if topics is None or not found:
        return found
    kept = [one for one in found if topics(topic(one))]
    if not kept or kept[-1] is not found[-1]:
        kept.append(found[-1])
    return kept


class _Collector:
    """The cyclic garbage collector during a fill (a context manager around it).

    While a batch is applied (:meth:`paused`) the collector does not run: the batch's decoded
    events and rows all stay alive, and collecting them again and again frees nothing. After
    each batch the objects still alive (the fill's memory, held writes: mostly the same ones
    until the fill ends) are frozen (``gc.freeze``), so no later collection scans them again;
    they were scanned by every young collection and again by the older ones (1.2-1.6 s of a
    rebuild's first process on bank-full, and 1.4 s of its helper's). When the fill ends they
    are unfrozen, to be collected as usual. A fill frees what it no longer uses by reference
    counting (a cycle would stay frozen, and alive, until the fill ends).

    The collector and its frozen objects are the process's, not the fill's: a fill freezes only if
    nothing else has frozen objects when it starts (a server that froze its start-up objects keeps
    them frozen; a second fill meanwhile in another thread only pauses the collector, and may
    resume it during the first one's batch, which costs time, not results); while a fill runs,
    the cyclic garbage of the process's other threads stays frozen, and alive, until it ends."""

    def __init__(self) -> None:
        self.freezing = False

    def __enter__(self) -> _Collector:
        self.freezing = gc.isenabled() and gc.get_freeze_count() == 0
        return self

    def __exit__(self, *_: object) -> None:
        if self.freezing:
            gc.unfreeze()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The collector paused while a batch is applied, and what survives it frozen after."""
        if not gc.isenabled():
            yield
            return
        gc.disable()
        try:
            yield
        finally:
            if self.freezing:
                gc.freeze()
            gc.enable()


def as_of_tables(live: Tables, checkpoint: int, written: Tables | None = None) -> Tables:
    """Read-only views of a versioned projection's tables as they stood at ``checkpoint``:
    each row's version current then (the live row if it stands at or before the
    checkpoint, else the history version that was replaced after it). With
    ``written``, rows of those tables (the events after the checkpoint) take the place
    of the versions with the same key. Each view has the table's columns and name."""
    views = {}
    for base, table in live.items():
        if base.endswith(HISTORY_SUFFIX):
            continue
        history = getattr(live, base + HISTORY_SUFFIX)
        names = [c.name for c in table.columns]
        then = select(*(table.c[n] for n in names)).where(table.c[CHECKPOINT] <= checkpoint).union_all(
            select(*(history.c[n] for n in names)).where(history.c[CHECKPOINT] <= checkpoint,
                                                         history.c[SUPERSEDED_AT] > checkpoint))
        if written is None:
            views[base] = then.subquery(base)
            continue
        mine = getattr(written, base)
        keys = [c.name for c in table.primary_key.columns]
        earlier = then.subquery(f"{base}_then")
        replaced = select(mine.c[keys[0]]).where(*(mine.c[k] == earlier.c[k] for k in keys)).exists()
        views[base] = select(*(mine.c[n] for n in names)).union_all(
            select(*(earlier.c[n] for n in names)).where(~replaced)).subquery(base)
    return Tables(live.projection, live.generation, views)


class _EventFailed(Exception):
    def __init__(self, position: int, error: str) -> None:
        super().__init__(error)
        self.position, self.error = position, error


class _Moved(Exception):
    """Another runner moved the position first; this batch was rolled back."""


class _StopAsked(Exception):
    """A rebuild's or a verify's ``stop`` event is set (they raise :class:`RebuildInterrupted` or
    :class:`VerifyInterrupted`)."""


def _stop_check(stop: threading.Event | None) -> Callable[[], None]:
    """A check for the safe points of a long fill: raises :class:`_StopAsked` once ``stop`` is set."""
    def check() -> None:
        if stop is not None and stop.is_set():
            raise _StopAsked()
    return check


def table_exists(engine: Engine, name: str) -> bool:
    return inspect(engine).has_table(name)
