"""Report routes and report commands over a small, hand-built history.

The expected figures follow from the commands issued here, counted by hand.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, Query
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api_users import BRANCH, add_staff, bearer
from application import Settings, bootstrap
from domain.base import Context
from interfaces.api import create_app, errors

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)


def _ctx(actor: str, role: str, when: datetime = T0) -> Context:
    return Context(actor, role, occurred_at=when)


@pytest.fixture
def history(tmp_path: Path) -> dict:
    """Three customers: one won (account opened), one qualified and visited, one only registered;
    a follow-up visit left overdue; an open high risk case with one warning."""
    settings = Settings(data_dir=tmp_path / "var")
    app = bootstrap(settings)
    m, rv, pm, head, ops, risk = (("mgr-li", "customer_manager"), ("rev-wang", "reviewer"),
                                  ("pm-zhou", "product_manager"), ("head-zhao", "branch_head"),
                                  ("ops-sun", "operations"), ("risk-qian", "risk_officer"))
    ids = {}
    for name, channel, kind in (("won", "branch", "corporate"), ("visited", "online", "retail"),
                                ("new", "online", "retail")):
        ids[name] = app.register_customer(_ctx(*m), kind=kind, acquisition_channel=channel, source_detail="d",
                                          segment="sme" if kind == "corporate" else "mass", manager_id="mgr-li",
                                          branch=BRANCH, display_name=f"Customer {name.title()}").aggregate_id
    for name in ("won", "visited"):
        app.record_facts(_ctx(*m), ids[name], group="basic", facts={"age": 40, "job": "management"})
        app.record_credit_standing(_ctx(*m), ids[name], source="credit_bureau", result="no_default")
        app.screen_customer(_ctx(*m), ids[name])
        app.review_customer(_ctx(*rv), ids[name], decision="qualified", reason="documents verified")
        visit = app.plan_visit(_ctx(*m), customer_id=ids[name], purpose="intro", scheduled_at=T0, staff=["mgr-li"],
                               method="in_person", kind="acquisition").aggregate_id
        app.conduct_visit(_ctx(*m), visit, outcome="interested")
    proposal = app.draft_proposal(_ctx(*m), customer_id=ids["won"], products=["payroll"], pricing_terms={"fee": "0"},
                                  rights_and_obligations="standard").aggregate_id
    app.submit_proposal(_ctx(*m), proposal)
    app.approve_proposal(_ctx(*pm), proposal)
    app.present_proposal(_ctx(*m), proposal)
    app.accept_proposal(_ctx(*m), proposal)
    contract = app.draft_contract(_ctx(*m), proposal_id=proposal).aggregate_id
    app.review_contract_clauses(_ctx(*rv), contract, findings=[])
    app.approve_contract(_ctx(*head), contract)
    app.sign_contract(_ctx(*head), contract, customer_signatory="CFO")
    app.apply_for_account(_ctx(*m), ids["won"], account_type="corporate_current", documents=["licence"])
    app.review_documents(_ctx(*ops), ids["won"], accepted=True)
    app.open_account(_ctx(*ops), ids["won"], account_number="6222-0001")
    overdue = app.plan_visit(_ctx(*m), customer_id=ids["won"], purpose="return visit",
                             scheduled_at=datetime.now(timezone.utc) - timedelta(days=3, hours=1),
                             staff=["mgr-li"], method="phone", kind="follow_up").aggregate_id
    case = app.identify_risk(_ctx(*risk), subject_type="customer", subject_id=ids["visited"], category="credit",
                             description="overdue loan elsewhere").aggregate_id
    app.assess_risk(_ctx(*risk), case, indicator_scores={"overdue_days": 85})
    app.decide_risk_response(_ctx(*risk), case, response="reduce", measures=["monthly review"], reason="r")
    app.record_risk_reading(_ctx(*risk), case, indicator="overdue_days", value=Decimal(95), threshold=Decimal(90),
                            direction="above")
    position = app.position()
    app.close()
    with TestClient(create_app(settings)) as client:
        add_staff(client)
        yield {"client": client, "ids": ids, "overdue": overdue, "case": case, "position": position,
               "proposal": proposal, "contract": contract}


def report(history: dict, path: str, actor: str = "audit-he", **params) -> object:
    """GET a report as ``actor`` (the compliance auditor, who reads everything, by default)."""
    params["consistent_with"] = history["position"]
    response = history["client"].get(path, params=params, headers=bearer(history["client"], actor))
    assert response.status_code == 200, response.text
    return response.json()


def test_funnel_counts_each_stage_once_per_customer(history: dict) -> None:
    assert report(history, "/reports/funnel") == {"registered": 3, "screened": 2, "qualified": 2, "visited": 2,
                                                 "proposed": 1, "contracted": 1, "account_opened": 1}


def test_funnel_by_channel_gives_conversion_rates(history: dict) -> None:
    rows = {r["channel"]: r for r in report(history, "/reports/funnel", by="channel")}
    assert rows["online"]["registered"] == 2 and rows["online"]["qualified"] == 1
    assert rows["online"]["conversion_pct"]["screened_to_qualified"] == 100.0
    assert rows["online"]["conversion_pct"]["overall"] == 0.0
    assert rows["branch"]["conversion_pct"]["overall"] == 100.0


def test_customers_report_filters_and_searches(history: dict) -> None:
    ids = {name: str(value) for name, value in history["ids"].items()}
    def found(**params: str) -> list[str]:
        return [r["customer_id"] for r in report(history, "/reports/customers", **params)["items"]]

    assert set(found(channel="online")) == {ids["visited"], ids["new"]}
    assert found(q="customer won") == [ids["won"]]
    assert found(q="6222-0001") == [ids["won"]]
    assert found(risk_level="high") == [ids["visited"]]
    assert found(stage="account_opened") == [ids["won"]]


def test_a_filter_the_report_does_not_take_is_refused_not_ignored(history: dict) -> None:
    """A misspelt filter (``stge``) or one the route lacks (``branch`` on staff performance) would
    otherwise be ignored and the page look filtered: 422, naming it and what the route takes."""
    client, headers = history["client"], bearer(history["client"], "audit-he")
    misspelt = client.get("/reports/customers", params={"stge": "registered"}, headers=headers)
    unsupported = client.get("/reports/staff-performance", params={"period": "2025", "branch": BRANCH}, headers=headers)
    health = client.get("/health", params={"_": "1700000000"})

    assert misspelt.status_code == 422
    [error] = misspelt.json()["detail"]
    assert error["loc"] == ["query", "stge"] and error["type"] == "extra_forbidden"
    assert "stage" in error["msg"]  # what it takes
    assert unsupported.status_code == 422
    assert [e["loc"] for e in unsupported.json()["detail"]] == [["query", "branch"]]
    assert health.status_code == 200


@pytest.mark.parametrize(("path", "name", "params"), [
    ("/reports/funnel", "by", {"by": ["channel", "month"]}),
    ("/reports/customers", "stage", {"stage": ["registered", "account_opened"], "q": "customer"}),
    ("/reports/visits/calendar", "to", {"from": "2025-03-03T00:00:00Z",
                                        "to": ["2025-03-04T00:00:00Z", "2025-03-05T00:00:00Z"]}),
])
def test_a_single_valued_parameter_given_twice_is_refused_not_read_as_the_last(history: dict, path: str, name: str,
                                                                                params: dict) -> None:
    """``by=channel&by=month`` would otherwise answer as ``by=month``: 422, naming the parameter, how many
    times it was given and every value; the same query with it once answers."""
    client, headers = history["client"], bearer(history["client"], "audit-he")
    twice = client.get(path, params=params, headers=headers)
    once = client.get(path, params={**params, name: params[name][0]}, headers=headers)

    assert twice.status_code == 422, twice.text
    [error] = twice.json()["detail"]
    assert error["loc"] == ["query", name] and error["type"] == "multiple_argument_values"
    assert error["msg"] == "given 2 times; it takes one value" and error["input"] == params[name]
    assert once.status_code == 200, once.text


def test_consistent_with_given_twice_is_refused_with_an_unknown_parameter_alongside(history: dict) -> None:
    client, headers = history["client"], bearer(history["client"], "audit-he")
    position = history["position"]
    response = client.get("/reports/funnel", params={"consistent_with": [position, position, 0], "stge": "x"},
                          headers=headers)

    assert response.status_code == 422
    assert [(e["loc"], e["type"]) for e in response.json()["detail"]] == [
        (["query", "consistent_with"], "multiple_argument_values"), (["query", "stge"], "extra_forbidden")]
    assert response.json()["detail"][0]["msg"] == "given 3 times; it takes one value"


def test_a_parameter_taking_a_list_may_be_repeated() -> None:
    """No route takes a list today; one that does (its OpenAPI schema is an array) keeps every value."""
    api = FastAPI(dependencies=[Depends(errors.known_query_parameters)])
    errors.install(api)

    @api.get("/probe/list-parameter")
    def probe(tag: Annotated[list[str], Query()] = [], one: str | None = None) -> list[str]:  # noqa: B006
        return tag

    client = TestClient(api)
    assert client.get("/probe/list-parameter", params={"tag": ["a", "b"], "one": "x"}).json() == ["a", "b"]
    refused = client.get("/probe/list-parameter", params={"tag": ["a"], "one": ["x", "y"]})
    assert refused.status_code == 422
    assert [e["loc"] for e in refused.json()["detail"]] == [["query", "one"]]


def test_overdue_follow_ups_list_the_past_planned_return_visit(history: dict) -> None:
    rows = report(history, "/reports/visits/overdue-follow-ups")["items"]
    assert [(r["aggregate_id"], r["days_overdue"]) for r in rows] == [(str(history["overdue"]), 3)]


def test_visit_calendar_returns_visits_in_the_window(history: dict) -> None:
    rows = report(history, "/reports/visits/calendar",
                  **{"from": "2025-03-03T00:00:00Z", "to": "2025-03-04T00:00:00Z"})["items"]
    assert len(rows) == 2 and all(r["kind"] == "acquisition" for r in rows)


def test_contract_pipeline_shows_days_in_stage(history: dict) -> None:
    data = report(history, "/reports/contracts")
    [item] = data["items"]
    assert item["status"] == "signed"
    assert item["days_in_stage"] == (datetime.now(timezone.utc) - T0).days
    assert data["summary"] == [{"status": "signed", "count": 1, "longest_days": item["days_in_stage"]}]


def test_risk_register_counts_open_cases_by_level_and_warnings(history: dict) -> None:
    data = report(history, "/reports/risk-register")
    assert data["open_by_level"] == {"high": 1, "medium": 0, "low": 0, "unassessed": 0}
    assert data["open_warnings"] == 1


def test_reports_come_as_csv_and_xlsx_with_the_same_rows(history: dict) -> None:
    client = history["client"]
    as_json = report(history, "/reports/customers")["items"]
    response = client.get("/reports/customers", params={"format": "csv"}, headers=bearer(client, "audit-he"))
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["customer_id"] for r in rows] == [r["customer_id"] for r in as_json]
    response = client.get("/reports/customers", params={"format": "xlsx"}, headers=bearer(client, "audit-he"))
    sheet = load_workbook(io.BytesIO(response.content)).active
    header = [c.value for c in sheet[1]]
    column = header.index("customer_id")
    assert [row[column].value for row in sheet.iter_rows(min_row=2)] == [r["customer_id"] for r in as_json]


def test_a_bad_report_parameter_names_the_field(history: dict) -> None:
    auditor = bearer(history["client"], "audit-he")
    response = history["client"].get("/reports/evaluation", params={"period": "2025-Q5"}, headers=auditor)
    assert response.status_code == 422
    assert "period" in response.text
    response = history["client"].get("/reports/visits/calendar", headers=auditor,
                                     params={"from": "2025-03-04T00:00:00Z", "to": "2025-03-03T00:00:00Z"})
    assert response.status_code == 422
    assert "to" in response.text


@pytest.mark.parametrize("name", ["as_of", "effective_as_of"])
def test_an_evaluation_cut_without_a_timezone_is_refused_naming_its_own_parameter(history: dict, name: str) -> None:
    response = history["client"].get("/reports/evaluation", headers=bearer(history["client"], "audit-he"),
                                     params={"period": "2025-Q1", name: "2025-03-31T00:00:00"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", name]
    assert "timezone" in error["msg"]


# ---------------------------------------------------------------------- row-level access in reports


def test_a_customer_managers_reports_show_only_their_own_customers(history: dict) -> None:
    ids = {str(value) for value in history["ids"].values()}  # all three are mgr-li's
    assert {r["customer_id"] for r in report(history, "/reports/customers", actor="mgr-li")["items"]} == ids
    assert report(history, "/reports/customers", actor="mgr-qian")["items"] == []
    assert report(history, "/reports/funnel", actor="mgr-qian") == {stage: 0 for stage in (
        "registered", "screened", "qualified", "visited", "proposed", "contracted", "account_opened")}
    assert report(history, "/reports/risk-register", actor="mgr-qian")["open_by_level"]["high"] == 0
    assert report(history, "/reports/contracts", actor="mgr-qian")["items"] == []


def test_a_customer_managers_funnel_counts_their_customers_as_the_bank_funnel_does(history: dict) -> None:
    assert report(history, "/reports/funnel", actor="mgr-li") == report(history, "/reports/funnel")
    assert report(history, "/reports/funnel", actor="mgr-li", by="channel") == report(history, "/reports/funnel",
                                                                                   by="channel")


def test_a_branch_heads_reports_show_only_their_branchs_customers(history: dict) -> None:
    assert len(report(history, "/reports/customers", actor="head-sun")["items"]) == 3  # their branch
    assert report(history, "/reports/customers", actor="head-ma")["items"] == []  # another branch
    assert report(history, "/reports/visits/overdue-follow-ups", actor="head-ma")["items"] == []
    assert len(report(history, "/reports/visits/overdue-follow-ups", actor="head-sun")["items"]) == 1


@pytest.mark.parametrize(("caller", "unit_type"), [("audit-he", "branch"), ("head-sun", "branch"),
                                                  ("mgr-li", "person"), ("audit-he", "team")])
def test_an_evaluation_of_a_branch_team_or_person_needs_its_unit_id(history: dict, caller: str,
                                                                   unit_type: str) -> None:
    client = history["client"]

    response = client.get("/reports/evaluation", params={"period": "2025-03", "unit_type": unit_type},
                          headers=bearer(client, caller))

    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["query", "unit_id"]]


def test_the_bank_is_evaluated_under_its_one_id(history: dict) -> None:
    client, auditor = history["client"], bearer(history["client"], "audit-he")

    named = client.get("/reports/evaluation", params={"period": "2025-03", "unit_type": "bank", "unit_id": "bank"},
                       headers=auditor)
    other = client.get("/reports/evaluation", params={"period": "2025-03", "unit_type": "bank", "unit_id": "b1"},
                       headers=auditor)

    assert (named.status_code, named.json()["unit_id"]) == (200, "bank")
    assert other.status_code == 422
    assert [error["loc"] for error in other.json()["detail"]] == [["query", "unit_id"]]


def test_an_evaluation_outside_the_callers_unit_is_refused(history: dict) -> None:
    client = history["client"]
    own = client.get("/reports/evaluation", params={"period": "2025-03", "unit_type": "person", "unit_id": "mgr-li"},
                     headers=bearer(client, "mgr-li"))
    other = client.get("/reports/evaluation", params={"period": "2025-03", "unit_type": "person",
                                                      "unit_id": "mgr-qian"}, headers=bearer(client, "mgr-li"))
    bank = client.get("/reports/evaluation", params={"period": "2025-03"}, headers=bearer(client, "head-sun"))
    assert own.status_code == 200, own.text
    assert (other.status_code, other.json()["code"]) == (403, "outside_your_scope")
    assert (bank.status_code, bank.json()["code"]) == (403, "outside_your_scope")


def test_a_conversion_is_the_share_of_one_stages_customers_that_reached_the_next(tmp_path: Path) -> None:
    """Stages reached out of funnel order (visited before qualified, visited and never qualified):
    screened -> qualified is 2 of 3, qualified -> visited 1 of 2 (not visited / qualified = 2 / 2),
    visited -> proposed 0 of 2; the bank's rollup and a customer manager's own rows agree."""
    settings = Settings(data_dir=tmp_path / "var")
    app = bootstrap(settings)
    m, rv = ("mgr-li", "customer_manager"), ("rev-wang", "reviewer")
    ids = {}
    for name in ("visited first", "never qualified", "not visited"):
        ids[name] = app.register_customer(_ctx(*m), kind="retail", acquisition_channel="online", source_detail="d",
                                          segment="mass", manager_id="mgr-li", branch=BRANCH,
                                          display_name=name).aggregate_id
        app.record_facts(_ctx(*m), ids[name], group="basic", facts={"age": 40, "job": "management"})
        app.record_credit_standing(_ctx(*m), ids[name], source="credit_bureau", result="no_default")
        app.screen_customer(_ctx(*m), ids[name])
    for name in ("visited first", "never qualified"):
        visit = app.plan_visit(_ctx(*m), customer_id=ids[name], purpose="intro", scheduled_at=T0, staff=["mgr-li"],
                               method="phone", kind="acquisition").aggregate_id
        app.conduct_visit(_ctx(*m), visit, outcome="interested")
    for name in ("visited first", "not visited"):
        app.review_customer(_ctx(*rv), ids[name], decision="qualified", reason="documents verified")
    position = app.position()
    app.close()
    with TestClient(create_app(settings)) as client:
        add_staff(client)
        history = {"client": client, "position": position}
        for actor in ("audit-he", "mgr-li"):
            [row] = report(history, "/reports/funnel", actor=actor, by="channel")
            assert (row["screened"], row["qualified"], row["visited"], row["proposed"]) == (3, 2, 2, 0)
            rates = row["conversion_pct"]
            assert rates["registered_to_screened"] == 100.0
            assert rates["screened_to_qualified"] == round(100 * 2 / 3, 2)
            assert rates["qualified_to_visited"] == 50.0
            assert rates["visited_to_proposed"] == 0.0
            assert rates["proposed_to_contracted"] is None


def test_the_funnel_totals_keep_to_the_registration_months_asked_for(history: dict) -> None:
    """All three customers were registered (business time) on T0, 2025-03-03: a range ending the
    month before counts none, one holding March 2025 counts them all."""
    this_month, before = "2025-03", "2025-02"
    everyone = report(history, "/reports/funnel")
    assert report(history, "/reports/funnel", month_from=this_month, month_to=this_month) == everyone
    assert set(report(history, "/reports/funnel", month_to=before).values()) == {0}
    assert report(history, "/reports/funnel", actor="mgr-li", month_to=before) == report(
        history, "/reports/funnel", month_to=before)


@pytest.mark.parametrize(("params", "field"), [({"month_from": "2009-13"}, "month_from"),
                                               ({"month_to": "2009-5"}, "month_to"),
                                               ({"month_from": "2009-04", "month_to": "2009-03"}, "month_to")])
def test_a_bad_month_range_is_a_422_naming_the_field(history: dict, params: dict, field: str) -> None:
    client = history["client"]
    for by in ({}, {"by": "month"}):
        response = client.get("/reports/funnel", params={**params, **by}, headers=bearer(client, "audit-he"))
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["query", field]


@pytest.mark.parametrize("period", ["0000", "0001-Q1", "1899-12", "2101"])
def test_an_evaluation_period_outside_1900_to_2100_is_a_422_naming_period(history: dict, period: str) -> None:
    client = history["client"]
    response = client.get("/reports/evaluation", params={"period": period}, headers=bearer(client, "audit-he"))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", "period"]
