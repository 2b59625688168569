"""Restriction and erasure on real stores: the views, the rebuilt read models, and the raw database files.

The erasure test writes a distinctive name and phone number, lets every read
model see them (and keeps a superseded generation after a rebuild), erases the
person, and then reads every file under the data directory as bytes (SQLite),
or every row of every table of the schema (PostgreSQL), looking for them.
"""

from __future__ import annotations

import json

import sqlite3
from datetime import datetime, timezone
from typing import Any

from application import Settings, audit, privacy
from application.chain import AuditChain
from domain.base import Context
from projections.actors import trail
from projections.erasure import forget_in_read_models, related_ids

NAME = "Zhang Wei-Erasure-Probe"
PHONE = "13800138000"
MANAGER = "mgr-li"
AUDITOR = Context(actor_id="audit-he", actor_role="compliance_auditor")


def as_(actor_id: str = MANAGER, role: str = "customer_manager") -> Context:
    return Context(actor_id=actor_id, actor_role=role)


def person(app: Any) -> Any:
    """A customer with the probe in every kind of personal field, a visit, a review and a risk case."""
    customer_id = app.register_customer(as_(), kind="retail", acquisition_channel="branch", source_detail="counter",
                                        segment="mass", manager_id=MANAGER, branch="sz", display_name=NAME).aggregate_id
    app.record_facts(as_(), customer_id, group="basic", facts={"name": NAME, "phone": PHONE, "age": 38,
                                                                "job": "management"})
    app.screen_customer(as_("screening-model", "system"), customer_id)
    app.review_customer(as_("rev-wang", "reviewer"), customer_id, decision="qualified",
                        reason=f"{NAME} confirmed by phone {PHONE}")
    visit_id = app.plan_visit(as_(), customer_id=customer_id, purpose="intro", staff=[MANAGER], method="phone",
                              scheduled_at=datetime.now(timezone.utc), kind="acquisition").aggregate_id
    app.conduct_visit(as_(), visit_id, outcome="interested", needs_learned=f"call {NAME} on {PHONE}")
    app.identify_risk(as_("risk-sun", "risk_officer"), subject_type="customer", subject_id=customer_id,
                      category="credit", description=f"{NAME} overdue at another bank")
    return customer_id


def probes() -> list[bytes]:
    return [NAME.encode(), NAME.lower().encode(), PHONE.encode(), NAME.encode().hex().encode(),
            PHONE.encode().hex().encode()]


def test_erasure_leaves_no_plaintext_of_the_person_anywhere_in_the_database(services: tuple,
                                                                            settings: Settings) -> None:
    application, read_models = services
    customer_id = person(application)
    read_models.catch_up()
    read_models.runner.rebuild()  # the superseded generation still holds the name
    application.chain.seal()
    key_bytes = _key_of(settings, customer_id)

    privacy.erase_personal_data(application, AUDITOR, customer_id, reason="data subject request DSR-7",
                                retention_years=settings.retention_years,
                                related_ids=related_ids(read_models, customer_id))
    forget_in_read_models(read_models)
    read_models.engine.dispose()
    application.close()

    if settings.uses_postgres:
        found = _postgres_rows_containing(settings, probes())
        assert found == [], found
    else:
        files = sorted(p for p in settings.data_dir.rglob("*") if p.is_file())
        assert {p.name for p in files} >= {"events.sqlite", "readmodels.sqlite", "keys.sqlite"}
        for path in files:
            data = path.read_bytes()
            assert not any(probe in data or probe in data.lower() for probe in probes()), path
            assert key_bytes not in data, path


def test_after_erasure_the_history_reads_erased_and_the_chain_still_verifies(services: tuple,
                                                                              settings: Settings) -> None:
    application, read_models = services
    customer_id = person(application)
    seal = application.chain.seal()

    privacy.erase_personal_data(application, AUDITOR, customer_id, reason="DSR-7", retention_years=10)

    history = audit.history(application, customer_id)["events"]
    assert history[0]["data"]["display_name"] == privacy.ERASED
    assert history[1]["data"]["facts"] == privacy.ERASED_DICT
    assert history[3]["reason"] == privacy.ERASED
    assert [e["event"] for e in history][-1] == "PersonalDataErased"
    checked = AuditChain(application).verify(seal)
    assert checked.ok, checked.summary()
    assert checked.unsealed == 1  # the erasure event itself


def test_the_read_models_rebuilt_after_erasure_match_the_live_ones(services: tuple) -> None:
    application, read_models = services
    customer_id = person(application)
    read_models.catch_up()

    privacy.erase_personal_data(application, AUDITOR, customer_id, reason="DSR-7", retention_years=10)
    read_models.catch_up()

    assert read_models.runner.verify() == []
    with read_models.reading("actors") as (conn, tables):
        reasons = [r["reason"] for r in trail(conn, tables, "rev-wang")["rows"]]
    assert reasons == [privacy.ERASED]


def test_a_restricted_person_disappears_from_the_views_but_not_from_the_audit(services: tuple) -> None:
    application, read_models = services
    customer_id = person(application)
    read_models.catch_up()
    assert [r["id"] if "id" in r else r["customer_id"] for r in read_models.customers(q="erasure-probe")]

    privacy.restrict_processing(application, AUDITOR, customer_id, reason="accuracy contested, ticket 881")
    read_models.catch_up()

    assert read_models.customers(q="erasure-probe") == []
    [row] = [r for r in read_models.customers() if str(r.get("customer_id", r.get("id"))) == str(customer_id)]
    assert row["display_name"] is None
    [case] = read_models.records("risk_case", customer_id=str(customer_id))
    assert case["detail"] == "[restricted]"
    assert audit.state_as_of(application, customer_id)["state"]["display_name"] == NAME
    assert read_models.runner.verify() == []


def test_a_risk_case_opened_after_the_restriction_hides_its_description_too(services: tuple) -> None:
    application, read_models = services
    customer_id = person(application)
    privacy.restrict_processing(application, AUDITOR, customer_id, reason="accuracy contested, ticket 882")
    later = application.identify_risk(as_("risk-sun", "risk_officer"), subject_type="customer",
                                      subject_id=customer_id, category="reputational",
                                      description=f"{NAME} seen with forged papers").aggregate_id
    read_models.catch_up()

    cases = {case["aggregate_id"]: case["detail"] for case in
             read_models.records("risk_case", customer_id=str(customer_id))}
    assert cases[str(later)] == "[restricted]"
    assert set(cases.values()) == {"[restricted]"}
    assert read_models.runner.verify() == []


def test_an_erasure_by_another_process_shows_in_the_next_audit_read(services: tuple, settings: Settings) -> None:
    """The server has the person's key cached from an earlier read; an operator's process erases
    them; the server's next history read shows the fields erased, not the cached plaintext."""
    from application import bootstrap

    server, _read_models = services
    customer_id = person(server)
    before = json.dumps(audit.history(server, customer_id), default=str)
    operator = bootstrap(settings)
    try:
        privacy.erase_personal_data(operator, AUDITOR, customer_id, reason="DSR-9", retention_years=10)
    finally:
        operator.close()

    after = json.dumps(audit.history(server, customer_id), default=str)

    assert NAME in before
    assert NAME not in after and privacy.ERASED in after


def _key_of(settings: Settings, customer_id: Any) -> bytes:
    if settings.uses_postgres:
        import psycopg

        with psycopg.connect(settings.database_url) as conn:
            return bytes(conn.execute(f'SELECT key FROM "{settings.database_schema}".tuohu_keys '
                                      "WHERE customer_id = %s", (str(customer_id),)).fetchone()[0])
    with sqlite3.connect(settings.data_dir / "keys.sqlite") as conn:
        return bytes(conn.execute("SELECT key FROM tuohu_keys WHERE customer_id = ?", (str(customer_id),))
                     .fetchone()[0])


def _postgres_rows_containing(settings: Settings, needles: list[bytes]) -> list[tuple[str, str]]:
    import psycopg

    found = []
    with psycopg.connect(settings.database_url) as conn:
        tables = [r[0] for r in conn.execute("SELECT table_name FROM information_schema.tables "
                                             "WHERE table_schema = %s", (settings.database_schema,))]
        for table in tables:
            for (text,) in conn.execute(f'SELECT t::text FROM "{settings.database_schema}"."{table}" t'):
                lowered = text.lower().encode()
                if any(n.lower() in lowered for n in needles):
                    found.append((table, text[:120]))
    return found
