"""The read-model database engine (SQLite under the data dir, or PostgreSQL)."""

from __future__ import annotations

from psycopg.adapt import Dumper
from sqlalchemy import Engine, create_engine, event

from application.privacy import Sealed
from application.settings import Settings


def make_engine(settings: Settings) -> Engine:
    """A SQLAlchemy engine for the read models named by ``settings``."""
    url = settings.read_model_url()
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
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


class _SealedDumper(Dumper):
    """A personal field left sealed (:class:`application.privacy.Sealed`) written to a row: raises its
    :class:`application.privacy.PersonalFieldNotRead` (as SQLite's driver does), not psycopg's "cannot adapt"."""

    def dump(self, obj: Sealed) -> bytes:
        return str(obj).encode()
