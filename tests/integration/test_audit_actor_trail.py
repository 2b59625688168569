"""The actor trail read model on SQLite and PostgreSQL: every event by one actor, every decision in a period."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from domain.base import Context
from projections.actors import period_range, trail

MANAGER = "mgr-li"
REVIEWER = "rev-wang"


def at(actor_id: str, role: str, when: datetime) -> Context:
    return Context(actor_id=actor_id, actor_role=role, occurred_at=when)


def reviewed_customer(app: Any, when: datetime, decision: str) -> Any:
    customer_id = app.register_customer(at(MANAGER, "customer_manager", when), kind="retail",
                                        acquisition_channel="branch", source_detail="form", segment="mass",
                                        manager_id=MANAGER, branch="sz").aggregate_id
    app.record_facts(at(MANAGER, "customer_manager", when), customer_id, group="basic", facts={"age": 40})
    app.screen_customer(at("screening-model", "system", when), customer_id)
    app.review_customer(at(REVIEWER, "reviewer", when), customer_id, decision=decision,
                        reason=f"{decision} on {when:%Y-%m-%d}")
    return customer_id


def test_every_decision_of_a_reviewer_in_a_quarter(services: tuple) -> None:
    application, read_models = services
    june, july, september, october = (datetime(2009, m, d, tzinfo=timezone.utc) for m, d in
                                      ((6, 30), (7, 1), (9, 30), (10, 1)))
    reviewed_customer(application, june, "qualified")
    in_quarter = [reviewed_customer(application, july, "qualified"),
                  reviewed_customer(application, september, "rejected")]
    reviewed_customer(application, october, "qualified")
    read_models.catch_up()
    start, end = period_range("2009-Q3")

    with read_models.reading("actors") as (conn, tables):
        found = trail(conn, tables, REVIEWER, start=start, end=end, decisions_only=True)

    assert found["total"] == 2
    assert [(r["aggregate_id"], r["decision"], r["reason"]) for r in found["rows"]] == [
        (str(in_quarter[0]), "qualified", "qualified on 2009-07-01"),
        (str(in_quarter[1]), "rejected", "rejected on 2009-09-30")]
    assert {r["event_type"] for r in found["rows"]} == {"Reviewed"}


def test_every_event_of_an_actor_with_its_position_and_times(services: tuple) -> None:
    application, read_models = services
    when = datetime(2009, 8, 3, tzinfo=timezone.utc)
    customer_id = reviewed_customer(application, when, "qualified")
    read_models.catch_up()

    with read_models.reading("actors") as (conn, tables):
        events = trail(conn, tables, MANAGER)["rows"]
        screenings = trail(conn, tables, "screening-model", decisions_only=True)["rows"]

    assert [(r["event_type"], r["position"]) for r in events] == [("Registered", 1), ("FactsRecorded", 2)]
    assert all(r["customer_id"] == str(customer_id) and r["occurred_at"] == when for r in events)
    assert all(r["recorded_at"] > when and not r["is_decision"] for r in events)
    # scorecard 1.0: base 50, age 26-60 +10, nothing else known
    assert [r["decision"] for r in screenings] == ["refer (score 60, retail-scorecard 1.0)"]


def test_a_visits_events_are_traced_to_its_customer(services: tuple) -> None:
    application, read_models = services
    when = datetime(2009, 8, 3, tzinfo=timezone.utc)
    customer_id = reviewed_customer(application, when, "qualified")
    visit_id = application.plan_visit(at(MANAGER, "customer_manager", when), customer_id=customer_id, purpose="intro",
                                      scheduled_at=when, staff=[MANAGER], method="phone",
                                      kind="acquisition").aggregate_id
    application.conduct_visit(at(MANAGER, "customer_manager", when), visit_id, outcome="interested")
    read_models.catch_up()

    with read_models.reading("actors") as (conn, tables):
        rows = [r for r in trail(conn, tables, MANAGER)["rows"] if r["aggregate_id"] == str(visit_id)]

    assert [(r["event_type"], r["customer_id"]) for r in rows] == [("Planned", str(customer_id)),
                                                                  ("Conducted", str(customer_id))]


def test_a_period_is_its_first_day_up_to_the_next_periods() -> None:
    assert period_range("2009-Q3") == (datetime(2009, 7, 1, tzinfo=timezone.utc),
                                       datetime(2009, 10, 1, tzinfo=timezone.utc))
    assert period_range("2009-12") == (datetime(2009, 12, 1, tzinfo=timezone.utc),
                                       datetime(2010, 1, 1, tzinfo=timezone.utc))
    assert period_range("2010-H2")[1] == datetime(2011, 1, 1, tzinfo=timezone.utc)
