"""Verify and rebuild while other processes work on the same read models: a server's runner
applying new events, a verify or an as-of report filling scratch tables."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import inspect, update

from application import Settings
from domain.base import Context
from interfaces.importers.bank_marketing import import_bank_marketing
from projections.framework import ReadModelStore, tracking


def _register(application, n: int) -> None:  # type: ignore[no-untyped-def]
    for i in range(n):
        application.register_customer(Context("mgr-wu", "customer_manager"), kind="retail",
                                      acquisition_channel="online", source_detail=f"web-{i}", segment="mass",
                                      manager_id="mgr-wu", branch="B1")


def test_verify_checks_one_state_while_another_runner_applies_new_events(services, settings: Settings,
                                                                         bank_marketing_dir: Path) -> None:
    application, read_models = services
    import_bank_marketing(application, bank_marketing_dir / "bank.csv", year=2009)
    read_models.catch_up()
    _register(application, 5)  # recorded, not applied yet
    from projections import build_read_models

    other = build_read_models(application, settings)  # a server's runner, say
    store = read_models.store
    checksum = store.checksum
    moved: list[int] = []

    def other_runner_applies_then_checksum(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not moved:  # the first checksum is the live tables': they move on just before it
            other.catch_up()
            moved.append(other.store.position("pipeline"))
        return checksum(*args, **kwargs)

    store.checksum = other_runner_applies_then_checksum  # type: ignore[method-assign]
    try:
        mismatches = read_models.runner.verify(["pipeline"])
    finally:
        del store.checksum
        other.close()

    assert moved and moved[0] == application.position()  # the live tables did move on during the check
    assert mismatches == []


def test_a_rebuild_drops_only_the_generations_nobody_is_using(services, bank_marketing_dir: Path) -> None:
    application, read_models = services
    import_bank_marketing(application, bank_marketing_dir / "bank.csv", year=2009)
    read_models.catch_up()
    store, runner = read_models.store, read_models.runner
    left_behind = store.new_generation("pipeline")  # by a killed rebuild: nobody writes it any more
    in_use = store.new_generation("pipeline")  # a verify filling it while the rebuild runs
    created_meanwhile: list[int] = []
    fill_first = runner._fill_first

    def others_work_meanwhile(targets, *args, **kwargs):  # type: ignore[no-untyped-def]
        with store.engine.begin() as conn:  # the verify commits a batch
            conn.execute(update(tracking).where(tracking.c.projection == "pipeline", tracking.c.generation == in_use)
                         .values(position=100, updated_at=_later()))
        created_meanwhile.append(store.new_generation("pipeline"))  # an as-of report's scratch tables
        return fill_first(targets, *args, **kwargs)

    runner._fill_first = others_work_meanwhile  # type: ignore[method-assign]
    try:
        old = store.active_generation("pipeline")
        new = runner.rebuild("pipeline")["pipeline"]
    finally:
        del runner._fill_first

    assert sorted(store.generations("pipeline")) == sorted([old, in_use, new, *created_meanwhile])
    assert left_behind not in store.generations("pipeline")
    assert store.active_generation("pipeline") == new


def _later():  # type: ignore[no-untyped-def]
    from datetime import datetime, timezone

    return datetime.now(timezone.utc)


def test_new_generations_created_at_the_same_moment_each_get_their_own_number_and_tables(
        services, settings: Settings) -> None:
    application, read_models = services
    from projections import build_read_models

    others = [build_read_models(application, settings) for _ in range(2)]  # a verify's, an as-of report's, say
    stores = [read_models.store, *(other.store for other in others)]
    barrier = threading.Barrier(len(stores))
    before = read_models.store.generations("pipeline")
    try:
        for _ in range(10):  # a race lost once in a while shows in one of several rounds
            created: dict[int, int] = {}
            failed: list[BaseException] = []
            threads = [threading.Thread(target=_new_generation, args=(store, barrier, created, failed, i))
                       for i, store in enumerate(stores)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

            assert failed == []
            assert len(set(created.values())) == len(stores)
            for i, generation in created.items():
                store = stores[i]
                assert store.position("pipeline", generation) == 0
                tables = list(store.tables("pipeline", generation))
                assert all(inspect(store.engine).has_table(table.name) for table in tables)
                assert store.is_empty("pipeline", generation)
            for i, generation in created.items():
                stores[i].drop_generation("pipeline", generation)
            assert read_models.store.generations("pipeline") == before
    finally:
        for other in others:
            other.close()


def _new_generation(store: ReadModelStore, barrier: threading.Barrier, created: dict[int, int],
                    failed: list[BaseException], i: int) -> None:
    barrier.wait()  # all at the same moment
    try:
        created[i] = store.new_generation("pipeline")
    except BaseException as exc:  # noqa: BLE001 - reported by the test's assertion
        failed.append(exc)


def test_a_fresh_read_model_database_opened_by_several_processes_at_once_is_set_up_once(settings: Settings) -> None:
    """A server and an operator's command started together on a new database: each opens the read models
    (creates the state tables and the state rows of every projection) at the same moment. None fails,
    and each projection has one state row, at generation 1, tracked once."""
    from sqlalchemy import select, text

    from projections import all_projections
    from projections.db import make_engine
    from projections.framework import projection_state

    projections = all_projections()
    for _ in range(5):  # a race lost once in a while shows in one of several rounds
        engines = [make_engine(settings) for _ in range(3)]
        barrier = threading.Barrier(len(engines))
        failed: list[BaseException] = []

        def open_store(engine) -> None:  # type: ignore[no-untyped-def]
            barrier.wait()  # all at the same moment
            try:
                ReadModelStore(engine, projections)
            except BaseException as exc:  # noqa: BLE001 - reported by the test's assertion
                failed.append(exc)

        threads = [threading.Thread(target=open_store, args=(engine,)) for engine in engines]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

            assert failed == []
            with engines[0].connect() as conn:
                states = conn.execute(select(projection_state)).all()
                tracked = conn.execute(select(tracking.c.projection, tracking.c.generation)).all()
            assert sorted(states) == sorted((p.name, 1) for p in projections)
            assert sorted(tracked) == sorted((p.name, 1) for p in projections)
        finally:
            with engines[0].begin() as conn:  # a fresh database for the next round
                for table in inspect(conn).get_table_names():
                    if table.startswith("rm_"):
                        conn.execute(text(f'DROP TABLE IF EXISTS "{table}"'))  # a text index drops its own
            for engine in engines:
                engine.dispose()
