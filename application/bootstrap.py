"""The one place that assembles tuohu from settings (nothing connects at import time)."""

from __future__ import annotations

from application.app import TuohuApplication
from application.settings import Settings


def bootstrap(settings: Settings | None = None) -> TuohuApplication:
    """A :class:`TuohuApplication` on the event store the settings name
    (SQLite under ``TUOHU_DATA_DIR`` by default, PostgreSQL with ``TUOHU_DATABASE_URL``)."""
    settings = settings or Settings()
    return TuohuApplication(env=settings.event_store_env())
