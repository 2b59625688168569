"""Fixtures of the integration tests (the shared ones are in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from application import Settings, bootstrap
from projections import build_read_models


@pytest.fixture
def sqlite_services(tmp_path: Path) -> Iterator[tuple]:
    """``(application, read models)`` over a fresh SQLite store in ``tmp_path``; closed afterwards."""
    settings = Settings(data_dir=tmp_path / "var", database_url=None)
    application = bootstrap(settings)
    read_models = build_read_models(application, settings)
    try:
        yield application, read_models
    finally:
        read_models.close()
        application.close()
