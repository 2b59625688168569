"""The demo workload (interfaces.demo) against real SQLite and real PostgreSQL.

Expected values come from the event log itself (the recorder), not from the
generator's own counters, except where the report is what is checked.
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from application import Settings, bootstrap
from domain import AGGREGATES
from interfaces.demo import DemoAlreadyGenerated, generate_demo

EVENTS = 3_000
#: Not business workload, so not generated: command receipts (the API's idempotency)
#: and users (who may call the API); both are made by API clients and operators.
NOT_GENERATED = {"CommandReceipt", "User"}


def log_of(app: Any) -> list[tuple[str, str]]:
    """``(topic, originator id)`` of every event in the log, in log order."""
    rows: list[tuple[str, str]] = []
    start = 1
    while True:
        notifications = app.recorder.select_notifications(start, 1_000)
        if not notifications:
            return rows
        rows.extend((n.topic, str(n.originator_id)) for n in notifications)
        start = notifications[-1].id + 1


def aggregate_of(topic: str) -> str:
    """``"tuohu:Customer.Registered"`` -> ``"Customer"``."""
    return topic.removeprefix("tuohu:").split(".", 1)[0]


def test_the_log_holds_exactly_the_events_the_report_counts(services) -> None:
    application, _ = services

    report = generate_demo(application, events=EVENTS, seed=11)

    assert application.recorder.max_notification_id() == report.events
    assert len(log_of(application)) == report.events
    assert report.events >= EVENTS
    assert sum(report.events_by_type.values()) == report.events


def test_every_business_aggregate_type_appears_in_the_log(services) -> None:
    application, _ = services

    generate_demo(application, events=EVENTS, seed=12)

    seen = {aggregate_of(topic) for topic, _ in log_of(application)}
    assert seen == {cls.__name__ for cls in AGGREGATES} - NOT_GENERATED


def test_the_read_models_catch_up_and_a_rebuild_gives_the_same_rows(services) -> None:
    application, read_models = services
    report = generate_demo(application, events=EVENTS, seed=13)

    positions = read_models.catch_up()

    assert set(positions.values()) == {report.events}
    assert read_models.runner.verify() == []
    assert read_models.funnel()["registered"] == report.aggregates["Customer"]


def test_generating_the_same_seed_again_is_refused_before_anything_is_written(services) -> None:
    application, _ = services
    generate_demo(application, events=500, seed=14)
    position = application.recorder.max_notification_id()

    with pytest.raises(DemoAlreadyGenerated, match="another seed"):
        generate_demo(application, events=500, seed=14)

    assert application.recorder.max_notification_id() == position


def test_another_seed_adds_customers_to_the_same_bank_reusing_its_team_and_targets(services) -> None:
    application, read_models = services
    first = generate_demo(application, events=EVENTS, seed=15)

    second = generate_demo(application, events=EVENTS, seed=16)

    assert application.recorder.max_notification_id() == first.events + second.events
    assert "Target" not in second.aggregates and "AppraisalScheme" not in second.aggregates
    assert second.reused["Staff"] >= first.aggregates["Staff"] - 1  # the successor may join in either run
    assert second.aggregates["Customer"] > 0
    read_models.catch_up()
    assert read_models.funnel()["registered"] == first.aggregates["Customer"] + second.aggregates["Customer"]


def _generate_in_fresh_sqlite(data_dir: Path, seed: int) -> list[tuple[str, str]]:
    application = bootstrap(Settings(data_dir=data_dir, database_url=None))
    try:
        generate_demo(application, events=EVENTS, seed=seed, start=date(2025, 3, 1), months=6)
        return log_of(application)
    finally:
        application.close()


def test_the_same_seed_gives_the_same_log(tmp_path: Path) -> None:
    first = _generate_in_fresh_sqlite(tmp_path / "first", seed=21)
    second = _generate_in_fresh_sqlite(tmp_path / "second", seed=21)

    assert len(first) >= EVENTS
    assert second == first


def test_another_seed_gives_another_log(tmp_path: Path) -> None:
    first = _generate_in_fresh_sqlite(tmp_path / "first", seed=21)
    other = _generate_in_fresh_sqlite(tmp_path / "other", seed=22)

    customers = {originator for topic, originator in first if topic == "tuohu:Customer.Registered"}
    others = {originator for topic, originator in other if topic == "tuohu:Customer.Registered"}
    assert customers and others and not customers & others


def test_the_report_rollups_hold_what_their_rows_add_up_to(services) -> None:
    application, read_models = services
    generate_demo(application, events=EVENTS, seed=17)
    read_models.catch_up()

    with read_models.reading() as (conn, t):
        counted: dict[tuple[str, str, str], list[int]] = {}
        for row in conn.execute(select(t.records)).mappings():
            bucket = counted.setdefault((row["aggregate_type"], row["status"], row["level"] or ""), [0, 0])
            bucket[0] += 1
            bucket[1] += row["warnings"]
        rollup = {(r["aggregate_type"], r["status"], r["level"]): [r["records"], r["warnings"]]
                  for r in conn.execute(select(t.record_counts)).mappings() if r["records"] or r["warnings"]}
    assert rollup == counted
    assert {key[0] for key in counted} == {"visit", "proposal", "contract", "risk_case"}

    with read_models.reading("evaluation") as (conn, t):
        active: dict[tuple[str, str, str], set[str]] = {}
        for row in conn.execute(select(t.activity)).mappings():
            year, month = row["month"][:4], int(row["month"][5:7])
            periods = (row["month"], f"{year}-Q{(month - 1) // 3 + 1}", f"{year}-H{1 if month <= 6 else 2}", year)
            units = [("bank", "bank"), ("branch", row["branch"]), ("person", row["manager_id"]), ("team", row["team"])]
            for period in periods:
                for unit_type, unit_id in units:
                    if unit_id:
                        active.setdefault((period, unit_type, unit_id), set()).add(row["customer_id"])
        rollup_active = {(r["period"], r["unit_type"], r["unit_id"]): r["customers"]
                         for r in conn.execute(select(t.active_counts)).mappings() if r["customers"]}
    assert rollup_active == {key: len(customers) for key, customers in active.items()}
    assert any(key[1] == "team" for key in rollup_active)


def test_list_reports_page_through_every_row_once_in_order(services) -> None:
    from interfaces import reports

    application, read_models = services
    generate_demo(application, events=EVENTS, seed=18)
    read_models.catch_up()

    def walk(build, items: str = "items") -> tuple[list[dict], set[int]]:
        rows, totals, cursor = [], set(), None
        while True:
            page = build(cursor)
            assert len(page[items]) <= page["limit"]
            rows.extend(page[items])
            totals.add(page["total"])
            cursor = page["next"]
            if cursor is None:
                return rows, totals

    with read_models.reading() as (conn, t):
        customers = [dict(r) for r in conn.execute(select(t.customers)).mappings()]
        records = [dict(r) for r in conn.execute(select(t.records)).mappings()]

    def when(value):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    newest_first = sorted(customers, key=lambda r: r["customer_id"])
    newest_first.sort(key=lambda r: when(r["registered_at"]), reverse=True)
    rows, totals = walk(lambda cursor: reports.customers(read_models, limit=7, cursor=cursor))
    assert [r["customer_id"] for r in rows] == [r["customer_id"] for r in newest_first]
    assert totals == {len(customers)}

    retail = [r["customer_id"] for r in newest_first if r["kind"] == "retail"]
    rows, totals = walk(lambda cursor: reports.customers(read_models, limit=11, cursor=cursor, kind="retail"))
    assert [r["customer_id"] for r in rows] == retail and totals == {len(retail)}

    severity = {"high": 0, "medium": 1, "low": 2, None: 3}
    open_cases = sorted((r for r in records if r["aggregate_type"] == "risk_case" and r["status"] != "closed"),
                        key=lambda r: (severity[r["level"]], when(r["created_at"]), r["aggregate_id"]))
    rows, totals = walk(lambda cursor: reports.risk_register(read_models, limit=3, cursor=cursor), "cases")
    assert [r["aggregate_id"] for r in rows] == [r["aggregate_id"] for r in open_cases]
    assert totals == {len(open_cases)}

    proposals = sorted((r for r in records if r["aggregate_type"] == "proposal"),
                       key=lambda r: (when(r["stage_entered_at"]), r["aggregate_id"]))
    rows, totals = walk(lambda cursor: reports.work_pipeline(read_models, "proposal", limit=9, cursor=cursor))
    assert [r["aggregate_id"] for r in rows] == [r["aggregate_id"] for r in proposals]
    assert totals == {len(proposals)}

    scheduled = sorted(when(r["scheduled_at"]) for r in records if r["aggregate_type"] == "visit")
    start, end = scheduled[len(scheduled) // 4], scheduled[3 * len(scheduled) // 4]
    visits = sorted((r for r in records if r["aggregate_type"] == "visit" and r["status"] != "cancelled"
                     and start <= when(r["scheduled_at"]) < end),
                    key=lambda r: (when(r["scheduled_at"]), r["aggregate_id"]))
    rows, totals = walk(lambda cursor: reports.visit_calendar(read_models, start, end, limit=5, cursor=cursor))
    assert [r["aggregate_id"] for r in rows] == [r["aggregate_id"] for r in visits] and visits
    assert totals == {len(visits)}

    now = datetime.now(timezone.utc)
    overdue = sorted((r for r in records if r["aggregate_type"] == "visit" and r["kind"] == "follow_up"
                      and r["status"] in ("planned", "prepared") and when(r["scheduled_at"]) < now),
                     key=lambda r: (when(r["scheduled_at"]), r["aggregate_id"]))
    rows, totals = walk(lambda cursor: reports.overdue_follow_ups(read_models, limit=4, cursor=cursor))
    assert [r["aggregate_id"] for r in rows] == [r["aggregate_id"] for r in overdue]
    assert totals == {len(overdue)}


def test_a_cursor_that_is_not_one_is_refused_naming_the_field(services) -> None:
    from interfaces import reports

    _, read_models = services
    for cursor in ("not-a-cursor", reports.encode_cursor(["x"]), reports.encode_cursor(["2024-01-01", "id"])):
        with pytest.raises(reports.ReportError) as refused:
            reports.customers(read_models, cursor=cursor)
        assert refused.value.field == "cursor"


def test_every_staff_code_of_the_demo_can_be_a_user_and_a_manager_sees_their_customers(services) -> None:
    """The demo's staff codes are the managers' ids on its customers: each must be a valid user
    name, so that a customer manager can log in and read their own customers."""
    from sqlalchemy import func

    from domain.base import Context

    app, read_models = services
    generate_demo(app, events=EVENTS, seed=7)
    read_models.catch_up()
    with read_models.reading() as (conn, t):
        managers = conn.execute(select(t.customers.c.manager_id, t.customers.c.branch, func.count())
                                .group_by(t.customers.c.manager_id, t.customers.c.branch)).all()
        codes = [s for (s,) in conn.execute(select(read_models.store.tables("team").staff.c.staff_code))]
    assert codes and managers
    operator = Context("ops-admin", "operator", channel="cli")
    for code in codes:
        assert app.add_user(operator, name=code, role="compliance_auditor").token
    assert {manager for manager, _branch, _customers in managers} <= set(codes)
