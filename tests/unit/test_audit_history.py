"""Audit history, state as of a moment, and explained screenings, over an in-memory event store.

Every expected value comes from the commands the test issued (their actors,
reasons and facts) or from the scorecard's documented points, never from the
audit functions' own output.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from application import audit
from application.app import TuohuApplication
from domain.base import Context
from domain.customer import Customer

MANAGER = "mgr-li"
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)


def as_(actor_id: str = MANAGER, role: str = "customer_manager", **kwargs) -> Context:
    return Context(actor_id=actor_id, actor_role=role, **kwargs)


@pytest.fixture
def app():
    application = TuohuApplication(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"})
    yield application
    application.close()


def register(app: TuohuApplication, **changes) -> object:
    fields = dict(kind="retail", acquisition_channel="branch", source_detail="counter form 17", segment="mass",
                  manager_id=MANAGER, branch="shenzhen-futian", display_name="Lin Mei")
    fields.update(changes)
    return app.register_customer(as_(occurred_at=T0, correlation_id="corr-reg"), **fields).aggregate_id


def test_history_lists_every_event_with_its_evidence_and_position(app: TuohuApplication) -> None:
    customer_id = register(app)
    app.record_facts(as_(channel="cli"), customer_id, group="basic", facts={"age": 41})
    app.record_credit_standing(as_("risk-sun", "risk_officer"), customer_id, source="credit_bureau",
                               result="no_default", reason="bureau report 2024-03")

    found = audit.history(app, customer_id, "customer")

    assert [e["event"] for e in found["events"]] == ["Registered", "FactsRecorded", "CreditStandingRecorded"]
    assert [e["version"] for e in found["events"]] == [1, 2, 3]
    assert [e["position"] for e in found["events"]] == [1, 2, 3]  # the only aggregate in the log
    first, _, last = found["events"]
    assert (first["actor_id"], first["actor_role"], first["correlation_id"]) == (MANAGER, "customer_manager",
                                                                                 "corr-reg")
    assert first["occurred_at"] == T0.isoformat()
    assert datetime.fromisoformat(first["recorded_at"]) > T0
    assert found["events"][1]["channel"] == "cli"
    assert (last["actor_id"], last["actor_role"], last["reason"]) == ("risk-sun", "risk_officer",
                                                                      "bureau report 2024-03")


def test_history_shows_each_field_before_and_after(app: TuohuApplication) -> None:
    customer_id = register(app)
    app.record_facts(as_(), customer_id, group="basic", facts={"age": 41, "job": "engineer"})
    app.record_facts(as_(), customer_id, group="basic", facts={"age": 42})

    events = audit.history(app, customer_id)["events"]

    assert events[1]["changes"] == [{"field": "facts.basic.age", "before": None, "after": 41},
                                    {"field": "facts.basic.job", "before": None, "after": "engineer"}]
    assert events[2]["changes"] == [{"field": "facts.basic.age", "before": 41, "after": 42}]
    registered = {c["field"]: c for c in events[0]["changes"]}
    assert registered["display_name"] == {"field": "display_name", "before": None, "after": "Lin Mei"}


def test_history_of_one_field_answers_who_changed_the_credit_standing_when_and_why(app: TuohuApplication) -> None:
    customer_id = register(app)
    app.record_facts(as_(), customer_id, group="basic", facts={"age": 41})
    app.record_credit_standing(as_("risk-sun", "risk_officer"), customer_id, source="credit_bureau",
                               result="no_default")
    app.record_credit_standing(as_("risk-zhou", "risk_officer"), customer_id, source="rating_agency",
                               result="in_default", rating="C", reason="two defaults reported in April")

    events = audit.history(app, customer_id, field="credit_standing")["events"]

    assert [(e["version"], e["actor_id"], e["reason"]) for e in events] == [
        (3, "risk-sun", None), (4, "risk-zhou", "two defaults reported in April")]
    assert {"field": "credit_standing.result", "before": "no_default", "after": "in_default"} in events[1]["changes"]
    assert {"field": "credit_standing.rating", "before": None, "after": "C"} in events[1]["changes"]


def test_history_of_an_id_of_another_type_is_not_found(app: TuohuApplication) -> None:
    customer_id = register(app)

    with pytest.raises(audit.AuditNotFound):
        audit.history(app, customer_id, "visit")


def test_state_as_of_a_version_is_the_aggregate_then(app: TuohuApplication) -> None:
    customer_id = register(app)
    app.record_facts(as_(), customer_id, group="basic", facts={"age": 41})
    app.record_facts(as_(), customer_id, group="basic", facts={"age": 42})

    then = audit.state_as_of(app, customer_id, "customer", version=2)

    assert then["version"] == 2
    assert then["state"]["facts"]["basic"] == {"age": 41}
    assert app.load(Customer, customer_id).facts["basic"] == {"age": 42}


def test_state_as_of_a_recorded_time_leaves_out_what_was_recorded_later(app: TuohuApplication) -> None:
    customer_id = register(app)
    app.record_facts(as_(), customer_id, group="basic", facts={"age": 41})
    between = datetime.now(timezone.utc)
    app.record_facts(as_(), customer_id, group="basic", facts={"age": 42})

    then = audit.state_as_of(app, customer_id, as_of=between)

    assert then["version"] == 2
    assert then["state"]["facts"]["basic"] == {"age": 41}
    with pytest.raises(audit.AuditNotFound):
        audit.state_as_of(app, customer_id, as_of=T0 - timedelta(days=1))


def test_state_at_the_screening_is_what_the_system_knew_when_it_decided(app: TuohuApplication) -> None:
    customer_id = register(app)
    app.record_facts(as_(), customer_id, group="basic", facts={"age": 41, "job": "engineer"})
    app.screen_customer(as_("screening-model", "system"), customer_id)
    app.record_facts(as_(), customer_id, group="basic", facts={"age": 42})

    then = audit.state_as_of(app, customer_id, at_event="Screened")

    assert then["last_event"]["event"] == "Screened"
    assert then["state"]["facts"]["basic"] == {"age": 41, "job": "engineer"}
    # scorecard 1.0: base 50, credit unknown 0, age 26-60 +10, balance unknown 0, occupation +5
    assert then["state"]["screening"]["score"] == 65


def test_explain_rescores_the_recorded_inputs_with_the_recorded_model(app: TuohuApplication) -> None:
    customer_id = register(app)
    app.record_facts(as_(), customer_id, group="basic", facts={"age": 19, "job": "student"})
    app.screen_customer(as_("screening-model", "system"), customer_id)

    explained = audit.explain(app, customer_id)

    [screening] = explained["screenings"]
    # base 50, age under 21 -10, student -5; the rest unknown: 0
    assert screening["recomputed"]["score"] == 35
    assert screening["recomputed"]["outcome"] == "decline"
    assert screening["recorded"] == screening["recomputed"]
    assert explained["all_match"] is True


def test_explain_says_so_when_a_recorded_score_does_not_follow_from_its_inputs(app: TuohuApplication) -> None:
    customer_id = register(app)
    customer = app.load(Customer, customer_id)
    customer.record_screening(as_("screening-model", "system"), model_name="retail-scorecard", model_version="1.0",
                              inputs={"age": 35}, score=99, contributions={"base": 50, "age": 49}, outcome="pass")
    app.save(customer)

    explained = audit.explain(app, customer_id)

    assert explained["all_match"] is False
    assert explained["screenings"][0]["recomputed"] == {
        "score": 60, "outcome": "refer",
        "contributions": {"base": 50, "credit_standing": 0, "age": 10, "balance": 0, "housing_loan": 0,
                          "personal_loan": 0, "employment": 0}}
