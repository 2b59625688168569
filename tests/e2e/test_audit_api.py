"""The audit routes over HTTP (FastAPI's TestClient, SQLite files, real bearer tokens).

Which roles may call them is checked route by route in ``test_permissions.py``;
here: what an auditor reads, and what a restricted customer's views no longer show.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api_users import as_, bearer
from application import Settings, privacy
from interfaces.api import create_app

NAME = "Lin Mei-API-Probe"
AUDITOR = "audit-he"


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(data_dir=tmp_path, database_url=None))) as test_client:
        yield test_client


@pytest.fixture
def customer(client: TestClient) -> str:
    """A customer of mgr-li whose credit standing was recorded twice, screened."""
    app = client.app.state.application
    customer_id = app.register_customer(as_("mgr-li"), kind="retail", acquisition_channel="branch",
                                        source_detail="form", segment="mass", manager_id="mgr-li",
                                        branch="shanghai-pudong", display_name=NAME).aggregate_id
    app.record_facts(as_("mgr-li"), customer_id, group="basic", facts={"age": 30, "job": "technician"})
    app.record_credit_standing(as_("mgr-li"), customer_id, source="credit_bureau", result="no_default")
    app.record_credit_standing(as_("mgr-li"), customer_id, source="credit_bureau", result="in_default",
                               reason="new default reported 2025-03")
    app.screen_customer(as_("mgr-li"), customer_id)
    client.position = app.position()
    return str(customer_id)


def get(client: TestClient, path: str, name: str = AUDITOR, status: int = 200, **params: Any) -> Any:
    response = client.get(path, params={**params, "consistent_with": client.position},
                          headers=bearer(client, name))
    assert response.status_code == status, response.text
    return response.json()


def test_an_auditor_reads_who_changed_the_credit_standing_when_and_why(client: TestClient, customer: str) -> None:
    found = get(client, f"/audit/customer/{customer}/history", field="credit_standing")

    assert [(e["version"], e["actor_id"], e["reason"]) for e in found["events"]] == [
        (3, "mgr-li", None), (4, "mgr-li", "new default reported 2025-03")]
    assert {"field": "credit_standing.result", "before": "no_default", "after": "in_default"} in \
        found["events"][1]["changes"]


def test_a_field_the_customer_never_had_is_a_422_naming_it_not_an_empty_history(client: TestClient,
                                                                                 customer: str) -> None:
    refused = get(client, f"/audit/customer/{customer}/history", status=422, field="credit_standng")
    nested = get(client, f"/audit/customer/{customer}/history", status=422, field="credit_standing.reslt")

    assert (refused["code"], refused["field"]) == ("invalid_value", "field")
    assert "'credit_standng' is no field of customer" in refused["detail"]
    assert "credit_standing, " in refused["detail"] and "facts" in refused["detail"]
    assert nested["field"] == "field" and "'credit_standing.reslt'" in nested["detail"]


@pytest.mark.parametrize("field", ["account_number", "group", "facts.basic.age"],
                         ids=["a field always empty", "a field of its events alone", "a field changed once"])
def test_a_real_field_answers_its_changes_or_none(client: TestClient, customer: str, field: str) -> None:
    found = get(client, f"/audit/customer/{customer}/history", field=field)

    assert found["field"] == field
    assert [e["version"] for e in found["events"]] == ([2] if field == "facts.basic.age" else [])


def test_an_auditor_reads_the_customer_as_it_stood_at_a_version(client: TestClient, customer: str) -> None:
    found = get(client, f"/audit/customer/{customer}", version=3)

    assert found["version"] == 3
    assert found["state"]["credit_standing"]["result"] == "no_default"


def test_an_auditor_gets_the_screening_explained(client: TestClient, customer: str) -> None:
    found = get(client, f"/audit/customer/{customer}/explain")

    # base 50, in default -60, age 26-60 +10, occupation +5: 5, decline
    assert found["screenings"][0]["recomputed"]["score"] == 5
    assert found["all_match"] is True


def test_an_auditor_verifies_the_chain_over_http(client: TestClient, customer: str) -> None:
    seal = client.app.state.application.chain.seal()

    found = get(client, "/audit/verify", seal_position=seal.position, seal_link=seal.link)
    upper = get(client, "/audit/verify", seal_position=seal.position, seal_link=seal.link.upper())

    assert found["ok"] is True
    assert found["checked"] == seal.position
    assert upper["ok"] is True and upper["published"] == found["published"]  # a link copied from a printout


def test_deleted_seals_are_not_ok_over_http_unless_the_held_seal_matches(client: TestClient, customer: str) -> None:
    import sqlite3

    app = client.app.state.application
    seal = app.chain.seal()
    with sqlite3.connect(app.chain.storage.path) as conn:
        conn.execute("DELETE FROM tuohu_seals")

    alone = get(client, "/audit/verify")
    held = get(client, "/audit/verify", seal_position=seal.position, seal_link=seal.link)

    assert (alone["ok"], alone["seal"]) == (False, None)
    assert alone["unsealed"] == app.recorder.max_notification_id() >= seal.position  # every stored event
    assert (alone["problem"]["position"], alone["problem"]["kind"]) == (seal.position, "seals_missing")
    assert (held["ok"], held["problem"]) == (True, None)
    assert (held["warning"]["position"], held["warning"]["kind"]) == (seal.position, "seals_missing")


def test_a_version_past_the_latest_is_not_found_not_the_latest(client: TestClient, customer: str) -> None:
    latest = get(client, f"/audit/customer/{customer}")["version"]

    found = get(client, f"/audit/customer/{customer}", version=latest + 90, status=404)

    assert f"no version {latest + 90}" in found["detail"] and f"latest is {latest}" in found["detail"]


def test_a_held_seal_past_the_chain_or_below_one_is_not_passed(client: TestClient, customer: str) -> None:
    seal = client.app.state.application.chain.seal()

    past = get(client, "/audit/verify", seal_position=seal.position + 50, seal_link=seal.link)
    below = get(client, "/audit/verify", seal_position=0, seal_link=seal.link, status=422)
    huge = get(client, "/audit/verify", seal_position=2**64, seal_link=seal.link, status=422)  # no stored position

    assert past["ok"] is False
    assert (past["problem"]["position"], past["problem"]["kind"]) == (seal.position + 50, "deleted")
    assert past["published"] == {"format": "tuohu-seal/1", "position": seal.position + 50, "link": seal.link}
    assert "seal_position" in str(below)
    assert "seal_position" in str(huge)


def test_a_customer_manager_may_not_read_the_audit_history(client: TestClient, customer: str) -> None:
    found = get(client, f"/audit/customer/{customer}/history", name="mgr-li", status=403)

    assert found["code"] == "forbidden"


def test_a_restricted_customer_is_shown_without_name_except_to_the_auditor(client: TestClient, customer: str) -> None:
    app = client.app.state.application
    visit = app.plan_visit(as_("mgr-li"), customer_id=UUID(customer), purpose="intro", staff=["mgr-li"],
                           scheduled_at=datetime(2025, 3, 10, tzinfo=timezone.utc), method="phone",
                           kind="acquisition").aggregate_id
    app.prepare_visit(as_("mgr-li"), visit, background=f"{NAME} runs a bakery", materials=[], talking_points=[])
    privacy.restrict_processing(app, as_(AUDITOR), UUID(customer), reason="accuracy contested, ticket 77")
    client.position = app.position()

    shown = get(client, f"/customers/{customer}", name="mgr-li")
    listed = get(client, "/customers", name="mgr-li", q="api-probe")
    audited = get(client, f"/audit/customer/{customer}")

    assert shown["display_name"] is None and shown["facts"]["basic"] == {}
    assert listed["data"] == []
    assert audited["state"]["display_name"] == NAME
    assert audited["state"]["processing_restricted"] is True
    assert get(client, f"/visits/{visit}", name="mgr-li")["preparation"]["background"] == "[restricted]"
    assert get(client, f"/audit/visit/{visit}")["state"]["preparation"]["background"] == f"{NAME} runs a bakery"


def test_an_unknown_aggregate_is_not_found(client: TestClient, customer: str) -> None:
    found = get(client, "/audit/visit/" + customer, status=404)

    assert found["code"] == "not_found"


def test_an_actor_trail_over_http(client: TestClient, customer: str) -> None:
    start = datetime(2000, 1, 1, tzinfo=timezone.utc).isoformat()

    found = get(client, "/audit/actors/mgr-li", **{"from": start, "decisions_only": "true"})

    assert [(r["aggregate_id"], r["event_type"]) for r in found["rows"]] == [(customer, "Screened")]


def test_an_actor_trail_is_paged_with_a_cursor_through_every_row_once(client: TestClient, customer: str) -> None:
    # the fixture's five commands by mgr-li, all at the same business time: the position orders them
    pages = [get(client, "/audit/actors/mgr-li", limit=2)]
    while pages[-1]["next"] is not None:
        pages.append(get(client, "/audit/actors/mgr-li", limit=2, cursor=pages[-1]["next"]))

    rows = [row for page in pages for row in page["rows"]]
    assert [len(page["rows"]) for page in pages] == [2, 2, 1]
    assert {(page["total"], page["limit"]) for page in pages} == {(5, 2)}
    assert [row["position"] for row in rows] == sorted({row["position"] for row in rows})
    assert {row["aggregate_id"] for row in rows} == {customer}


def test_an_actor_trail_page_holds_at_most_10000_rows(client: TestClient, customer: str) -> None:
    assert get(client, "/audit/actors/mgr-li")["limit"] == 1000
    detail = get(client, "/audit/actors/mgr-li", status=422, limit=10_001)["detail"]

    assert [error["loc"] for error in detail] == [["query", "limit"]]


def test_a_cursor_the_actor_trail_did_not_give_out_is_a_422(client: TestClient, customer: str) -> None:
    refused = get(client, "/audit/actors/mgr-li", status=422, cursor="bm90LWEtY3Vyc29y")

    assert (refused["code"], refused["field"]) == ("invalid_value", "cursor")


def test_an_actor_trail_whose_range_ends_before_it_starts_is_a_422_naming_to(client: TestClient,
                                                                             customer: str) -> None:
    refused = get(client, "/audit/actors/mgr-li", status=422,
                  **{"from": "2024-02-01T00:00:00Z", "to": "2023-02-01T00:00:00Z"})

    assert (refused["code"], refused["field"]) == ("invalid_value", "to")


@pytest.mark.parametrize(("path", "params", "field"), [
    ("/audit/customer/{id}", {"as_of": "9999-12-31T23:59:59-12:00"}, "as_of"),
    ("/audit/actors/mgr-li", {"from": "0001-01-01T00:00:00+01:00"}, "from"),
    ("/audit/actors/mgr-li", {"to": "9999-12-31T23:59:59-12:00"}, "to"),
])
def test_a_time_out_of_range_in_utc_is_a_422_naming_it(client: TestClient, customer: str, path: str,
                                                       params: dict[str, str], field: str) -> None:
    """A valid time whose UTC falls before year 1 or after 9999: refused, as a command's body refuses it."""
    refused = get(client, path.format(id=customer), status=422, **params)

    assert field in str(refused) and "out of range once converted to UTC" in str(refused)


def test_the_actor_trail_takes_a_period_or_a_range_not_both(client: TestClient, customer: str) -> None:
    refused = get(client, "/audit/actors/mgr-li", status=422, period="2009-Q3", **{"from": "2009-09-01T00:00:00Z"})

    assert "period" in str(refused) and "not both" in str(refused)
