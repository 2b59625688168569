"""Stable event topics: ``"tuohu:<Aggregate>.<Event>"``, independent of Python module paths.

Stored history must survive moving a module, so every event class of every
aggregate carries its own topic string and that string, not the module path,
is what the event store records.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from eventsourcing.utils import get_topic, resolve_topic

from application.app import TuohuApplication
from domain import AGGREGATES
from domain.base import Context, TuohuAggregate


def event_classes(aggregate_cls):
    """The event classes an aggregate class defines or inherits as nested classes."""
    return [obj for name, obj in vars(aggregate_cls).items()
            if isinstance(obj, type) and issubclass(obj, TuohuAggregate.Event)]


ALL_EVENT_CLASSES = [(agg, cls) for agg in AGGREGATES for cls in event_classes(agg)]


def _id(param):
    return param.__qualname__ if isinstance(param, type) else None


def test_every_aggregate_defines_events():
    for aggregate_cls in AGGREGATES:
        assert len(event_classes(aggregate_cls)) >= 2, aggregate_cls


@pytest.mark.parametrize("aggregate_cls", AGGREGATES, ids=_id)
def test_every_aggregate_has_a_tuohu_topic_named_after_it(aggregate_cls):
    assert aggregate_cls.TOPIC == f"tuohu:{aggregate_cls.__name__}"


@pytest.mark.parametrize(("aggregate_cls", "event_cls"), ALL_EVENT_CLASSES, ids=_id)
def test_every_event_class_has_a_tuohu_topic_named_after_its_aggregate_and_itself(aggregate_cls, event_cls):
    assert event_cls.TOPIC.startswith("tuohu:")
    assert event_cls.TOPIC == f"tuohu:{aggregate_cls.__name__}.{event_cls.__name__}"


def test_no_two_event_classes_share_a_topic():
    topics = [cls.TOPIC for _, cls in ALL_EVENT_CLASSES] + [agg.TOPIC for agg in AGGREGATES]
    assert len(topics) == len(set(topics))


@pytest.mark.parametrize(("aggregate_cls", "event_cls"), ALL_EVENT_CLASSES, ids=_id)
def test_every_event_topic_resolves_to_its_class_and_is_the_one_the_store_uses(aggregate_cls, event_cls):
    assert resolve_topic(event_cls.TOPIC) is event_cls
    assert get_topic(event_cls) == event_cls.TOPIC


# ------------------------------------------------------------------ what the store records


@pytest.fixture
def app():
    application = TuohuApplication(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"})
    yield application
    application.close()


def _as(actor_id: str, **kwargs) -> Context:
    return Context(actor_id=actor_id, actor_role="staff", **kwargs)


def _one_of_everything(app: TuohuApplication) -> None:
    """Use cases that write events of every aggregate kind, a command receipt and a user included."""
    customer_id = app.register_customer(_as("mgr-li", command_id="topics-1"), kind="retail",
                                        acquisition_channel="branch", source_detail="counter", segment="s",
                                        manager_id="mgr-li", branch="HQ").aggregate_id
    app.record_facts(_as("mgr-li"), customer_id, group="basic", facts={"age": 30})
    visit_id = app.plan_visit(_as("mgr-li"), customer_id=customer_id, purpose="p", staff=["mgr-li"], method="phone",
                              kind="acquisition", scheduled_at=datetime(2024, 3, 5, tzinfo=timezone.utc)).aggregate_id
    app.conduct_visit(_as("mgr-li"), visit_id, outcome="ok")
    proposal_id = app.draft_proposal(_as("mgr-li"), customer_id=customer_id, products=["card"], pricing_terms={},
                                     rights_and_obligations="standard").aggregate_id
    app.submit_proposal(_as("mgr-li"), proposal_id)
    app.approve_proposal(_as("head-zhao"), proposal_id)
    app.present_proposal(_as("mgr-li"), proposal_id)
    app.accept_proposal(_as("mgr-li"), proposal_id)
    contract_id = app.draft_contract(_as("mgr-li"), proposal_id=proposal_id).aggregate_id
    app.review_contract_clauses(_as("legal-chen"), contract_id, findings=[])
    case_id = app.identify_risk(_as("risk-sun"), subject_type="contract", subject_id=contract_id, category="market",
                                description="d").aggregate_id
    app.assess_risk(_as("risk-sun"), case_id, indicator_scores={"x": 60})
    app.decide_risk_response(_as("risk-sun"), case_id, response="reduce", measures=["m"], reason="r")
    app.record_risk_reading(_as("risk-sun"), case_id, indicator="x", value=Decimal("2"), threshold=Decimal("1"),
                            direction="above")
    app.join_team(_as("head-zhao"), staff_code="mgr-li", display_name="Li", role="customer_manager", branch="HQ")
    app.define_appraisal_scheme(_as("head-zhao"), year="2024", indicators=[
        {"indicator": "new_customers", "group": "acquisition_results", "weight": Decimal(100)}])
    app.set_target(_as("head-zhao"), year="2024", unit_type="branch", unit_id="HQ", indicator="new_customers",
                   annual=Decimal(120))
    app.add_user(_as("cli:root"), name="mgr-li", role="customer_manager", branch="HQ")


def test_stored_notification_topics_are_the_tuohu_topic_strings(app):
    _one_of_everything(app)
    known = {cls.TOPIC for _, cls in ALL_EVENT_CLASSES}
    notifications = list(app.recorder.select_notifications(start=1, limit=1000))
    stored = {n.topic for n in notifications}
    assert stored <= known
    assert all(n.topic.startswith("tuohu:") and "domain." not in n.topic for n in notifications)
    # Every aggregate kind appears in the log.
    assert {t.split(".")[0] for t in stored} == {agg.TOPIC for agg in AGGREGATES}


def test_each_stored_topic_is_the_topic_of_the_event_it_holds(app):
    _one_of_everything(app)
    for notification in app.recorder.select_notifications(start=1, limit=1000):
        event = app.mapper.to_domain_event(notification)
        assert notification.topic == type(event).TOPIC


def test_a_created_event_records_the_aggregate_by_its_tuohu_topic(app):
    customer_id = app.register_customer(_as("mgr-li"), kind="retail", acquisition_channel="branch",
                                        source_detail="counter", segment="s", manager_id="mgr-li",
                                        branch="HQ").aggregate_id
    [notification] = app.notification_log.select(start=1, limit=10)
    assert notification.originator_id == customer_id
    assert b'"originator_topic":"tuohu:Customer"' in notification.state
    assert b"domain.customer" not in notification.state


def test_an_event_class_cannot_be_triggered_without_a_registered_tuohu_topic():
    # A new event class defined outside an aggregate body is not registered,
    # so the library refuses to record it rather than store a module path.
    from eventsourcing.domain import ProgrammingError

    from domain.customer import Customer

    class Stray(Customer.Event):
        pass

    customer = Customer.register(Context(actor_id="mgr-li", actor_role="staff"), kind="retail",
                                 acquisition_channel="branch", source_detail="c", segment="s", manager_id="mgr-li",
                                 branch="HQ", customer_id=uuid.uuid4())
    with pytest.raises(ProgrammingError):
        customer.trigger_event(Stray)
