"""Personal data: encrypted per customer at the mapper, restricted, erased (crypto-shredding).

Over an in-memory event store with an in-memory key store; the stored bytes are
read straight from the recorder to see what the database would hold.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest
from eventsourcing.persistence import StoredEvent

from application import audit, privacy
from application.app import TuohuApplication
from domain.base import Context, ReasonRequired
from domain.customer import Customer, PersonalDataWasErased, ProcessingIsRestricted, RetentionPeriodNotOver

MANAGER = "mgr-li"
NAME = "Zhang Wei-Probe"
PHONE = "13800138000"
LONG_AGO = datetime(2010, 6, 30, tzinfo=timezone.utc)  # 10 years and more before any test runs


def as_(actor_id: str = MANAGER, role: str = "customer_manager", **kwargs) -> Context:
    return Context(actor_id=actor_id, actor_role=role, **kwargs)


AUDITOR = as_("audit-he", "compliance_auditor")


@pytest.fixture
def app():
    application = TuohuApplication(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"})
    yield application
    application.close()


def register(app: TuohuApplication, when: datetime | None = None) -> object:
    ctx = as_(occurred_at=when) if when else as_()
    customer_id = app.register_customer(ctx, kind="retail", acquisition_channel="branch", source_detail="counter",
                                        segment="mass", manager_id=MANAGER, branch="sz", display_name=NAME).aggregate_id
    app.record_facts(ctx, customer_id, group="basic", facts={"name": NAME, "phone": PHONE, "age": 41})
    app.record_facts(ctx, customer_id, group="business", facts={"industry": "textiles"})
    return customer_id


def stored(app: TuohuApplication) -> list[StoredEvent]:
    return list(app.recorder.select_notifications(start=1, limit=1000))


def test_personal_fields_are_stored_encrypted_and_read_in_clear(app: TuohuApplication) -> None:
    customer_id = register(app)

    raw = b"".join(s.state for s in stored(app))
    customer = app.load(Customer, customer_id)

    assert NAME.encode() not in raw and PHONE.encode() not in raw
    assert b"textiles" in raw  # a company's business facts are not personal data
    assert customer.display_name == NAME
    assert customer.facts["basic"] == {"name": NAME, "phone": PHONE, "age": 41}


def test_an_envelope_names_the_customer_whose_key_encrypts_it(app: TuohuApplication) -> None:
    customer_id = register(app)

    registered = json.loads(stored(app)[0].state)

    assert set(registered["display_name"]) == {"_enc", "kid"}
    assert registered["display_name"]["kid"] == str(customer_id)
    assert len(base64.b64decode(registered["display_name"]["_enc"])) == 12 + len(json.dumps(NAME)) + 16


def test_a_visits_free_text_is_encrypted_with_its_customers_key(app: TuohuApplication) -> None:
    customer_id = register(app)
    visit_id = app.plan_visit(as_(), customer_id=customer_id, purpose="intro", scheduled_at=datetime.now(timezone.utc),
                              staff=[MANAGER], method="phone", kind="acquisition").aggregate_id
    app.conduct_visit(as_(), visit_id, outcome="interested", needs_learned=f"call {PHONE} after six")

    conducted = json.loads(stored(app)[-1].state)

    assert conducted["needs_learned"]["kid"] == str(customer_id)
    assert PHONE.encode() not in stored(app)[-1].state
    assert list(app.events.get(visit_id))[-1].needs_learned == f"call {PHONE} after six"


def test_a_ciphertext_moved_to_another_customer_does_not_decrypt(app: TuohuApplication) -> None:
    register(app)
    second = register(app)
    events = stored(app)
    name_of_first = json.loads(events[0].state)["display_name"]
    second_registered = next(e for e in events if e.originator_id == second and e.originator_version == 1)
    forged = json.loads(second_registered.state)
    forged["display_name"] = {**name_of_first, "kid": str(second)}

    with pytest.raises(privacy.PersonalDataUnreadable):
        app.mapper.to_domain_event(StoredEvent(second, 1, second_registered.topic, json.dumps(forged).encode()))


def test_erasure_destroys_the_key_and_the_history_reads_erased(app: TuohuApplication) -> None:
    customer_id = register(app)

    privacy.erase_personal_data(app, AUDITOR, customer_id, reason="data subject request DSR-7", retention_years=10)

    customer = app.load(Customer, customer_id)
    assert customer.display_name == privacy.ERASED
    assert customer.facts["basic"] == privacy.ERASED_DICT
    assert customer.facts["business"] == {"industry": "textiles"}
    assert customer.personal_data_erased
    history = audit.history(app, customer_id)["events"]
    assert history[-1]["event"] == "PersonalDataErased"
    assert history[-1]["reason"] == "data subject request DSR-7"
    assert history[-1]["data"]["before_retention_end"] is True
    assert app.mapper.keys.status(str(customer_id))["destroyed_at"] is not None


def test_erasure_before_the_retention_period_needs_a_compliance_auditor(app: TuohuApplication) -> None:
    customer_id = register(app)

    with pytest.raises(RetentionPeriodNotOver):
        privacy.erase_personal_data(app, as_("ops-liu", "operations"), customer_id, reason="asked", retention_years=10)
    assert app.load(Customer, customer_id).display_name == NAME


def test_erasure_after_the_retention_period_needs_no_auditor(app: TuohuApplication) -> None:
    customer_id = register(app, when=LONG_AGO)

    privacy.erase_personal_data(app, as_("ops-liu", "operations"), customer_id, reason="retention over",
                                retention_years=10)

    [erased] = [e for e in app.events.get(customer_id) if isinstance(e, Customer.PersonalDataErased)]
    assert erased.relationship_ended_at == LONG_AGO
    assert erased.retention_until == LONG_AGO.replace(year=2020)
    assert erased.before_retention_end is False


def test_erasure_needs_a_reason(app: TuohuApplication) -> None:
    customer_id = register(app)

    with pytest.raises(ReasonRequired):
        privacy.erase_personal_data(app, AUDITOR, customer_id, reason=" ", retention_years=10)


def test_a_signed_contract_not_terminated_keeps_the_relationship_going(app: TuohuApplication) -> None:
    customer_id = register(app, when=LONG_AGO)
    old = {"occurred_at": LONG_AGO}
    proposal = app.draft_proposal(as_(**old), customer_id=customer_id, products=["deposit"], pricing_terms={},
                                  rights_and_obligations="standard").aggregate_id
    app.submit_proposal(as_(**old), proposal)
    app.approve_proposal(as_("pm-zhao", "product_manager", **old), proposal)
    app.present_proposal(as_(**old), proposal)
    app.accept_proposal(as_(**old), proposal)
    contract = app.draft_contract(as_(**old), proposal_id=proposal).aggregate_id
    app.review_contract_clauses(as_("legal-chen", "reviewer", **old), contract, findings=[])
    app.approve_contract(as_("head-sun", "branch_head", **old), contract)
    app.sign_contract(as_("head-sun", "branch_head", **old), contract, customer_signatory="Zhang")

    assert privacy.relationship_ended_at(app, customer_id, [proposal, contract]) is None
    with pytest.raises(RetentionPeriodNotOver):
        privacy.erase_personal_data(app, as_("ops-liu", "operations"), customer_id, reason="retention over",
                                    retention_years=10, related_ids=[proposal, contract])


def test_nothing_more_is_recorded_about_an_erased_person(app: TuohuApplication) -> None:
    customer_id = register(app)
    privacy.erase_personal_data(app, AUDITOR, customer_id, reason="DSR-7", retention_years=10)

    with pytest.raises(PersonalDataWasErased):
        app.record_facts(as_(), customer_id, group="needs", facts={"payroll": True})


def test_a_restricted_customers_data_are_kept_but_not_processed(app: TuohuApplication) -> None:
    customer_id = register(app)

    privacy.restrict_processing(app, AUDITOR, customer_id, reason="accuracy contested, ticket 881")

    with pytest.raises(ProcessingIsRestricted):
        app.record_facts(as_(), customer_id, group="needs", facts={"payroll": True})
    with pytest.raises(ProcessingIsRestricted):
        app.plan_visit(as_(), customer_id=customer_id, purpose="intro", scheduled_at=datetime.now(timezone.utc),
                       staff=[MANAGER], method="phone", kind="acquisition")
    assert app.load(Customer, customer_id).display_name == NAME  # kept: the auditors still read it


def test_a_restricted_customer_is_shown_without_personal_data_outside_the_audit_views(app: TuohuApplication) -> None:
    customer_id = register(app)
    privacy.restrict_processing(app, AUDITOR, customer_id, reason="accuracy contested, ticket 881")

    shown = privacy.without_personal_data(app.load(Customer, customer_id))

    assert shown.display_name is None
    assert shown.facts == {"basic": {}, "financial": {}, "business": {"industry": "textiles"}, "needs": {}}
    assert audit.state_as_of(app, customer_id)["state"]["display_name"] == NAME


def test_a_risk_case_can_still_be_opened_about_a_restricted_customer(app: TuohuApplication) -> None:
    customer_id = register(app)
    privacy.restrict_processing(app, AUDITOR, customer_id, reason="accuracy contested, ticket 881")

    app.identify_risk(as_("risk-sun", "risk_officer"), subject_type="customer", subject_id=customer_id,
                      category="credit", description="overdue at another bank")

    assert len(app.load(Customer, customer_id).open_risk_cases) == 1


def test_a_restriction_needs_a_reason_and_happens_once(app: TuohuApplication) -> None:
    customer_id = register(app)

    with pytest.raises(ReasonRequired):
        privacy.restrict_processing(app, AUDITOR, customer_id, reason="")
    privacy.restrict_processing(app, AUDITOR, customer_id, reason="ticket 881")
    with pytest.raises(ProcessingIsRestricted):
        privacy.restrict_processing(app, AUDITOR, customer_id, reason="ticket 882")


def test_explain_after_erasure_keeps_the_recorded_result_and_says_why_it_cannot_rescore(
        app: TuohuApplication) -> None:
    customer_id = register(app)
    app.screen_customer(as_("screening-model", "system"), customer_id)
    privacy.erase_personal_data(app, AUDITOR, customer_id, reason="DSR-7", retention_years=10)

    [screening] = audit.explain(app, customer_id)["screenings"]

    assert screening["matches"] is None
    assert screening["recorded"]["score"] == 60  # base 50 + age 41 (26-60) +10; nothing else known
    assert "erased" in screening["note"]


def test_visits_saved_with_their_customer_find_its_key_however_small_the_owner_cache(app: TuohuApplication) -> None:
    from domain.visit import Visit

    app.mapper.owner_cache_size = 2
    ctx = as_()
    customer = Customer.register(ctx, kind="retail", acquisition_channel="branch", source_detail="form",
                                 segment="mass", manager_id=MANAGER, branch="sz", display_name=NAME)
    visits = [Visit.plan(ctx, customer_id=customer.id, purpose="intro", scheduled_at=datetime.now(timezone.utc),
                         staff=[MANAGER], method="phone", kind="acquisition") for _ in range(5)]
    for visit in visits:
        visit.conduct(ctx, outcome="interested", needs_learned=f"call {PHONE}")

    app.save(customer, *visits)

    assert [list(app.events.get(v.id))[-1].needs_learned for v in visits] == [f"call {PHONE}"] * 5
    assert PHONE.encode() not in b"".join(s.state for s in stored(app))
