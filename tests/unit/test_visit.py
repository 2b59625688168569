"""Visit: plan, prepare, conduct, feed back; reschedule or cancel (measures §2.3)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from domain.base import IllegalTransition, InvalidValue, ReasonRequired
from domain.visit import PreparationRequired, Visit

MANAGER = "mgr-li"
BEIJING = timezone(timedelta(hours=8))


def plan_fields(**overrides):
    fields = dict(customer_id=uuid.uuid4(), purpose="introduce payroll services",
                  scheduled_at=datetime(2024, 3, 5, 10, 0, tzinfo=BEIJING), staff=[MANAGER],
                  method="video", kind="acquisition")
    fields.update(overrides)
    return fields


# ------------------------------------------------------------------ plan (§2.3 step 1)


def test_planning_a_visit_records_purpose_time_staff_and_method(ctx):
    customer_id = uuid.uuid4()
    visit = Visit.plan(ctx(), **plan_fields(customer_id=customer_id, staff=[" mgr-li ", "pm-guo"]))
    [event] = visit.collect_events()
    assert isinstance(event, Visit.Planned)
    assert (event.customer_id, event.purpose, event.method, event.kind) == (
        customer_id, "introduce payroll services", "video", "acquisition")
    assert event.staff == ["mgr-li", "pm-guo"]
    assert visit.status == "planned"


def test_a_planned_time_is_stored_in_utc(ctx):
    visit = Visit.plan(ctx(), **plan_fields(scheduled_at=datetime(2024, 3, 5, 10, 0, tzinfo=BEIJING)))
    # 10:00 at UTC+8 is 02:00 UTC.
    assert visit.scheduled_at == datetime(2024, 3, 5, 2, 0, tzinfo=timezone.utc)
    assert visit.scheduled_at.tzinfo is timezone.utc


def test_a_visit_keeps_a_given_id(ctx):
    wanted = uuid.uuid4()
    assert Visit.plan(ctx(), **plan_fields(visit_id=wanted)).id == wanted


@pytest.mark.parametrize(
    ("field", "value"),
    [("scheduled_at", datetime(2024, 3, 5, 10, 0)), ("staff", []), ("staff", ["mgr-li", " "]),
     ("method", "carrier pigeon"), ("kind", "social"), ("purpose", "  ")],
)
def test_planning_refuses_a_bad_field_and_names_it(ctx, field, value):
    with pytest.raises(InvalidValue) as refused:
        Visit.plan(ctx(), **plan_fields(**{field: value}))
    assert refused.value.field == field


# ------------------------------------------------------------------ prepare (§2.3 step 2)


def test_preparing_a_planned_visit_records_background_materials_and_talking_points(given, ctx):
    visit = given.planned_visit()
    visit.prepare(ctx(), background="exporter, 120 staff", materials=["fx brochure"], talking_points=["fx hedging"])
    [event] = visit.collect_events()
    assert isinstance(event, Visit.Prepared)
    assert visit.status == "prepared"
    assert visit.preparation == {"background": "exporter, 120 staff", "materials": ["fx brochure"],
                                 "talking_points": ["fx hedging"]}


def test_a_prepared_visit_may_be_prepared_again(given, ctx):
    visit = given.prepared_visit()
    visit.prepare(ctx(), background="updated: now 150 staff", materials=[], talking_points=[])
    assert [type(e) for e in visit.collect_events()] == [Visit.Prepared]
    assert visit.preparation["background"] == "updated: now 150 staff"


def test_preparation_needs_a_background(given, ctx):
    visit = given.planned_visit()
    with pytest.raises(InvalidValue) as refused:
        visit.prepare(ctx(), background="", materials=[], talking_points=[])
    assert refused.value.field == "background"


def test_a_conducted_visit_cannot_be_prepared(given, ctx):
    visit = given.conducted_visit()
    with pytest.raises(IllegalTransition):
        visit.prepare(ctx(), background="too late", materials=[], talking_points=[])


# ------------------------------------------------------------------ conduct (§2.3 step 3)


def test_conducting_a_planned_visit_records_outcome_and_needs(given, ctx):
    visit = given.planned_visit()
    visit.conduct(ctx(), outcome="wants a proposal", needs_learned="payroll", next_steps="draft proposal",
                  duration_seconds=2700)
    [event] = visit.collect_events()
    assert isinstance(event, Visit.Conducted)
    assert (event.outcome, event.needs_learned, event.next_steps, event.duration_seconds) == (
        "wants a proposal", "payroll", "draft proposal", 2700)
    assert visit.status == "conducted"


def test_a_visit_of_unknown_length_may_be_conducted(given, ctx):
    visit = given.planned_visit()
    visit.conduct(ctx(), outcome="brief call")
    [event] = visit.collect_events()
    assert event.duration_seconds is None


def test_a_prepared_visit_may_be_conducted(given, ctx):
    visit = given.prepared_visit()
    visit.conduct(ctx(), outcome="signed letter of intent", duration_seconds=0)
    assert visit.status == "conducted"


def test_a_key_customers_visit_cannot_be_conducted_unprepared(given, ctx):
    visit = given.planned_visit()
    with pytest.raises(PreparationRequired):
        visit.conduct(ctx(), outcome="improvised", customer_is_key=True)
    assert visit.collect_events() == []
    assert visit.status == "planned"


def test_a_key_customers_prepared_visit_may_be_conducted(given, ctx):
    visit = given.prepared_visit()
    visit.conduct(ctx(), outcome="went to plan", customer_is_key=True)
    assert [type(e) for e in visit.collect_events()] == [Visit.Conducted]


def test_a_visit_cannot_last_a_negative_time(given, ctx):
    visit = given.planned_visit()
    with pytest.raises(InvalidValue) as refused:
        visit.conduct(ctx(), outcome="odd", duration_seconds=-1)
    assert refused.value.field == "duration_seconds"


def test_conducting_needs_an_outcome(given, ctx):
    visit = given.planned_visit()
    with pytest.raises(InvalidValue) as refused:
        visit.conduct(ctx(), outcome=" ")
    assert refused.value.field == "outcome"


def test_a_visit_cannot_be_conducted_twice(given, ctx):
    visit = given.conducted_visit()
    with pytest.raises(IllegalTransition) as refused:
        visit.conduct(ctx(), outcome="again")
    assert refused.value.state == "conducted"


def test_a_cancelled_visit_cannot_be_conducted(given, ctx):
    visit = given.cancelled_visit()
    with pytest.raises(IllegalTransition):
        visit.conduct(ctx(), outcome="went anyway")


# ------------------------------------------------------------------ feedback (§2.3 step 4)


def test_feedback_of_a_conducted_visit_is_routed_to_departments(given, ctx):
    visit = given.conducted_visit()
    visit.route_feedback(ctx(), departments=["product", "operations"], feedback="wants payroll API")
    visit.route_feedback(ctx(), departments=["risk"], feedback="mentioned a lawsuit")
    assert [type(e) for e in visit.collect_events()] == [Visit.FeedbackRouted, Visit.FeedbackRouted]
    assert visit.feedback_routed_to == ["product", "operations", "risk"]


def test_feedback_cannot_be_routed_before_the_visit(given, ctx):
    visit = given.planned_visit()
    with pytest.raises(IllegalTransition):
        visit.route_feedback(ctx(), departments=["product"], feedback="premature")


def test_feedback_needs_a_department(given, ctx):
    visit = given.conducted_visit()
    with pytest.raises(InvalidValue) as refused:
        visit.route_feedback(ctx(), departments=[], feedback="to nobody")
    assert refused.value.field == "departments"


def test_feedback_needs_its_text(given, ctx):
    visit = given.conducted_visit()
    with pytest.raises(InvalidValue) as refused:
        visit.route_feedback(ctx(), departments=["product"], feedback="")
    assert refused.value.field == "feedback"


# ------------------------------------------------------------------ reschedule and cancel


def test_rescheduling_moves_the_visit_and_keeps_it_open(given, ctx):
    visit = given.planned_visit()
    visit.reschedule(ctx(), scheduled_at=datetime(2024, 3, 7, 15, 0, tzinfo=BEIJING), reason="customer travelling")
    [event] = visit.collect_events()
    assert isinstance(event, Visit.Rescheduled)
    assert event.reason == "customer travelling"
    assert visit.scheduled_at == datetime(2024, 3, 7, 7, 0, tzinfo=timezone.utc)
    assert visit.status == "planned"


def test_rescheduling_a_prepared_visit_keeps_its_preparation(given, ctx):
    visit = given.prepared_visit()
    visit.reschedule(ctx(), scheduled_at=datetime(2024, 3, 8, 1, 0, tzinfo=timezone.utc), reason="room unavailable")
    assert visit.status == "prepared"
    assert visit.preparation is not None


def test_rescheduling_needs_a_reason(given, ctx):
    visit = given.planned_visit()
    with pytest.raises(ReasonRequired):
        visit.reschedule(ctx(), scheduled_at=datetime(2024, 3, 8, 1, 0, tzinfo=timezone.utc), reason=" ")
    assert visit.collect_events() == []


def test_rescheduling_needs_a_timezone(given, ctx):
    visit = given.planned_visit()
    with pytest.raises(InvalidValue) as refused:
        visit.reschedule(ctx(), scheduled_at=datetime(2024, 3, 8, 9, 0), reason="customer travelling")
    assert refused.value.field == "scheduled_at"


def test_a_conducted_visit_cannot_be_rescheduled(given, ctx):
    visit = given.conducted_visit()
    with pytest.raises(IllegalTransition):
        visit.reschedule(ctx(), scheduled_at=datetime(2024, 3, 8, 1, 0, tzinfo=timezone.utc), reason="redo")


def test_cancelling_a_planned_visit_records_the_reason(given, ctx):
    visit = given.planned_visit()
    visit.cancel(ctx(), reason="customer chose another bank")
    [event] = visit.collect_events()
    assert isinstance(event, Visit.Cancelled)
    assert event.reason == "customer chose another bank"
    assert visit.status == "cancelled"


def test_a_prepared_visit_may_be_cancelled(given, ctx):
    visit = given.prepared_visit()
    visit.cancel(ctx(), reason="customer ill")
    assert visit.status == "cancelled"


def test_cancelling_needs_a_reason(given, ctx):
    visit = given.planned_visit()
    with pytest.raises(ReasonRequired):
        visit.cancel(ctx(), reason=None)


def test_a_cancelled_visit_cannot_be_cancelled_again(given, ctx):
    visit = given.cancelled_visit()
    with pytest.raises(IllegalTransition):
        visit.cancel(ctx(), reason="twice")


def test_a_conducted_visit_cannot_be_cancelled(given, ctx):
    visit = given.conducted_visit()
    with pytest.raises(IllegalTransition):
        visit.cancel(ctx(), reason="too late")


def test_a_cancelled_visit_cannot_be_rescheduled(given, ctx):
    visit = given.cancelled_visit()
    with pytest.raises(IllegalTransition):
        visit.reschedule(ctx(), scheduled_at=datetime(2024, 3, 8, 1, 0, tzinfo=timezone.utc), reason="revived")


# ------------------------------------------------------------------ evidence on every event


def test_every_visit_event_carries_the_evidence_of_its_command(evidence_ctx, carries_evidence, now):
    before = now()
    visit = Visit.plan(evidence_ctx, **plan_fields())
    visit.prepare(evidence_ctx, background="b", materials=[], talking_points=[])
    visit.reschedule(evidence_ctx, scheduled_at=datetime(2024, 3, 9, 1, 0, tzinfo=timezone.utc), reason="moved")
    visit.conduct(evidence_ctx, outcome="ok")
    visit.route_feedback(evidence_ctx, departments=["product"], feedback="f")
    other = Visit.plan(evidence_ctx, **plan_fields())
    other.cancel(evidence_ctx, reason="not needed")
    events = visit.collect_events() + other.collect_events()
    after = now()
    assert [type(e) for e in events] == [Visit.Planned, Visit.Prepared, Visit.Rescheduled, Visit.Conducted,
                                         Visit.FeedbackRouted, Visit.Planned, Visit.Cancelled]
    for event in events:
        carries_evidence(event, evidence_ctx, recorded_between=(before, after))
