"""The projection runner against real SQLite and real PostgreSQL: exactly once,
survives SIGKILL, stops on a bad event, rebuilds blue-green, verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from application import Settings
from domain.base import Context
from domain.customer import Customer
from interfaces.importers.bank_marketing import import_bank_marketing
from projections.framework import Batch, Projection, ProjectionFailed, ProjectionRunner, ReadModelStore, TableSpec
from projections.pipeline import PipelineProjection

ROOT = Path(__file__).resolve().parents[2]


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUOHU_")}
    env["TUOHU_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url:
        env["TUOHU_DATABASE_URL"] = settings.database_url
        env["TUOHU_DATABASE_SCHEMA"] = settings.database_schema
    return env


def _expected_funnel(report: Any) -> dict[str, int]:
    return {"registered": report.imported, "account_opened": report.accounts_opened,
            "contracted": report.accounts_opened, "visited": report.imported}


def test_running_twice_never_double_counts(services, bank_marketing_dir: Path) -> None:
    application, read_models = services
    report = import_bank_marketing(application, bank_marketing_dir / "bank.csv", year=2009)
    read_models.catch_up()
    first = read_models.funnel()
    read_models.catch_up()
    assert read_models.funnel() == first
    for stage, count in _expected_funnel(report).items():
        assert first[stage] == count


def test_two_runners_at_once_apply_each_event_once(services, settings: Settings, bank_marketing_dir: Path) -> None:
    application, read_models = services
    report = import_bank_marketing(application, bank_marketing_dir / "bank.csv", year=2009)
    from projections import build_read_models

    other = build_read_models(application, settings)
    errors: list[BaseException] = []

    def run(models: Any) -> None:
        try:
            models.catch_up()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(m,)) for m in (read_models, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    read_models.catch_up()
    assert errors == []
    funnel = read_models.funnel()
    for stage, count in _expected_funnel(report).items():
        assert funnel[stage] == count
    assert read_models.runner.verify() == []


def test_a_runner_killed_mid_batch_resumes_exactly_once(services, settings: Settings, bank_marketing_dir: Path) -> None:
    application, read_models = services
    report = import_bank_marketing(application, bank_marketing_dir / "bank.csv", year=2009)
    head = application.position()
    command = [sys.executable, "-m", "interfaces.cli", "projections", "run", "--poll", "0.05"]

    worker = subprocess.Popen(command, cwd=ROOT, env=_env(settings), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while read_models.store.position("pipeline") < 4000:  # at least two batches in
            assert time.monotonic() < deadline, "the worker made no progress"
            assert worker.poll() is None, "the worker died"
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
    killed_at = read_models.store.position("pipeline")
    assert killed_at < head, "the worker finished before it could be killed"

    worker = subprocess.Popen(command, cwd=ROOT, env=_env(settings), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while min(row["position"] for row in read_models.status()) < head:
            assert time.monotonic() < deadline, "the restarted worker did not catch up"
            assert worker.poll() is None, "the restarted worker died"
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)

    funnel = read_models.funnel()
    for stage, count in _expected_funnel(report).items():
        assert funnel[stage] == count
    assert read_models.runner.verify() == []


class _FailsOnKeyCustomer(Projection):
    """A projection that cannot apply MarkedKeyCustomer (to see how failure is handled)."""

    name = "fragile"
    specs = (TableSpec("seen", lambda: __import__("projections.pipeline", fromlist=["x"])._funnel_columns()),)
    broken = True

    def handlers(self) -> dict[type, Any]:
        def key(batch: Batch, event: Any) -> None:
            if type(self).broken:
                raise RuntimeError("cannot apply this event")

        def registered(batch: Batch, event: Any) -> None:
            batch.increment("seen", ("m", "c", "s", "k", "registered"), "customers", 1)

        return {Customer.MarkedKeyCustomer: key, Customer.Registered: registered}


def test_a_projection_stops_at_the_event_it_cannot_apply_and_reports_it(services, settings: Settings) -> None:
    application, read_models = services
    from projections.db import make_engine

    ctx = Context("mgr-wu", "customer_manager")
    first = application.register_customer(ctx, kind="retail", acquisition_channel="branch", source_detail="counter",
                                          segment="mass", manager_id="mgr-wu", branch="B1").aggregate_id
    bad = application.mark_key_customer(ctx, first, reason="large deposits").position
    application.register_customer(ctx, kind="corporate", acquisition_channel="partner", source_detail="chamber",
                                  segment="sme", manager_id="mgr-wu", branch="B1")
    engine = make_engine(settings)
    store = ReadModelStore(engine, [PipelineProjection(), _FailsOnKeyCustomer()])
    runner = ProjectionRunner(application.recorder, application.mapper, store)
    try:
        _FailsOnKeyCustomer.broken = True
        with pytest.raises(ProjectionFailed) as failure:
            runner.catch_up()
        assert failure.value.position == bad
        status = {row["projection"]: row for row in runner.status()}
        assert status["fragile"]["error_position"] == bad
        assert "cannot apply this event" in status["fragile"]["error"]
        assert status["fragile"]["position"] == bad - 1  # everything before it is applied, nothing after
        assert status["pipeline"]["position"] == application.position()  # the others carry on

        _FailsOnKeyCustomer.broken = False
        runner.catch_up()
        status = {row["projection"]: row for row in runner.status()}
        assert status["fragile"]["position"] == application.position()
        assert status["fragile"]["error"] is None
        with engine.connect() as conn:
            seen = store.tables("fragile").seen
            assert conn.execute(seen.select()).mappings().one()["customers"] == 2  # each registration once
    finally:
        engine.dispose()


class _PrefetchFailsOnKeyCustomer(_FailsOnKeyCustomer):
    """Fails before any handler runs: while reading ahead for a batch holding a corporate registration."""

    name = "fragile_prefetch"

    def prefetch(self, batch: Batch, events: Any) -> None:
        if type(self).broken and any(getattr(e, "kind", None) == "corporate" for e in events):
            raise ValueError("cannot read ahead for this event")

    def handlers(self) -> dict[type, Any]:
        return {Customer.Registered: super().handlers()[Customer.Registered]}


def test_a_failure_outside_the_handlers_is_found_at_its_event_and_reported(services, settings: Settings) -> None:
    """A batch that fails in prefetch or its writes is retried event by event: the projection stops
    at the event that fails alone, with the error in status, and nothing before it is lost."""
    application, _read_models = services
    from projections.db import make_engine

    ctx = Context("mgr-wu", "customer_manager")
    first = application.register_customer(ctx, kind="retail", acquisition_channel="branch", source_detail="counter",
                                          segment="mass", manager_id="mgr-wu", branch="B1").aggregate_id
    application.mark_key_customer(ctx, first, reason="large deposits")
    bad = application.register_customer(ctx, kind="corporate", acquisition_channel="partner", source_detail="chamber",
                                        segment="sme", manager_id="mgr-wu", branch="B1").position
    engine = make_engine(settings)
    store = ReadModelStore(engine, [_PrefetchFailsOnKeyCustomer()])
    runner = ProjectionRunner(application.recorder, application.mapper, store)
    try:
        _PrefetchFailsOnKeyCustomer.broken = True
        with pytest.raises(ProjectionFailed) as failure:
            runner.catch_up()
        [status] = runner.status()
        assert failure.value.position == bad == status["error_position"]
        assert "cannot read ahead for this event" in status["error"]
        assert status["position"] == bad - 1
        with engine.connect() as conn:
            seen = store.tables("fragile_prefetch").seen
            assert conn.execute(seen.select()).mappings().one()["customers"] == 1  # the registration before it

        _PrefetchFailsOnKeyCustomer.broken = False
        runner.catch_up()
        [status] = runner.status()
        assert (status["position"], status["error"]) == (application.position(), None)
    finally:
        engine.dispose()


def test_rebuild_swaps_to_new_tables_with_the_same_rows(services, bank_marketing_dir: Path) -> None:
    application, read_models = services
    import_bank_marketing(application, bank_marketing_dir / "bank.csv", year=2009)
    read_models.catch_up()
    before = read_models.funnel()
    old = read_models.store.active_generation("pipeline")
    live_checksum = read_models.store.checksum("pipeline")

    generations = read_models.runner.rebuild("pipeline")

    assert generations["pipeline"] != old
    assert read_models.store.active_generation("pipeline") == generations["pipeline"]
    assert read_models.funnel() == before
    assert read_models.store.checksum("pipeline") == live_checksum


def test_verify_names_the_table_that_differs(services, bank_marketing_dir: Path) -> None:
    application, read_models = services
    import_bank_marketing(application, bank_marketing_dir / "bank.csv", year=2009)
    read_models.catch_up()
    assert read_models.runner.verify() == []
    customers = read_models.store.tables("pipeline").customers
    with read_models.engine.begin() as conn:
        conn.execute(customers.update().where(customers.c.stage == "account_opened").values(is_key=True))

    mismatches = read_models.runner.verify()

    assert [(m["projection"], m["table"]) for m in mismatches] == [("pipeline", "customers")]


def test_wait_for_returns_once_the_position_is_reached(services) -> None:
    application, read_models = services
    position = application.register_customer(
        Context("mgr-wu", "customer_manager"), kind="retail", acquisition_channel="online", source_detail="web",
        segment="mass", manager_id="mgr-wu", branch="B1").position
    assert read_models.wait_for(position, timeout=0.1) is False
    stop = threading.Event()
    follower = threading.Thread(target=read_models.runner.follow, args=(stop,), kwargs={"poll_interval": 0.05})
    follower.start()
    try:
        assert read_models.wait_for(position, timeout=10) is True
    finally:
        stop.set()
        follower.join(10)
    assert read_models.funnel()["registered"] == 1


def test_a_projection_that_applies_none_of_the_events_moves_past_them_without_rows(services) -> None:
    application, read_models = services
    ctx = Context("mgr-wu", "customer_manager")
    customer = application.register_customer(ctx, kind="retail", acquisition_channel="online", source_detail="web",
                                             segment="mass", manager_id="mgr-wu", branch="B1").aggregate_id
    head = application.record_facts(ctx, customer, group="needs", facts={"deposit": True}).position

    read_models.catch_up()

    team = read_models.store.tracking_row("team")  # staff, schemes and targets only: no customer event
    assert team["position"] == head
    assert team["last_event_at"] is not None
    assert read_models.store.is_empty("team", team["generation"])
    assert read_models.store.position("pipeline") == head


def test_a_waiting_reader_wakes_a_follower_between_its_polls(services) -> None:
    application, read_models = services
    stop = threading.Event()
    follower = threading.Thread(target=read_models.runner.follow, args=(stop,), kwargs={"poll_interval": 60})
    follower.start()
    try:
        position = application.register_customer(
            Context("mgr-wu", "customer_manager"), kind="retail", acquisition_channel="online", source_detail="web",
            segment="mass", manager_id="mgr-wu", branch="B1").position
        assert read_models.wait_for(position, timeout=10) is True  # long before the next poll
    finally:
        stop.set()
        follower.join(10)
    assert not follower.is_alive()
    assert read_models.funnel()["registered"] == 1
