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


@pytest.fixture
def with_every_event(services, bank_marketing_dir: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A function that fills the ``services`` store with every kind of event and personal field: 3,000 demo
    events (seed 21), the first ``lines`` lines of ``bank-full.csv`` imported, then the first registered
    customer's data erased and the second's processing restricted. It returns ``(erased, restricted)``."""
    from itertools import islice

    from application import privacy
    from domain.base import Context
    from interfaces.demo import generate_demo
    from interfaces.importers.bank_marketing import import_bank_marketing

    application, _ = services
    auditor = Context(actor_id="audit-he", actor_role="compliance_auditor")

    def fill(lines: int):  # type: ignore[no-untyped-def]
        generate_demo(application, events=3_000, seed=21)
        with (bank_marketing_dir / "bank-full.csv").open() as source:
            (tmp_path / "bank.csv").write_text("".join(islice(source, lines)))
        import_bank_marketing(application, tmp_path / "bank.csv")
        customers = application.recorder.select_notifications(start=1, limit=1_000_000,
                                                              topics=["tuohu:Customer.Registered"])
        erased, restricted = customers[0].originator_id, customers[1].originator_id
        privacy.restrict_processing(application, auditor, restricted, reason="accuracy contested")
        privacy.erase_personal_data(application, auditor, erased, reason="DSR-1", retention_years=10)
        return erased, restricted

    return fill
