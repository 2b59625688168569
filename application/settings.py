"""Settings, read from the environment (``TUOHU_*``) by pydantic-settings.

=====================  ==========================================================
variable               meaning
=====================  ==========================================================
TUOHU_DATA_DIR         folder of the embedded SQLite files (default ``./var``)
TUOHU_DATABASE_URL     ``postgresql://user:pass@host:port/db``: use PostgreSQL
TUOHU_DATABASE_SCHEMA  PostgreSQL schema for events and read models (``public``)
TUOHU_CONSISTENCY_TIMEOUT  seconds a query with ``consistent_with`` waits (5)
TUOHU_RETENTION_YEARS  years customer due-diligence records are kept after the relationship ends (10)
=====================  ==========================================================
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where tuohu keeps its events and read models."""

    model_config = SettingsConfigDict(env_prefix="TUOHU_", extra="ignore")

    data_dir: Path = Path("var")
    database_url: str | None = None
    database_schema: str = "public"
    consistency_timeout: float = 5.0
    retention_years: int = Field(default=10, ge=0, le=100)

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if not value:
            return None
        from sqlalchemy.engine import make_url  # imported when used: the CLI's audit commands start faster

        url = make_url(value)
        if not url.drivername.startswith("postgresql"):
            raise ValueError(f"only postgresql:// URLs are supported, got {url.drivername}://")
        return value

    @property
    def uses_postgres(self) -> bool:
        return self.database_url is not None

    def event_store_env(self) -> dict[str, str]:
        """The ``eventsourcing`` environment for the library's own recorders."""
        if self.database_url:
            from sqlalchemy.engine import make_url

            url = make_url(self.database_url)
            env = {
                "PERSISTENCE_MODULE": "eventsourcing.postgres",
                "POSTGRES_DBNAME": url.database or "postgres",
                "POSTGRES_HOST": url.host or "127.0.0.1",
                "POSTGRES_PORT": str(url.port or 5432),
                "POSTGRES_USER": url.username or "postgres",
                "POSTGRES_PASSWORD": url.password or "",
                "POSTGRES_SCHEMA": self.database_schema,
                "POSTGRES_POOL_SIZE": "5",
                "POSTGRES_MAX_OVERFLOW": "10",
                # the library's recorder, writing without psycopg's pipeline mode (application.postgres)
                "APPLICATION_RECORDER_TOPIC": "application.postgres:PostgresEventRecorder",
            }
            return env
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(self.data_dir / "events.sqlite"),
            "SQLITE_LOCK_TIMEOUT": "30",
        }

    def read_model_url(self) -> str:
        """SQLAlchemy URL of the read-model database."""
        if self.database_url:
            from sqlalchemy.engine import make_url

            url = make_url(self.database_url).set(drivername="postgresql+psycopg")
            return url.render_as_string(hide_password=False)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.data_dir / 'readmodels.sqlite').resolve()}"
