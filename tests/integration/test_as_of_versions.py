"""Versioned read models: the evaluation and team tables as they stood at any position.

The expected tables are the definition of "as of a position": the projection
replayed from an empty generation up to that position. The versioned views
(row versions at the checkpoint before it, plus the events since) must equal
them row for row, at checkpoints, next to them and in between, whatever the
batch sizes the live tables were written in. SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import select

from interfaces.demo import generate_demo
from projections.evaluation import EvaluationProjection, TeamProjection
from projections.framework import CHECKPOINT, HISTORY_SUFFIX

EVERY = 37  # small, so that a short log crosses many checkpoints
VERSIONED = ("evaluation", "team")


def rows(conn: Any, selectable: Any) -> list[tuple]:
    """Every row without its checkpoint column, in a stable order."""
    names = [c.name for c in selectable.columns if c.name != CHECKPOINT]
    found = conn.execute(select(*(selectable.c[n] for n in names))).all()
    return sorted((tuple(str(v) for v in row) for row in found))


def replayed(read_models: Any, name: str, position: int) -> dict[str, list[tuple]]:
    """The projection's tables filled from position 0 up to ``position`` in a scratch generation."""
    generation = read_models.store.new_generation(name)
    try:
        read_models.runner.fill(name, generation, until=position)
        tables = read_models.store.tables(name, generation)
        with read_models.engine.connect() as conn:
            return {base: rows(conn, table) for base, table in tables.items() if not base.endswith(HISTORY_SUFFIX)}
    finally:
        read_models.store.drop_generation(name, generation)


@pytest.fixture
def versioned(services: tuple, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """A demo log (staff who join and leave, reassignments, credit and business figures)
    projected in batches that do not line up with the checkpoints."""
    monkeypatch.setattr(EvaluationProjection, "checkpoint_every", EVERY)
    monkeypatch.setattr(TeamProjection, "checkpoint_every", EVERY)
    application, read_models = services
    generate_demo(application, events=1_500, seed=7, months=6)
    read_models.runner.batch_size = 101
    read_models.catch_up()
    return application, read_models


def test_the_tables_as_of_any_position_equal_a_replay_up_to_it(versioned: tuple) -> None:
    application, read_models = versioned
    head = application.position()
    picks = random.Random(11).sample(range(1, head), 5)
    positions = sorted({1, EVERY - 1, EVERY, EVERY + 1, 10 * EVERY, head // 2, head - 1, head, *picks})
    generations = {name: read_models.store.generations(name) for name in VERSIONED}

    for position in positions:
        expected = {name: replayed(read_models, name, position) for name in VERSIONED}
        with read_models.runner.as_of(VERSIONED, position) as views:
            assert views is not None
            with read_models.engine.connect() as conn:
                actual = {name: {base: rows(conn, view) for base, view in views[name].items()} for name in VERSIONED}
        assert actual == expected, f"as of position {position}"

    assert {name: read_models.store.generations(name) for name in VERSIONED} == generations


def test_versions_do_not_depend_on_batch_sizes(versioned: tuple) -> None:
    """A rebuild in other batch sizes gives the same rows and the same history: verify agrees."""
    _application, read_models = versioned
    read_models.runner.batch_size = 1_000

    assert read_models.runner.verify(list(VERSIONED)) == []


def test_a_live_table_behind_the_position_is_not_read_as_of_it(versioned: tuple) -> None:
    application, read_models = versioned
    head = application.position()

    with read_models.runner.as_of(VERSIONED, head + 1) as views:
        assert views is None


def test_tables_of_an_earlier_release_are_replaced_by_a_new_generation(services: tuple, settings: Any) -> None:
    """A read-model database whose evaluation tables lack the version columns (as an earlier
    release wrote them) gets a new, empty generation, which the runner fills from the log."""
    from sqlalchemy import text

    from projections import build_read_models

    application, read_models = services
    generate_demo(application, events=300, seed=5, months=2)
    read_models.catch_up()
    old = read_models.store.active_generation("evaluation")
    expected = read_models.store.checksum("evaluation")
    table = read_models.store.tables("evaluation", old).unit_month
    with read_models.engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {table.name} DROP COLUMN {CHECKPOINT}"))
    read_models.engine.dispose()

    reopened = build_read_models(application, settings)
    try:
        new = reopened.store.active_generation("evaluation")
        assert new != old and old not in reopened.store.generations("evaluation")
        assert reopened.store.position("evaluation") == 0
        reopened.catch_up()
        assert reopened.store.checksum("evaluation") == expected
    finally:
        reopened.close()
