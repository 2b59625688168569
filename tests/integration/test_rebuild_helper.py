"""A rebuild that fills some projections in a helper process (projections.helper) writes the rows a
rebuild in one process writes, swaps every generation, and fails whole when the helper fails."""

from __future__ import annotations

import functools

import pytest

from application import Settings
from interfaces.demo import generate_demo
from projections.helper import HelperFailed, runner_for


def _checksums(read_models) -> dict[str, dict[str, str]]:
    store = read_models.store
    return {name: store.checksum(name) for name in store.projections}


def test_a_rebuild_with_a_helper_writes_what_one_process_writes(services, monkeypatch) -> None:
    from projections import helper

    application, read_models = services
    generate_demo(application, events=3_000, seed=31)
    runner = read_models.runner
    runner.rebuild()
    alone = _checksums(read_models)
    before = {name: read_models.store.active_generation(name) for name in read_models.store.projections}
    started: list[dict] = []
    start = helper.start

    def recording(recipe, targets, **options):
        started.append(dict(options, targets=targets))
        return start(recipe, targets, **options)

    monkeypatch.setattr(helper, "start", recording)
    runner.helper_threshold = 0
    targets = runner.rebuild()

    # the helper filled evaluation and team, and wrote the actor trail's rows of the events it decoded
    [given] = started
    assert given["targets"] == {"evaluation": targets["evaluation"], "team": targets["team"]}
    assert given["riders"] == {"actors": targets["actors"]}
    assert given["until"] == application.recorder.max_notification_id()
    assert targets == {name: generation + 1 for name, generation in before.items()}
    assert {name: read_models.store.active_generation(name) for name in targets} == targets
    head = application.recorder.max_notification_id()
    assert {name: read_models.store.position(name) for name in targets} == dict.fromkeys(targets, head)
    assert _checksums(read_models) == alone
    assert runner.verify() == []


def test_a_rebuild_whose_helper_fails_swaps_nothing(services, tmp_path) -> None:
    application, read_models = services
    generate_demo(application, events=1_000, seed=32)
    read_models.catch_up()
    runner = read_models.runner
    before = {name: read_models.store.active_generation(name) for name in read_models.store.projections}
    # a helper over another, empty store: the generations it is given are not there
    runner.helper = functools.partial(runner_for, Settings(data_dir=tmp_path / "elsewhere"))
    runner.helper_threshold = 0

    with pytest.raises(HelperFailed):
        runner.rebuild()

    assert {name: read_models.store.active_generation(name) for name in before} == before
    assert read_models.runner.verify() == []


def test_a_rebuild_stops_soon_after_its_helper_dies(services, monkeypatch) -> None:
    """A helper killed (here: it exits at once with code 3) stops the first process at its next
    batch, not after it has filled its own projections to the end; nothing is swapped."""
    import os
    import time

    application, read_models = services
    generate_demo(application, events=3_000, seed=33)
    read_models.catch_up()
    runner = read_models.runner
    before = {name: read_models.store.active_generation(name) for name in read_models.store.projections}
    runner.helper = functools.partial(os._exit, 3)
    runner.helper_threshold = 0
    runner.fill_batch_size = 100
    batches: list[int] = []
    fill_batch = runner._fill_batch

    def slow_batch(*args, **kwargs):  # 30 batches of 0.1 s: the helper is long dead before the last
        batches.append(1)
        time.sleep(0.1)
        return fill_batch(*args, **kwargs)

    monkeypatch.setattr(runner, "_fill_batch", slow_batch)

    with pytest.raises(HelperFailed, match="exit code 3"):
        runner.rebuild()

    head = application.recorder.max_notification_id()
    assert len(batches) < head // 100  # stopped before the end of the log
    assert {name: read_models.store.active_generation(name) for name in before} == before


def test_a_fill_with_riders_writes_their_rows_of_its_events_and_the_other_fill_the_rest(services) -> None:
    """The two halves of a shared rebuild, in one process: a fill of evaluation writes the actor trail's
    rows of exactly the events of evaluation's classes; a fill of the actor trail told so writes every
    other row (a row written twice would break its primary key), and together they equal the trail
    built event by event."""
    from sqlalchemy import select

    application, read_models = services
    generate_demo(application, events=2_000, seed=34)
    read_models.catch_up()
    runner, store = read_models.runner, read_models.store
    head = application.recorder.max_notification_id()
    classes = store.projections["evaluation"].event_classes()
    of_classes = {n.id for n in application.recorder.select_notifications(start=1, limit=head)
                  if type(application.mapper.to_domain_event(n)) in classes}
    assert 0 < len(of_classes) < head  # the split is a real one
    evaluation, actors = store.new_generation("evaluation"), store.new_generation("actors")
    try:
        runner.fill_many({"evaluation": evaluation}, until=head, riders={"actors": actors})

        with store.engine.connect() as conn:
            ridden = {row.position: row for row in conn.execute(select(store.tables("actors", actors).actors))}
            live = {row.position: row for row in conn.execute(select(store.tables("actors").actors))}
        assert set(ridden) == of_classes
        assert all(ridden[position] == live[position] for position in ridden)
        assert store.position("actors", actors) == 0  # the rider moves no position

        runner.fill_many({"actors": actors}, until=head, elsewhere={"actors": (classes, head)})

        assert store.checksum("actors", actors) == store.checksum("actors")
    finally:
        store.drop_generation("evaluation", evaluation)
        store.drop_generation("actors", actors)
