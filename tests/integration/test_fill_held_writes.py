"""A fill from memory and SQLite's one write lock: while another connection holds the lock, the
fill goes on applying batches in memory and holds their writes, then writes them in order once
the lock is free - the same rows and positions as a fill that never waited. A held batch whose
writes fail is still found at its event. (PostgreSQL locks rows, not the database: nothing waits.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Column, Integer, String, select

from domain.base import Context
from domain.customer import Customer
from interfaces.demo import generate_demo
from projections.framework import (
    Batch,
    Projection,
    ProjectionFailed,
    ProjectionRunner,
    ReadModelStore,
    TableSpec,
)

BATCH = 300  # events per fill batch: the demo log below makes many


class _Reads:
    """Counts the batches a runner reads (each read comes after the batch before it was applied),
    calling ``first`` before the first."""

    def __init__(self, runner: ProjectionRunner) -> None:
        self.count = 0
        self.first: Callable[[], None] | None = None
        self._read = runner._read

        def read(*args: Any, **kwargs: Any) -> Any:
            if self.count == 0 and self.first is not None:
                self.first()
            self.count += 1
            return self._read(*args, **kwargs)

        runner._read = read  # type: ignore[method-assign]

    def wait_for(self, count: int, timeout: float = 20.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.count < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.count >= count


def _while_locked(store: ReadModelStore, fill: Callable[[], Any], reads: _Reads, batches: int) -> Any:
    """Run ``fill`` in a thread; another connection takes the write lock as the fill reads its first
    batch (its tables are set up by then) and frees it once ``batches`` batches were read, or after
    20 s. Returns what ``fill`` returned and whether it read them."""
    blocker = store.engine.raw_connection()
    outcome: dict[str, Any] = {}
    reads.first = lambda: blocker.execute("BEGIN IMMEDIATE")

    def run() -> None:
        try:
            outcome["value"] = fill()
        except BaseException as exc:  # noqa: BLE001 - raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    try:
        went_on = reads.wait_for(batches)
    finally:
        reads.wait_for(1)
        blocker.rollback()
        blocker.close()
    thread.join(60)
    assert not thread.is_alive()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value"), went_on


def test_a_fill_goes_on_while_the_lock_is_held_and_writes_the_same_rows_after(sqlite_services) -> None:
    application, read_models = sqlite_services
    generate_demo(application, events=3_000, seed=5)
    runner, store = read_models.runner, read_models.store
    runner.fill_batch_size = BATCH
    head = application.recorder.max_notification_id()
    assert head > (runner.most_held + 2) * BATCH

    read_models.catch_up()  # the live tables, applied batch by batch as events come: the reference
    generation, actors = store.new_generation("pipeline"), store.new_generation("actors")
    reads = _Reads(runner)

    def fill() -> dict[str, int]:
        return runner.fill_many({"pipeline": generation}, until=head, riders={"actors": actors})

    positions, went_on = _while_locked(store, fill, reads, runner.most_held)

    assert went_on, "the fill waited for the lock at its first batch"
    assert positions == {"pipeline": head}
    assert store.position("pipeline", generation) == head
    assert store.checksum("pipeline", generation) == store.checksum("pipeline")
    classes = store.projections["pipeline"].event_classes()
    of_classes = {n.id for n in application.recorder.select_notifications(start=1, limit=head)
                  if type(application.mapper.to_domain_event(n)) in classes}
    with store.engine.connect() as conn:  # the rider's rows too: each once, as the trail's own fill wrote them
        ridden = {row.position: row for row in conn.execute(select(store.tables("actors", actors).actors))}
        live = {row.position: row for row in conn.execute(select(store.tables("actors").actors))}
    assert set(ridden) == of_classes
    assert all(ridden[position] == live[position] for position in ridden)


def test_while_the_lock_is_held_nothing_is_written_and_the_position_stays(sqlite_services) -> None:
    """Held writes are writes not yet made: another reader sees the generation as it was."""
    application, read_models = sqlite_services
    generate_demo(application, events=3_000, seed=5)
    runner, store = read_models.runner, read_models.store
    runner.fill_batch_size = BATCH
    generation = store.new_generation("pipeline")
    reads = _Reads(runner)
    seen: dict[str, Any] = {}
    original = reads.wait_for

    def wait_then_look(count: int, timeout: float = 20.0) -> bool:
        went_on = original(count, timeout)
        time.sleep(0.2)  # the fill is now waiting for the lock with its batches held
        seen["position"] = store.position("pipeline", generation)
        seen["empty"] = store.is_empty("pipeline", generation)
        return went_on

    reads.wait_for = wait_then_look  # type: ignore[method-assign]
    _, went_on = _while_locked(store, lambda: runner.fill("pipeline", generation), reads, runner.most_held)

    assert went_on
    assert seen == {"position": 0, "empty": True}
    assert store.position("pipeline", generation) == application.recorder.max_notification_id()


class _Unwritable(Projection):
    """Counts registrations; the row of a corporate customer's holds a value no database can store,
    so its batch fails when it is written, not when it is applied."""

    name = "unwritable"
    specs = (TableSpec("seen", lambda: [Column("customer_id", String(), primary_key=True),
                                        Column("value", Integer, nullable=False)]),)

    def handlers(self) -> dict[type, Any]:
        def registered(batch: Batch, event: Customer.Registered) -> None:
            value = object() if event.kind == "corporate" else 1
            batch.put("seen", {"customer_id": str(event.originator_id), "value": value})
        return {Customer.Registered: registered}


def test_a_held_batch_that_fails_to_write_is_found_at_its_event(sqlite_services) -> None:
    application, read_models = sqlite_services
    ctx = Context("mgr-wu", "customer_manager")

    def register(kind: str) -> int:
        return application.register_customer(ctx, kind=kind, acquisition_channel="branch", source_detail="counter",
                                             segment="mass", manager_id="mgr-wu", branch="B1").position

    for _ in range(5):
        register("retail")
    bad = register("corporate")
    for _ in range(5):
        register("retail")
    store = ReadModelStore(read_models.engine, [_Unwritable()])
    runner = ProjectionRunner(application.recorder, application.mapper, store, fill_batch_size=2)
    generation = store.new_generation("unwritable")
    reads = _Reads(runner)

    with pytest.raises(ProjectionFailed) as failure:
        _while_locked(store, lambda: runner.fill("unwritable", generation), reads, runner.most_held)

    assert reads.count >= runner.most_held  # the failing batch was held with others
    assert failure.value.position == bad
    row = store.tracking_row("unwritable", generation)
    assert (row["position"], row["error_position"]) == (bad - 1, bad)
    with store.engine.connect() as conn:  # the five registrations before it are written, nothing after
        values = conn.execute(select(store.tables("unwritable", generation).seen.c.value)).scalars().all()
    assert values == [1] * 5
