"""Substring search over a text column of a read-model table, kept by the database itself.

A :class:`TextSearch` on a table spec names the column searched and an integer
column unique per row (the row's key in the index). What backs it depends on the
database (:class:`TextIndexes`, one per engine):

- SQLite 3.34 or later with FTS5: an FTS5 table with the trigram tokenizer
  (case-sensitive: the text is compared as stored), ``rm_<table>_search_g<N>``
  beside ``rm_<table>_g<N>``. It reads its text from the table (external content)
  and keeps only the index; triggers on the table update it in the statement, so in
  the transaction, that writes the row. A fill of a new generation drops it and
  builds it once from the filled rows. A pattern of three characters or more is a
  phrase of its trigrams, which matches exactly the rows containing it; the index
  counts them, and hands out their keys in descending order a chunk at a time
  (:meth:`TextIndexes.keys_below`), so a page in key order reads only its rows.
- PostgreSQL with pg_trgm (installed, or installable with ``CREATE EXTENSION`` into
  schema ``public``): a GIN index with ``gin_trgm_ops`` on the column, which ``LIKE``
  uses by itself.
- Otherwise nothing: ``LIKE`` reads every row.

Answers are the same with an index and without one: ``LIKE`` on text stored in
lowercase with a lowercase pattern finds the rows containing the pattern, and so
does the FTS5 phrase (PostgreSQL keeps the ``LIKE`` and only narrows the rows it is
checked on). Patterns of fewer than three characters have no trigram and are
answered by ``LIKE`` alone.

Forgetting text (:meth:`TextIndexes.purge`). FTS5 records a deleted or replaced row
as a deletion marker and keeps the old entries in the index's segments until they are
merged, so text a row no longer holds would stay in the database file. ``purge``
merges every segment into one, which leaves the old entries out; the read-model
connections' ``secure_delete`` overwrites the freed pages. PostgreSQL's index keeps
dead entries until ``VACUUM``, as its tables keep old row versions.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Integer, column, exc, func, literal_column, select, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.schema import Table

log = logging.getLogger(__name__)

MIN_CHARACTERS = 3
"""The shortest pattern a trigram index can narrow."""


@dataclass(frozen=True)
class TextSearch:
    """Substring search over ``column`` (lowercase text); ``key`` is an integer column unique per row."""

    column: str
    key: str


def search_of(t: Table) -> TextSearch | None:
    """The :class:`TextSearch` declared for a table (None for none)."""
    return t.info.get("search")


class TextIndexes:
    """The text indexes of one read-model database (see the module docstring for what backs them)."""

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect.name
        self.kind: str | None = None
        """``"fts5"``, ``"pg_trgm"`` or None (no index: ``LIKE`` scans)."""
        self._opclass = ""
        if self.dialect == "sqlite":
            self.kind = "fts5" if _sqlite_has_trigram(engine) else None
        elif self.dialect == "postgresql":
            schema = _pg_trgm_schema(engine)
            if schema is not None:
                self.kind, self._opclass = "pg_trgm", f'"{schema}".gin_trgm_ops'
        if self.kind is None:
            log.info("read models: no trigram index on %s; text search reads every row", self.dialect)

    @staticmethod
    def name(t: Table) -> str:
        """The FTS5 table (SQLite) or index (PostgreSQL) of ``t``: ``rm_customers_g3`` -> ``rm_customers_search_g3``."""
        head, _, generation = t.name.rpartition("_g")
        return f"{head}_search_g{generation}"

    def exists(self, conn: Connection, t: Table) -> bool:
        if self.kind == "fts5":
            found = conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                                         (self.name(t),)).first()
            return found is not None
        if self.kind == "pg_trgm":
            found = conn.execute(text("SELECT to_regclass(:name)"), {"name": self.name(t)}).scalar()
            return found is not None
        return False

    def create(self, conn: Connection, t: Table) -> None:
        """Create the index of ``t`` if missing, filled from the rows ``t`` holds, and (SQLite) the
        triggers that keep it in step with every later insert, update and delete."""
        search = search_of(t)
        if search is None or self.kind is None or self.exists(conn, t):
            return
        name, col, key, content = self.name(t), search.column, search.key, t.name
        if self.kind == "pg_trgm":
            conn.exec_driver_sql(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{content}" USING gin ("{col}" {self._opclass})')
            return
        conn.exec_driver_sql(f'CREATE VIRTUAL TABLE IF NOT EXISTS "{name}" USING fts5("{col}", content=\'{content}\', '
                             f"content_rowid='{key}', tokenize='trigram case_sensitive 1')")
        conn.exec_driver_sql(f"INSERT INTO \"{name}\"(\"{name}\") VALUES ('rebuild')")
        add = f'INSERT INTO "{name}"(rowid, "{col}") VALUES (new."{key}", new."{col}");'
        remove = f'INSERT INTO "{name}"("{name}", rowid, "{col}") VALUES (\'delete\', old."{key}", old."{col}");'
        conn.exec_driver_sql(f'CREATE TRIGGER IF NOT EXISTS "{name}_insert" AFTER INSERT ON "{content}" '
                             f"BEGIN {add} END")
        conn.exec_driver_sql(f'CREATE TRIGGER IF NOT EXISTS "{name}_delete" AFTER DELETE ON "{content}" '
                             f"BEGIN {remove} END")
        conn.exec_driver_sql(f'CREATE TRIGGER IF NOT EXISTS "{name}_update" AFTER UPDATE OF "{col}", "{key}" '
                             f'ON "{content}" WHEN old."{col}" IS NOT new."{col}" OR old."{key}" IS NOT new."{key}" '
                             f"BEGIN {remove} {add} END")

    def drop(self, conn: Connection, t: Table) -> None:
        """Drop the index of ``t`` (and its triggers), if it has one."""
        if search_of(t) is None or self.kind is None:
            return
        name = self.name(t)
        if self.kind == "pg_trgm":
            conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{name}"')
            return
        for trigger in ("insert", "delete", "update"):
            conn.exec_driver_sql(f'DROP TRIGGER IF EXISTS "{name}_{trigger}"')
        conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{name}"')

    def purge(self, conn: Connection, t: Table) -> None:
        """Leave out of the index's storage every entry of text its rows no longer hold (SQLite: merge
        the FTS5 segments into one); nothing to do over PostgreSQL (``VACUUM``) or without an index."""
        if self.kind == "fts5" and search_of(t) is not None and self.exists(conn, t):
            name = self.name(t)
            conn.exec_driver_sql(f"INSERT INTO \"{name}\"(\"{name}\") VALUES ('optimize')")

    def checksum(self, conn: Connection, t: Table) -> str | None:
        """SHA-256 of the index's entries (SQLite: every term instance as row key, column and offset,
        in the index's order), or None where the database keeps the index (PostgreSQL) or there is none."""
        if self.kind != "fts5" or search_of(t) is None or not self.exists(conn, t):
            return None
        vocabulary = f"{self.name(t)}_entries"
        conn.exec_driver_sql(f'CREATE VIRTUAL TABLE IF NOT EXISTS temp."{vocabulary}" '
                             f"USING fts5vocab(main, '{self.name(t)}', 'instance')")
        try:
            digest = hashlib.sha256()
            cursor = conn.exec_driver_sql(f'SELECT term, doc, col, "offset" FROM temp."{vocabulary}"')
            while rows := cursor.fetchmany(10_000):
                digest.update("\n".join(f"{term}\t{doc}\t{col}\t{offset}" for term, doc, col, offset in rows).encode())
                digest.update(b"\n")
        finally:
            conn.exec_driver_sql(f'DROP TABLE IF EXISTS temp."{vocabulary}"')
        return digest.hexdigest()

    @staticmethod
    def like(t: Table, pattern: str) -> list[Any]:
        """The ``LIKE`` condition alone: the searched column of ``t`` contains ``pattern`` (case as
        stored; ``LIKE``'s own ASCII case folding applies)."""
        search = search_of(t)
        if search is None:
            raise ValueError(f"{t.name} has no text search")
        return [t.c[search.column].contains(pattern, autoescape=True)]

    def _phrase(self, t: Table, pattern: str) -> Any:
        """``SELECT rowid FROM <index> WHERE <index> MATCH '"pattern"'`` when the FTS5 index can answer
        ``pattern`` (None otherwise)."""
        if self.kind != "fts5" or search_of(t) is None or len(pattern) < MIN_CHARACTERS:
            return None
        index = table(self.name(t), column("rowid", Integer))
        phrase = '"' + pattern.replace('"', '""') + '"'
        return select(index.c.rowid).where(literal_column(f'"{self.name(t)}"').op("MATCH")(phrase))

    def contains(self, t: Table, pattern: str) -> list[Any]:
        """``where`` clauses keeping the rows of ``t`` whose searched column contains ``pattern``:
        over SQLite's FTS5 the rows whose key the index finds, else :meth:`like`."""
        found = self._phrase(t, pattern)
        if found is None:
            return self.like(t, pattern)
        return [t.c[search_of(t).key].in_(found)]  # type: ignore[union-attr]

    def count(self, conn: Connection, t: Table, pattern: str) -> int | None:
        """How many rows of ``t`` contain ``pattern``, counted in the FTS5 index (None when it cannot
        answer: count the rows with :meth:`contains`)."""
        found = self._phrase(t, pattern)
        if found is None:
            return None
        return int(conn.execute(select(func.count()).select_from(found.subquery())).scalar_one())

    def keys_below(self, conn: Connection, t: Table, pattern: str, below: int | None, limit: int) -> list[int] | None:
        """Up to ``limit`` keys of the rows containing ``pattern``, below ``below`` (None: from the top),
        in descending order, from the FTS5 index (None when it cannot answer)."""
        found = self._phrase(t, pattern)
        if found is None:
            return None
        rowid = found.selected_columns[0]
        if below is not None:
            found = found.where(rowid < below)
        return [int(key) for key in conn.execute(found.order_by(rowid.desc()).limit(limit)).scalars()]


def _sqlite_has_trigram(engine: Engine) -> bool:
    """Whether this SQLite has FTS5 with the trigram tokenizer (3.34 or later, built with FTS5)."""
    with engine.connect() as conn:
        try:
            conn.exec_driver_sql("CREATE VIRTUAL TABLE temp.tuohu_trigram_probe USING fts5(a, tokenize='trigram')")
        except exc.DBAPIError:
            return False
        conn.exec_driver_sql("DROP TABLE temp.tuohu_trigram_probe")
        return True


_FIND_PG_TRGM = "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"


def _pg_trgm_schema(engine: Engine) -> str | None:
    """The schema pg_trgm is installed in; installed into ``public`` first when it can be (None when not)."""
    with engine.connect() as conn:
        found = conn.exec_driver_sql(_FIND_PG_TRGM).scalar()
    if found is not None:
        return str(found)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public")
    except exc.DBAPIError as error:  # no privilege, not available, or created at this moment by another process
        log.info("read models: pg_trgm could not be installed: %s", str(error).splitlines()[0])
    with engine.connect() as conn:
        found = conn.exec_driver_sql(_FIND_PG_TRGM).scalar()
    return None if found is None else str(found)
