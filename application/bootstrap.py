"""The one place that assembles tuohu from settings (nothing connects at import time)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from application.settings import Settings

if TYPE_CHECKING:
    from application.app import TuohuApplication


class StoreUnavailable(RuntimeError):
    """The event store the settings name cannot be used (the reason says why and what to do)."""


def bootstrap(settings: Settings | None = None) -> TuohuApplication:
    """A :class:`TuohuApplication` on the event store the settings name
    (SQLite under ``TUOHU_DATA_DIR`` by default, PostgreSQL with ``TUOHU_DATABASE_URL``).

    Over PostgreSQL the schema ``TUOHU_DATABASE_SCHEMA`` is created when missing; raises
    :class:`StoreUnavailable` when it is missing and the user may not create it."""
    from application.app import TuohuApplication  # here: the domain model loads when an application is built

    settings = settings or Settings()
    if settings.uses_postgres:
        _ensure_schema(settings)
    return TuohuApplication(env=settings.event_store_env())


def _ensure_schema(settings: Settings) -> None:
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(settings.database_url, autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                                  (settings.database_schema,)).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                    sql.Identifier(settings.database_schema)))
    except psycopg.errors.InsufficientPrivilege:
        raise StoreUnavailable(f"the PostgreSQL schema {settings.database_schema!r} (TUOHU_DATABASE_SCHEMA) does not "
                               "exist and this user may not create it: create it, or name another") from None
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(f"cannot connect to PostgreSQL at TUOHU_DATABASE_URL: "
                               f"{str(exc).strip().splitlines()[0]}") from None
