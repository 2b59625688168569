"""A rebuild that is stopped or fails drops the generations it had begun and leaves the live ones as they
were; status names every generation besides the active and the previous one (SQLite and PostgreSQL).

The signals themselves, on a real ``tuohu projections rebuild`` process, are in
``tests/e2e/test_cli_rebuild.py``; here the rebuild's ``stop`` event is set at a chosen batch."""

from __future__ import annotations

import functools
import os
import re
import threading
from typing import Any

import pytest
from sqlalchemy import inspect

from interfaces.demo import generate_demo
from projections import helper
from projections.framework import ProjectionFailed, ProjectionRunner, RebuildInterrupted
from projections.helper import HelperFailed


def _generations_with_tables(read_models: Any) -> dict[str, set[int]]:
    """``{projection: generation numbers}`` of the ``rm_<table>_g<N>`` tables in the database (each
    projection's first table by name), whatever the tracking says."""
    names = inspect(read_models.engine).get_table_names()
    found = {}
    for name, projection in read_models.store.projections.items():
        base = projection.specs[0].name
        found[name] = {int(m.group(1)) for t in names if (m := re.fullmatch(rf"rm_{base}_g(\d+)", t))}
    return found


def _every_generation_table(read_models: Any) -> set[str]:
    return {t for t in inspect(read_models.engine).get_table_names() if re.search(r"_g\d+(_|$)", t)}


def _state(read_models: Any) -> dict[str, Any]:
    store = read_models.store
    return {
        "active": {name: store.active_generation(name) for name in store.projections},
        "tracked": {name: store.generations(name) for name in store.projections},
        "tables": _every_generation_table(read_models),
        "checksums": {name: store.checksum(name) for name in store.projections},
        "positions": {name: store.position(name) for name in store.projections},
    }


def _stop_after(runner: ProjectionRunner, monkeypatch: pytest.MonkeyPatch, batches: int) -> threading.Event:
    """A stop event that is set once the runner has filled ``batches`` batches (in this process)."""
    stop = threading.Event()
    filled = []
    fill_batch = runner._fill_batch

    def counting(*args: Any, **kwargs: Any) -> bool:
        more = fill_batch(*args, **kwargs)
        filled.append(1)
        if len(filled) >= batches:
            stop.set()
        return more

    monkeypatch.setattr(runner, "_fill_batch", counting)
    return stop


@pytest.fixture
def demo(services) -> tuple[Any, Any]:
    application, read_models = services
    generate_demo(application, events=3_000, seed=41)
    read_models.catch_up()
    read_models.runner.rebuild()  # a previous generation, kept after the swap
    return application, read_models


def test_a_rebuild_asked_to_stop_drops_its_generations_and_keeps_the_live_ones(demo, monkeypatch) -> None:
    application, read_models = demo
    runner = read_models.runner
    before = _state(read_models)
    runner.fill_batch_size = 500
    stop = _stop_after(runner, monkeypatch, batches=2)

    with pytest.raises(RebuildInterrupted) as stopped:
        runner.rebuild(stop=stop)

    head = application.recorder.max_notification_id()
    new = {name: max(generations) + 1 for name, generations in before["tracked"].items()}
    assert stopped.value.reached == {name: (generation, 1_000) for name, generation in new.items()}
    assert (stopped.value.head, stopped.value.left) == (head, {})
    message = str(stopped.value)
    assert message.startswith("rebuild of pipeline, actors, evaluation, team stopped before the swap")
    assert f"(generation {new['pipeline']} of pipeline, actors, evaluation, team at position 1,000 of {head:,})" \
        in message
    assert "were dropped; the live tables are unchanged and still served" in message
    assert _state(read_models) == before
    assert runner.verify() == []


def test_a_stop_asked_before_the_rebuild_begins_creates_nothing(demo) -> None:
    _application, read_models = demo
    before = _state(read_models)
    stop = threading.Event()
    stop.set()

    with pytest.raises(RebuildInterrupted, match="stopped before it created any table") as stopped:
        read_models.runner.rebuild("pipeline", stop=stop)

    assert stopped.value.reached == {}
    assert _state(read_models) == before


def test_a_stop_set_after_the_swap_changes_nothing(demo, monkeypatch) -> None:
    """The swap is the rebuild's last step that a stop can prevent: set during the drops after it, the
    rebuild completes as usual."""
    _application, read_models = demo
    store = read_models.store
    before = _state(read_models)
    stop = threading.Event()
    swap = store.swap

    def swap_then_stop(generations: dict[str, int]) -> dict[str, int]:
        olds = swap(generations)
        stop.set()
        return olds

    monkeypatch.setattr(store, "swap", swap_then_stop)

    targets = read_models.runner.rebuild(stop=stop)

    assert {name: store.active_generation(name) for name in targets} == targets
    assert {name: store.generations(name) for name in targets} == {
        name: [before["active"][name], generation] for name, generation in targets.items()}
    assert {name: store.checksum(name) for name in targets} == before["checksums"]


def test_a_failed_rebuild_drops_its_generations_and_says_so(demo, monkeypatch) -> None:
    """A projection failing on an event in the rebuild (here: the evaluation, past position 1,200)."""
    application, read_models = demo
    runner = read_models.runner
    before = _state(read_models)
    runner.fill_batch_size = 500
    handlers = read_models.store.projections["evaluation"]._handlers

    def failing_past_1200(handler: Any, batch: Any, event: Any) -> None:
        if batch.position > 1_200:
            raise RuntimeError("cannot apply this event")
        handler(batch, event)

    for event_class, handler in list(handlers.items()):
        monkeypatch.setitem(handlers, event_class, functools.partial(failing_past_1200, handler))

    with pytest.raises(ProjectionFailed, match="cannot apply this event") as failure:
        runner.rebuild()

    head = application.recorder.max_notification_id()
    new = max(before["tracked"]["pipeline"]) + 1
    [note] = failure.value.__notes__
    found = re.fullmatch(
        rf"the rebuild's unfinished generations \(pipeline generation {new} at position 1,500, "
        rf"actors generation {new} at position 1,500, evaluation generation {new} at position ([\d,]+), "
        rf"team generation {new} at position 1,000, of {head:,}\) were dropped", note)
    assert found, note
    # the third batch: the evaluation kept the events before the one it failed on, the team was not reached
    assert 1_000 <= int(found.group(1).replace(",", "")) < failure.value.position
    assert failure.value.position > 1_200
    assert _state(read_models) == before


def test_a_rebuild_whose_helper_fails_drops_the_generations_of_both_processes(demo, tmp_path) -> None:
    _application, read_models = demo
    runner = read_models.runner
    before = _state(read_models)
    runner.helper = functools.partial(os._exit, 3)
    runner.helper_threshold = 0

    with pytest.raises(HelperFailed, match="ended with exit code 3") as failure:
        runner.rebuild()

    assert "unfinished generations (" in failure.value.__notes__[0]
    assert "evaluation generation" in failure.value.__notes__[0] or "evaluation, team" in failure.value.__notes__[0]
    assert _state(read_models) == before


def _capture_helpers(monkeypatch: pytest.MonkeyPatch) -> list[helper.Helper]:
    started: list[helper.Helper] = []
    start = helper.start

    def capturing(recipe: Any, targets: dict[str, int], **options: Any) -> helper.Helper:
        started.append(start(recipe, targets, **options))
        return started[-1]

    monkeypatch.setattr(helper, "start", capturing)
    return started


def test_a_rebuild_stopped_while_its_helper_fills_ends_the_helper_and_drops_its_generations(demo, monkeypatch) -> None:
    _application, read_models = demo
    runner = read_models.runner
    before = _state(read_models)
    runner.helper_threshold = 0
    runner.fill_batch_size = 500
    helpers = _capture_helpers(monkeypatch)
    stop = _stop_after(runner, monkeypatch, batches=1)

    with pytest.raises(RebuildInterrupted) as stopped:
        runner.rebuild(stop=stop)

    [helping] = helpers
    assert helping._process.returncode is not None  # ended, and waited for
    assert set(stopped.value.reached) == {"pipeline", "actors", "evaluation", "team"}
    assert _state(read_models) == before


def test_a_rebuild_stopped_while_it_waits_for_its_helper_ends_the_helper(demo, monkeypatch) -> None:
    """The first process has filled its part; the helper (here one that sleeps instead of filling)
    is still at work: the wait for its result stops too."""
    import time

    _application, read_models = demo
    runner = read_models.runner
    before = _state(read_models)
    runner.helper = functools.partial(time.sleep, 60)
    runner.helper_threshold = 0
    helpers = _capture_helpers(monkeypatch)
    stop = threading.Event()
    result = helper.Helper.result

    def stop_while_waiting(self: helper.Helper, between: Any = None, interval: float = 0.1) -> dict[str, int]:
        threading.Timer(0.3, stop.set).start()
        return result(self, between, interval)

    monkeypatch.setattr(helper.Helper, "result", stop_while_waiting)
    started = time.monotonic()

    with pytest.raises(RebuildInterrupted):
        runner.rebuild(stop=stop)

    assert time.monotonic() - started < 30
    [helping] = helpers
    assert helping._process.returncode is not None
    assert _state(read_models) == before


def test_status_names_unfinished_and_superseded_generations_but_not_the_previous_one(demo, monkeypatch) -> None:
    from datetime import datetime

    from projections.framework import utc

    application, read_models = demo
    store, runner = read_models.store, read_models.runner
    head = application.recorder.max_notification_id()
    assert [(r["previous_generation"], r["other_generations"]) for r in runner.status()] == [
        (store.active_generation(name) - 1, []) for name in store.projections]

    # what a rebuild killed by SIGKILL leaves: a generation filled part of the way
    left = store.new_generation("pipeline")
    runner.fill("pipeline", left, until=1_200)
    # and what one that ended between its swap and its drops leaves: an older generation besides the previous one
    kept = store.generations("actors")

    def interrupted(name: str, generation: int) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(store, "drop_generation", interrupted)
        with pytest.raises(KeyboardInterrupt):
            runner.rebuild("actors")

    status = {row["projection"]: row for row in runner.status()}

    [unfinished] = status["pipeline"]["other_generations"]
    assert {k: unfinished[k] for k in ("generation", "state", "position")} == {
        "generation": left, "state": "unfinished", "position": 1_200}
    assert datetime.fromisoformat(unfinished["last_written_at"]) == utc(
        store.tracking_row("pipeline", left)["updated_at"])
    assert status["pipeline"]["previous_generation"] == store.active_generation("pipeline") - 1
    assert status["actors"]["generation"] == kept[-1] + 1
    assert status["actors"]["previous_generation"] == kept[-1]
    assert [(o["generation"], o["state"], o["position"]) for o in status["actors"]["other_generations"]] == [
        (kept[0], "superseded", head)]
    assert status["evaluation"]["other_generations"] == []

    runner.rebuild()  # drops them, as ever

    assert all(row["other_generations"] == [] for row in runner.status())
    assert {name: len(store.generations(name)) for name in store.projections} == dict.fromkeys(store.projections, 2)
    assert {name: len(found) for name, found in _generations_with_tables(read_models).items()} == dict.fromkeys(
        store.projections, 2)


def test_status_during_a_verify_shows_its_scratch_generation_as_unfinished(demo, monkeypatch) -> None:
    """A verify (or as-of report) fills a scratch generation that another process's status sees:
    as unfinished, written moments ago; the live and the previous generation are reported as ever."""
    _application, read_models = demo
    store, runner = read_models.store, read_models.runner
    seen: list[dict[str, Any]] = []
    fill_many = runner.fill_many

    def fill_and_look(targets: dict[str, int], *args: Any, **kwargs: Any) -> dict[str, int]:
        positions = fill_many(targets, *args, **kwargs)
        if "team" in targets:
            seen.extend(row for row in runner.status() if row["projection"] == "team")
        return positions

    monkeypatch.setattr(runner, "fill_many", fill_and_look)

    assert runner.verify() == []

    [team] = seen
    [scratch] = team["other_generations"]
    assert (scratch["generation"], scratch["state"]) == (store.active_generation("team") + 1, "unfinished")
    assert scratch["position"] == team["position"]
    assert team["previous_generation"] == store.active_generation("team") - 1
    assert all(row["other_generations"] == [] for row in runner.status())  # verify dropped it
