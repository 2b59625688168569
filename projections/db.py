"""The read-model database engine (SQLite under the data dir, or PostgreSQL)."""

from __future__ import annotations

import sqlite3
import time

from psycopg.adapt import Dumper
from sqlalchemy import Engine, create_engine, event

from application.privacy import Sealed
from application.settings import Settings


SQLITE_TIMEOUT = 30.0
"""Seconds a read-model SQLite connection waits for a lock another connection holds."""


def make_engine(settings: Settings) -> Engine:
    """A SQLAlchemy engine for the read models named by ``settings``."""
    url = settings.read_model_url()
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_TIMEOUT})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            _write_ahead_log(cursor)
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA secure_delete=ON")  # erased personal data are overwritten, not just unlinked
            cursor.close()

        return engine
    schema = settings.database_schema
    engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"}, pool_pre_ping=True)

    @event.listens_for(engine, "connect")
    def _refuse_sealed(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.adapters.register_dumper(Sealed, _SealedDumper)

    return engine


def _write_ahead_log(cursor: sqlite3.Cursor) -> None:
    """Put the database in WAL mode. On a new file, several connections opening at once all try to;
    SQLite refuses the losers at once ("database is locked") without its busy handler, so this waits
    as the handler would (up to :data:`SQLITE_TIMEOUT`) until one has, and raises after."""
    deadline = time.monotonic() + SQLITE_TIMEOUT
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class _SealedDumper(Dumper):
    """A personal field left sealed (:class:`application.privacy.Sealed`) written to a row: raises its
    :class:`application.privacy.PersonalFieldNotRead` (as SQLite's driver does), not psycopg's "cannot adapt"."""

    def dump(self, obj: Sealed) -> bytes:
        return str(obj).encode()
