"""Read models built from the event log, with tracked positions.

:func:`build_read_models` assembles the store, the projections and the runner
for an application; :class:`ReadModels` is what the API and the CLI query.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from projections import queries
from projections.db import make_engine
from projections.framework import (ProjectionFailed, ProjectionRunner, ReadModelStore, RebuildInterrupted, Tables,
                                   VerifyInterrupted)
from projections.pipeline import FUNNEL_STAGES, PipelineProjection

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from application.app import TuohuApplication
    from application.settings import Settings


def all_projections() -> list[Any]:
    """Every projection tuohu maintains."""
    from projections.actors import ActorTrailProjection

    projections: list[Any] = [PipelineProjection(), ActorTrailProjection()]
    try:
        from projections.evaluation import EvaluationProjection, TeamProjection
    except ImportError:  # pragma: no cover - while evaluation is not installed
        return projections
    return projections + [EvaluationProjection(), TeamProjection()]


class ReadModels:
    """The query side: the store, the runner, and the queries over the active tables."""

    def __init__(self, app: TuohuApplication, engine: Any) -> None:
        self.app = app  # the runner reads its recorder: keep the application (and its pool) alive
        self.engine = engine
        self.store = ReadModelStore(engine, all_projections())
        self.runner = ProjectionRunner(app.recorder, app.mapper, self.store)

    @contextmanager
    def reading(self, name: str = "pipeline") -> Iterator[tuple[Connection, Tables]]:
        """A connection and the active tables of projection ``name``."""
        tables = self.store.tables(name)
        with self.engine.connect() as conn:
            yield conn, tables

    # The runner
    def catch_up(self, until: int | None = None) -> dict[str, int]:
        return self.runner.catch_up(until)

    def wait_for(self, position: int, timeout: float = 5.0) -> bool:
        return self.runner.wait_for(position, timeout)

    def status(self) -> list[dict[str, Any]]:
        return self.runner.status()

    # Queries over the pipeline
    def funnel(self) -> dict[str, int]:
        with self.reading() as (conn, t):
            return queries.funnel(conn, t)

    def customers(self, **kwargs: Any) -> list[dict[str, Any]]:
        with self.reading() as (conn, t):
            return queries.customers(conn, t, **kwargs)

    def records(self, aggregate_type: str, **kwargs: Any) -> list[dict[str, Any]]:
        with self.reading() as (conn, t):
            return queries.records(conn, t, aggregate_type, **kwargs)

    def close(self) -> None:
        self.engine.dispose()


def build_read_models(app: TuohuApplication, settings: Settings) -> ReadModels:
    """The read models of ``app`` in the settings' read-model database; a rebuild may fill some
    projections in a helper process over the same stores (:mod:`projections.helper`)."""
    from projections.helper import runner_for

    read_models = ReadModels(app, make_engine(settings))
    read_models.runner.helper = functools.partial(runner_for, settings)
    return read_models


build_pipeline = build_read_models  # the name the first read model was built under

__all__ = ["FUNNEL_STAGES", "ProjectionFailed", "ReadModels", "RebuildInterrupted", "VerifyInterrupted",
           "build_pipeline", "build_read_models", "make_engine"]
