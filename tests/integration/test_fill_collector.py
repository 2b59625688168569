"""A fill and the cyclic garbage collector: paused while a batch is applied, what the batches leave
alive frozen after each (so no later collection scans it again), unfrozen when the fill ends; and
a batch freed by reference counting alone - a write lock found busy leaves no reference cycle
holding the caller's frame (a frozen cycle would keep its batch alive until the fill ends).
And a fill whose commits leave SQLite's log to other connections to checkpoint (the rebuild's
first process, while its helper's commits checkpoint)."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, String, event

from domain.base import Context
from domain.customer import Customer
from interfaces.demo import generate_demo
from projections.framework import Batch, Projection, ProjectionRunner, ReadModelStore, TableSpec, _write_lock_now


class _Watch(Projection):
    """Counts registrations, noting for each whether the collector runs and how many objects are frozen."""

    name = "watch"
    specs = (TableSpec("seen", lambda: [Column("customer_id", String(), primary_key=True),
                                        Column("value", Integer, nullable=False)]),)

    def __init__(self) -> None:
        self.seen: list[tuple[bool, int]] = []

    def handlers(self) -> dict[type, Any]:
        def registered(batch: Batch, event: Customer.Registered) -> None:
            self.seen.append((gc.isenabled(), gc.get_freeze_count()))
            batch.put("seen", {"customer_id": str(event.originator_id), "value": 1})
        return {Customer.Registered: registered}


def _registered(application: Any, count: int) -> None:
    ctx = Context("mgr-wu", "customer_manager")
    for _ in range(count):
        application.register_customer(ctx, kind="retail", acquisition_channel="branch", source_detail="counter",
                                      segment="mass", manager_id="mgr-wu", branch="B1")


def _watched(application: Any, read_models: Any) -> tuple[_Watch, ProjectionRunner, ReadModelStore]:
    watch = _Watch()
    store = ReadModelStore(read_models.engine, [watch])
    return watch, ProjectionRunner(application.recorder, application.mapper, store, fill_batch_size=2), store


def test_a_fill_pauses_the_collector_freezes_what_batches_leave_and_unfreezes_at_the_end(sqlite_services) -> None:
    application, read_models = sqlite_services
    _registered(application, 6)  # three batches of two
    watch, runner, store = _watched(application, read_models)
    generation = store.new_generation("watch")
    gc.unfreeze()  # nothing frozen before the fill (another test's leftovers, if any)
    assert gc.isenabled()

    runner.fill("watch", generation)

    assert len(watch.seen) == 6
    assert not any(enabled for enabled, _ in watch.seen)  # paused while each batch was applied
    assert [frozen > 0 for _, frozen in watch.seen] == [False, False, True, True, True, True]
    assert gc.isenabled() and gc.get_freeze_count() == 0  # all unfrozen when the fill ended
    assert store.position("watch", generation) == application.recorder.max_notification_id()


def test_a_fill_leaves_objects_frozen_before_it_frozen(sqlite_services) -> None:
    """A process that froze its own objects (a pre-forking server, say) keeps them frozen: the fill only pauses."""
    application, read_models = sqlite_services
    _registered(application, 6)
    watch, runner, store = _watched(application, read_models)
    generation = store.new_generation("watch")
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        assert before > 0

        runner.fill("watch", generation)

        assert not any(enabled for enabled, _ in watch.seen)
        # the fill froze nothing more (frozen objects may be freed meanwhile) and unfroze none
        assert all(0 < frozen <= before for _, frozen in watch.seen)
        assert 0 < gc.get_freeze_count() <= before
        assert gc.isenabled()
    finally:
        gc.unfreeze()


class _Kept:
    """An object of the caller's frame, to see when the frame is freed."""


def _try_lock(store: ReadModelStore) -> tuple[bool, weakref.ref[_Kept]]:
    kept = _Kept()
    with store.engine.connect() as conn:
        taken = _write_lock_now(conn)
        conn.rollback()
    return taken, weakref.ref(kept)


def test_a_busy_write_lock_leaves_nothing_for_the_collector(sqlite_services) -> None:
    _, read_models = sqlite_services
    store = read_models.store
    blocker = store.engine.raw_connection()
    blocker.execute("BEGIN IMMEDIATE")
    gc.collect()
    gc.disable()
    try:
        taken, ref = _try_lock(store)
        assert taken is False
        assert ref() is None, "the caller's frame is still alive: the busy error is in a reference cycle"
    finally:
        gc.enable()
        blocker.rollback()
        blocker.close()
    taken, _ = _try_lock(store)
    assert taken is True


def test_a_fill_checkpointed_elsewhere_leaves_its_pages_in_the_log(sqlite_services) -> None:
    """The rebuild's first process fills with ``checkpointed_elsewhere`` (its helper running): its batch
    commits leave the write-ahead log for the helper's commits to copy into the database (SQLite
    checkpoints at a commit that finds the log over ``wal_autocheckpoint`` pages; 10 here, so that every
    batch would). Once the other process is done, its commits checkpoint again."""
    application, read_models = sqlite_services
    generate_demo(application, events=3_000, seed=5)
    store, runner = read_models.store, read_models.runner
    runner.fill_batch_size = 300
    engine = store.engine
    database = Path(engine.url.database)
    log = Path(f"{database}-wal")

    @event.listens_for(engine, "connect")
    def small_threshold(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA wal_autocheckpoint=10")

    engine.dispose()  # the pooled connections, opened before: new ones take the threshold

    def fill(elsewhere: Any) -> tuple[int, int]:
        generation = store.new_generation("pipeline")
        store.drop_indexes("pipeline", generation)  # as the fill does first: its DDL checkpointed below
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        before = database.stat().st_size
        runner.fill_many({"pipeline": generation}, checkpointed_elsewhere=elsewhere, defer_indexes=["pipeline"])
        assert store.position("pipeline", generation) == application.recorder.max_notification_id()
        return database.stat().st_size - before, log.stat().st_size

    grown, logged = fill(lambda: True)
    _, logged_done = fill(lambda: False)  # the same rows again, in a new generation: the other process ended
    _, logged_checked = fill(None)
    assert grown == 0  # nothing copied into the database: every page the fill wrote is in the log
    assert logged_done < logged / 2  # checkpointed and started over by the batches' own commits
    assert logged_checked < logged / 2
    with engine.connect() as conn:  # every pooled connection checkpoints again
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 10


def test_a_failing_unchecked_commit_still_restores_the_threshold(tmp_path: Path) -> None:
    """A commit refused by the database (a deferred foreign key, here) raises its error, and the connection,
    back in the pool, checkpoints as before."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import IntegrityError

    from projections.framework import _commit_unchecked

    engine = create_engine(f"sqlite:///{tmp_path / 'f.sqlite'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.exec_driver_sql("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER "
                             "REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)")
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        conn.exec_driver_sql("PRAGMA wal_autocheckpoint=123")
        conn.exec_driver_sql("INSERT INTO child (id, parent_id) VALUES (1, 99)")
        with pytest.raises(IntegrityError):
            _commit_unchecked(conn)
        conn.rollback()
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 123
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM child").scalar() == 0
    engine.dispose()
