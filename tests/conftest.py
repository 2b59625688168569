"""Shared fixtures: the data sets in ../shared/data and the two event stores."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from application import Settings

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TUOHU_SHARED_DATA", ROOT.parent / "shared" / "data"))
BANK_MARKETING = DATA / "bank-marketing"
POSTGRES_URL = os.environ.get("TUOHU_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def bank_marketing_dir() -> Path:
    if not (BANK_MARKETING / "bank-full.csv").exists():
        pytest.fail(f"the Bank Marketing data is expected in {BANK_MARKETING}")
    return BANK_MARKETING


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a fresh, empty store: SQLite files in tmp_path, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        yield Settings(data_dir=tmp_path / "var", database_url=None)
        return
    problem = _postgres_available()
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL must be reachable in CI at {POSTGRES_URL}: {problem}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {problem}")
    import psycopg

    schema = f"tuohu_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield Settings(data_dir=tmp_path / "var", database_url=POSTGRES_URL, database_schema=schema)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def services(settings: Settings) -> Iterator[tuple]:
    """``(application, read models)`` over ``settings``; closed afterwards."""
    from application import bootstrap
    from projections import build_pipeline

    application = bootstrap(settings)
    pipeline = build_pipeline(application, settings)
    try:
        yield application, pipeline
    finally:
        pipeline.engine.dispose()
        application.close()
