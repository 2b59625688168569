"""The evaluation and team projections: given events (through the use cases) -> then rows and reports.

Every expected figure below is worked out by hand from the events a test
issues and the rules in the docstring of :mod:`projections.evaluation`.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import create_engine, select

from application.app import TuohuApplication
from domain.base import Context
from domain.team import scheme_id, target_id
from domain.user import user_id
from projections.evaluation import (
    EvaluationProjection,
    NoAppraisalScheme,
    TeamProjection,
    evaluation,
    parse_period,
    staff_performance,
)
from projections.framework import ProjectionRunner, ReadModelStore

REVIEWER = "rev-wang"
OPS = "ops-zhou"
HEAD = "head-zhao"


def at(year: int, month: int, day: int = 10) -> datetime:
    return datetime(year, month, day, 9, 0, tzinfo=timezone.utc)


def ctx(actor: str, when: datetime, role: str = "customer_manager") -> Context:
    return Context(actor_id=actor, actor_role=role, occurred_at=when)


class World:
    """An application over a SQLite file, the two projections over another, and a few givens."""

    def __init__(self, tmp_path: Path) -> None:
        self.app = TuohuApplication(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                                         "SQLITE_DBNAME": str(tmp_path / "e.sqlite")})
        self.engine = create_engine(f"sqlite:///{tmp_path / 'rm.sqlite'}")
        self.store = ReadModelStore(self.engine, [EvaluationProjection(), TeamProjection()])
        self.runner = ProjectionRunner(self.app.recorder, self.app.mapper, self.store)

    def close(self) -> None:
        self.engine.dispose()
        self.app.close()

    # ------------------------------------------------------------------ givens

    def staff(self, code: str, team: str = "north", when: datetime = at(2009, 1, 2), branch: str = "futian") -> None:
        self.app.join_team(ctx(HEAD, when, "branch_head"), staff_code=code, display_name=f"Staff {code}",
                           role="customer_manager", branch=branch, team=team)

    def customer(self, manager: str, when: datetime, kind: str = "retail", branch: str = "futian") -> uuid.UUID:
        return self.app.register_customer(ctx(manager, when), kind=kind, acquisition_channel="branch",
                                          source_detail="counter form", segment="smes", manager_id=manager,
                                          branch=branch).aggregate_id

    def account(self, customer_id: uuid.UUID, manager: str, when: datetime) -> None:
        self.app.screen_customer(ctx("screening-model", when, "system"), customer_id)
        self.app.review_customer(ctx(REVIEWER, when, "reviewer"), customer_id, decision="qualified",
                                 reason="facts verified")
        self.app.apply_for_account(ctx(manager, when), customer_id, account_type="current", documents=["id card"])
        self.app.review_documents(ctx(OPS, when, "operations"), customer_id, accepted=True)
        self.app.open_account(ctx(OPS, when, "operations"), customer_id, account_number=f"AC-{customer_id.hex[:8]}")

    def figures(self, customer_id: uuid.UUID, manager: str, when: datetime, balance: str, loans: str = "0",
                fees: str = "0") -> None:
        self.app.report_business_figures(ctx(manager, when), customer_id, period=when.strftime("%Y-%m"),
                                         currency="CNY", deposit_balance=Decimal(balance),
                                         loans_disbursed=Decimal(loans), fee_income=Decimal(fees))

    def visit(self, customer_id: uuid.UUID, manager: str, when: datetime) -> None:
        visit_id = self.app.plan_visit(ctx(manager, when), customer_id=customer_id, purpose="introduce payroll",
                                       scheduled_at=when, staff=[manager], method="in_person",
                                       kind="acquisition").aggregate_id
        self.app.conduct_visit(ctx(manager, when), visit_id, outcome="interested")

    def reassign(self, customer_id: uuid.UUID, to: str, when: datetime, branch: str = "futian") -> None:
        if not self.app.recorder.select_events(user_id(to), limit=1):  # a customer goes only to a user (§3)
            self.app.add_user(ctx("admin-wu", when, "admin"), name=to, role="customer_manager", branch=branch)
        self.app.reassign_manager(ctx(HEAD, when, "branch_head"), customer_id, manager_id=to,
                                  reason="portfolio rebalanced")

    def target(self, indicator: str, annual: str, unit_type: str = "bank", unit_id: str = "bank",
               checkpoints: dict[str, str] | None = None, year: str = "2009") -> None:
        self.app.set_target(ctx(HEAD, at(2009, 1, 2), "branch_head"), year=year, unit_type=unit_type,
                            unit_id=unit_id, indicator=indicator, annual=Decimal(annual),
                            checkpoints={k: Decimal(v) for k, v in (checkpoints or {}).items()})

    # ------------------------------------------------------------------ then

    def rows(self, projection: str, table: str) -> list[dict[str, Any]]:
        self.runner.catch_up()
        t = getattr(self.store.tables(projection), table)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(t)).mappings()]

    def flows(self) -> dict[tuple[str, str, str, str], Decimal]:
        return {(r["month"], r["unit_type"], r["unit_id"], r["indicator"]): r["value"]
                for r in self.rows("evaluation", "unit_month")}

    def evaluate(self, period: str, unit_type: str = "bank", unit_id: str = "bank") -> dict[str, Any]:
        self.runner.catch_up()
        with self.engine.connect() as conn:
            return evaluation(conn, self.store.tables("evaluation"), self.store.tables("team"), period,
                              unit_type, unit_id)

    def actual(self, indicator: str, period: str, unit_type: str = "bank", unit_id: str = "bank") -> Any:
        return self.evaluate(period, unit_type, unit_id)["indicators"][indicator]["actual"]

    def performance(self, period: str) -> list[dict[str, Any]]:
        self.runner.catch_up()
        with self.engine.connect() as conn:
            return staff_performance(conn, self.store.tables("evaluation"), self.store.tables("team"), period)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


# ---------------------------------------------------------------------- periods


@pytest.mark.parametrize("period, expected", [
    ("2009-05", ("month", "2009-05", "2009-05")),
    ("2009-Q3", ("quarter", "2009-07", "2009-09")),
    ("2009-H1", ("half", "2009-01", "2009-06")),
    ("2009-H2", ("half", "2009-07", "2009-12")),
    ("2009", ("year", "2009-01", "2009-12")),
])
def test_a_period_names_its_first_and_last_month(period: str, expected: tuple[str, str, str]) -> None:
    assert parse_period(period) == expected


@pytest.mark.parametrize("period", ["2009-13", "2009-Q5", "2009-H3", "09", "2009/05", "May 2009", ""])
def test_a_malformed_period_is_refused_naming_it(period: str) -> None:
    with pytest.raises(ValueError, match=repr(period)):
        parse_period(period)


# ---------------------------------------------------------------------- team projection


def test_staff_rows_carry_training_awards_and_leaving(world: World) -> None:
    world.staff("mgr-li", team="north", when=at(2009, 1, 5))
    world.app.record_training(ctx(HEAD, at(2009, 2, 1), "branch_head"), "mgr-li", kind="internal",
                              topic="KYC", hours=Decimal("3.5"))
    world.app.record_training(ctx(HEAD, at(2009, 3, 1), "branch_head"), "mgr-li", kind="external",
                              topic="trade finance", hours=Decimal("8"))
    world.app.grant_award(ctx(HEAD, at(2009, 4, 1), "branch_head"), "mgr-li", kind="certificate",
                          reason="best newcomer")
    world.app.leave_team(ctx(HEAD, at(2009, 6, 30), "branch_head"), "mgr-li", reason="moved to head office")

    [row] = world.rows("team", "staff")

    assert (row["staff_code"], row["team"], row["role"], row["branch"]) == ("mgr-li", "north", "customer_manager",
                                                                          "futian")
    assert row["training_hours"] == Decimal("11.5")
    assert (row["trainings"], row["awards"], row["active"]) == (2, 1, False)
    assert row["joined_at"].replace(tzinfo=timezone.utc) == at(2009, 1, 5)
    assert row["left_at"].replace(tzinfo=timezone.utc) == at(2009, 6, 30)


def test_scheme_and_target_rows_follow_their_redefinition_and_revision(world: World) -> None:
    world.app.define_appraisal_scheme(ctx(HEAD, at(2009, 1, 2), "branch_head"), year="2009", indicators=[
        {"indicator": "new_customers", "group": "acquisition_results", "weight": Decimal(100)}])
    world.app.redefine_appraisal_scheme(ctx(HEAD, at(2009, 2, 2), "branch_head"), scheme_id("2009"), indicators=[
        {"indicator": "new_customers", "group": "acquisition_results", "weight": Decimal(70)},
        {"indicator": "average_satisfaction", "group": "service_quality", "weight": Decimal(30)}],
        reason="service quality counts")
    world.target("new_customers", "120", checkpoints={"2009-Q1": "20"})
    world.app.revise_target(ctx(HEAD, at(2009, 3, 1), "branch_head"), target_id("2009", "bank", "bank",
                                                                              "new_customers"),
                            annual=Decimal("150"), checkpoints={"2009-H1": Decimal("70")}, reason="market grew")

    [scheme] = world.rows("team", "schemes")
    [target] = world.rows("team", "targets")

    assert scheme["year"] == "2009"
    assert [(i["indicator"], Decimal(i["weight"])) for i in json.loads(scheme["indicators"])] == [
        ("new_customers", Decimal(70)), ("average_satisfaction", Decimal(30))]
    assert (target["year"], target["unit_type"], target["unit_id"], target["indicator"]) == (
        "2009", "bank", "bank", "new_customers")
    assert target["annual"] == Decimal(150)
    assert {k: Decimal(v) for k, v in json.loads(target["checkpoints"]).items()} == {"2009-H1": Decimal(70)}


# ---------------------------------------------------------------------- rollups


def test_new_customers_count_in_their_registration_month_for_each_of_their_units(world: World) -> None:
    world.staff("mgr-li", team="north")
    world.customer("mgr-li", at(2009, 5, 3))
    world.customer("mgr-li", at(2009, 5, 31))
    world.customer("mgr-ma", at(2009, 6, 1), kind="corporate", branch="nanshan")  # not a staff member

    flows = world.flows()

    for unit in (("bank", "bank"), ("branch", "futian"), ("person", "mgr-li"), ("team", "north")):
        assert flows[("2009-05", *unit, "new_customers")] == 2
        assert flows[("2009-05", *unit, "new_retail_customers")] == 2
        assert ("2009-05", *unit, "new_corporate_customers") not in flows
    for unit in (("bank", "bank"), ("branch", "nanshan"), ("person", "mgr-ma")):
        assert flows[("2009-06", *unit, "new_corporate_customers")] == 1
    assert not [key for key in flows if key[1] == "team" and key[0] == "2009-06"]


def test_a_reassigned_customer_counts_for_the_new_manager_from_then_on(world: World) -> None:
    customer = world.customer("mgr-li", at(2009, 5, 3))
    world.visit(customer, "mgr-li", at(2009, 5, 20))
    world.reassign(customer, "mgr-ma", at(2009, 6, 1))
    world.visit(customer, "mgr-ma", at(2009, 6, 15))
    world.visit(customer, "mgr-ma", at(2009, 6, 16))

    assert world.actual("visits_conducted", "2009-05", "person", "mgr-li") == 1
    assert world.actual("visits_conducted", "2009-06", "person", "mgr-li") == 0
    assert world.actual("visits_conducted", "2009-06", "person", "mgr-ma") == 2
    assert world.actual("visits_conducted", "2009-Q2", "branch", "futian") == 3
    assert world.actual("new_customers", "2009-05", "person", "mgr-li") == 1  # registration stays where it was
    assert world.actual("new_customers", "2009-05", "person", "mgr-ma") == 0


def test_deposit_balance_deltas_add_up_to_the_asset_scale_at_the_end_of_a_period(world: World) -> None:
    first = world.customer("mgr-li", at(2009, 4, 1))
    second = world.customer("mgr-li", at(2009, 4, 1))
    world.account(first, "mgr-li", at(2009, 4, 2))
    world.account(second, "mgr-li", at(2009, 4, 2))
    world.figures(first, "mgr-li", at(2009, 5, 31), "1000.50", loans="200", fees="12.25")
    world.figures(first, "mgr-li", at(2009, 6, 30), "1500.50", loans="100", fees="7.75")
    world.figures(second, "mgr-li", at(2009, 6, 30), "300")
    world.figures(first, "mgr-li", at(2009, 7, 31), "1200.50")

    flows = world.flows()

    # each delta is the new balance minus the customer's previous one
    assert flows[("2009-05", "bank", "bank", "deposit_balance_delta")] == Decimal("1000.50")
    assert flows[("2009-06", "bank", "bank", "deposit_balance_delta")] == Decimal("500") + Decimal("300")
    assert flows[("2009-07", "person", "mgr-li", "deposit_balance_delta")] == Decimal("-300")
    assert world.actual("asset_scale", "2009-05") == Decimal("1000.50")
    assert world.actual("asset_scale", "2009-H1") == Decimal("1500.50") + Decimal("300")
    assert world.actual("asset_scale", "2009-Q3") == Decimal("1200.50") + Decimal("300")
    assert world.actual("deposit_balance_growth", "2009-Q3") == Decimal("-300")
    assert world.actual("deposit_balance_growth", "2009-Q2") == Decimal("1500.50") + Decimal("300")
    assert world.actual("loans_disbursed", "2009-Q2") == Decimal("300")
    assert world.actual("fee_income", "2009-Q2") == Decimal("20.00")
    assert world.actual("accounts_opened", "2009-04") == 2


def test_the_asset_scale_carries_the_balances_of_earlier_years_into_every_period(world: World) -> None:
    customer = world.customer("mgr-li", at(2008, 3, 1))
    world.account(customer, "mgr-li", at(2008, 3, 2))
    world.figures(customer, "mgr-li", at(2008, 11, 30), "700")
    world.figures(customer, "mgr-li", at(2009, 2, 28), "900")
    world.figures(customer, "mgr-li", at(2009, 8, 31), "400")
    world.figures(customer, "mgr-li", at(2010, 1, 31), "1000")

    # the balance last reported by the end of each period
    expected = {"2008": 700, "2009-01": 700, "2009-02": 900, "2009-Q1": 900, "2009-05": 900, "2009-H1": 900,
                "2009-07": 900, "2009-08": 400, "2009-Q3": 400, "2009-11": 400, "2009-H2": 400, "2009": 400,
                "2010-01": 1000, "2010-Q1": 1000}
    for period, balance in expected.items():
        assert world.actual("asset_scale", period, "person", "mgr-li") == balance, period
    assert world.actual("deposit_balance_growth", "2009") == 400 - 700
    assert world.actual("deposit_balance_growth", "2009-H2") == 400 - 900


def test_growth_compares_with_the_previous_period_of_the_same_length_across_a_year_end(world: World) -> None:
    for day in (1, 2, 3, 4):
        world.customer("mgr-li", at(2008, 11, day))
    world.customer("mgr-li", at(2008, 5, 1))
    for day in (1, 2, 3, 4, 5, 6):
        world.customer("mgr-li", at(2009, 1, day))

    assert world.actual("growth_rate", "2009-Q1") == Decimal("50.00")  # 6 against 4 in 2008-Q4
    assert world.actual("growth_rate", "2009-01") is None  # none in 2008-12
    assert world.actual("growth_rate", "2009-H1") == Decimal("50.00")  # 6 against 4 in 2008-H2
    assert world.actual("growth_rate", "2009") == Decimal("20.00")  # 6 against 5 in 2008
    assert world.actual("new_customers", "2008-H1") == 1


def test_a_reassignment_moves_the_customers_balance_to_the_new_manager(world: World) -> None:
    customer = world.customer("mgr-li", at(2009, 4, 1))
    world.account(customer, "mgr-li", at(2009, 4, 2))
    world.figures(customer, "mgr-li", at(2009, 5, 31), "1000")
    world.reassign(customer, "mgr-ma", at(2009, 6, 3))
    world.figures(customer, "mgr-ma", at(2009, 6, 30), "1400")

    assert world.actual("asset_scale", "2009-05", "person", "mgr-li") == 1000
    assert world.actual("asset_scale", "2009-06", "person", "mgr-li") == 0
    assert world.actual("asset_scale", "2009-06", "person", "mgr-ma") == 1400
    assert world.actual("deposit_balance_growth", "2009-06", "person", "mgr-ma") == 1400
    assert world.actual("asset_scale", "2009-06", "bank", "bank") == 1400
    assert world.actual("deposit_balance_growth", "2009-06", "bank", "bank") == 400


def test_joining_and_leaving_a_team_moves_the_managers_portfolio(world: World) -> None:
    customer = world.customer("mgr-li", at(2009, 4, 1))
    world.account(customer, "mgr-li", at(2009, 4, 2))
    world.figures(customer, "mgr-li", at(2009, 4, 30), "800")
    world.staff("mgr-li", team="north", when=at(2009, 5, 4))
    world.app.leave_team(ctx(HEAD, at(2009, 7, 1), "branch_head"), "mgr-li", reason="left the bank")

    assert world.actual("asset_scale", "2009-04", "team", "north") == 0
    assert world.actual("asset_scale", "2009-05", "team", "north") == 800
    assert world.actual("asset_scale", "2009-07", "team", "north") == 0
    assert world.actual("asset_scale", "2009-07", "person", "mgr-li") == 800


def test_active_customers_over_a_quarter_are_counted_once_each(world: World) -> None:
    busy = world.customer("mgr-li", at(2009, 6, 1))
    world.account(busy, "mgr-li", at(2009, 6, 2))
    other = world.customer("mgr-li", at(2009, 6, 1))
    world.customer("mgr-li", at(2009, 7, 1))  # registered in the quarter, never visited
    world.visit(busy, "mgr-li", at(2009, 7, 5))
    world.visit(busy, "mgr-li", at(2009, 8, 5))
    world.figures(busy, "mgr-li", at(2009, 9, 30), "10")
    world.visit(other, "mgr-li", at(2009, 8, 9))

    assert [world.actual("active_customers", m) for m in ("2009-07", "2009-08", "2009-09")] == [1, 2, 1]
    assert world.actual("active_customers", "2009-Q3") == 2
    assert world.actual("active_customers", "2009-Q3", "person", "mgr-li") == 2
    assert world.actual("active_customers", "2009-Q2") == 0


def test_the_credit_mix_moves_a_customer_whose_standing_is_recorded_again(world: World) -> None:
    first = world.customer("mgr-li", at(2009, 5, 3))
    second = world.customer("mgr-li", at(2009, 5, 4))
    third = world.customer("mgr-li", at(2009, 5, 5))
    world.customer("mgr-li", at(2009, 5, 6))  # no standing recorded
    for customer in (first, second, third):
        world.app.record_credit_standing(ctx("mgr-li", at(2009, 5, 7)), customer, source="credit_bureau",
                                         result="no_default")
    world.app.record_credit_standing(ctx("mgr-li", at(2009, 7, 1)), first, source="credit_bureau",
                                     result="in_default")

    report = world.evaluate("2009-05")

    assert report["credit_rating_mix"] == {"in_default": 1, "no_default": 2}
    assert report["indicators"]["good_credit_share"]["actual"] == Decimal("50.00")  # 2 of 4 new customers
    assert world.evaluate("2009-07")["credit_rating_mix"] == {}
    assert world.evaluate("2009-05", "person", "mgr-li")["credit_rating_mix"] == {"in_default": 1, "no_default": 2}


def test_growth_rate_compares_with_the_previous_period_of_the_same_length(world: World) -> None:
    for month, count in ((3, 1), (4, 2), (5, 3), (6, 1)):
        for day in range(1, count + 1):
            world.customer("mgr-li", at(2009, month, day))

    assert world.actual("growth_rate", "2009-03") is None  # February had none
    assert world.actual("growth_rate", "2009-05") == Decimal("50.00")  # 3 against 2
    assert world.actual("growth_rate", "2009-Q2") == Decimal("500.00")  # 6 against 1 (Q1)
    assert world.actual("growth_rate", "2009-06") == Decimal("-66.67")  # 1 against 3


def test_satisfaction_and_qualification_rates(world: World) -> None:
    won = world.customer("mgr-li", at(2009, 5, 1))
    world.account(won, "mgr-li", at(2009, 5, 2))
    lost = world.customer("mgr-li", at(2009, 5, 1))
    world.app.screen_customer(ctx("screening-model", at(2009, 5, 2), "system"), lost)
    world.app.review_customer(ctx(REVIEWER, at(2009, 5, 2), "reviewer"), lost, decision="rejected",
                              reason="income not verifiable")
    third = world.customer("mgr-li", at(2009, 5, 1))
    world.account(third, "mgr-li", at(2009, 5, 2))
    for customer, score in ((won, 5), (won, 4), (third, 4)):
        world.app.record_follow_up(ctx("mgr-li", at(2009, 5, 20)), customer, satisfaction=score, feedback="ok")

    assert world.actual("qualification_rate", "2009-05") == Decimal("66.67")  # 2 of 3 reviewed
    assert world.actual("average_satisfaction", "2009-05") == Decimal("4.33")  # 13 / 3
    assert world.actual("average_satisfaction", "2009-06") is None


# ---------------------------------------------------------------------- targets


def test_a_flow_target_is_pro_rated_by_months_unless_a_checkpoint_names_the_period(world: World) -> None:
    world.target("new_customers", "120", checkpoints={"2009-Q3": "45", "2009-07": "17"})

    def target(period: str) -> Decimal:
        return world.evaluate(period)["indicators"]["new_customers"]["target"]

    assert target("2009-05") == Decimal("10.00")  # 120 × 1/12
    assert target("2009-H1") == Decimal("60.00")  # 120 × 6/12
    assert target("2009-Q2") == Decimal("30.00")  # 120 × 3/12
    assert target("2009-Q3") == Decimal("45.00")  # checkpoint
    assert target("2009-07") == Decimal("17.00")  # checkpoint
    assert target("2009-08") == Decimal("10.00")
    assert target("2009") == Decimal("120.00")


def test_a_level_target_is_the_annual_value_for_any_period(world: World) -> None:
    world.target("asset_scale", "5000", checkpoints={"2009-H1": "3000"})

    assert world.evaluate("2009-05")["indicators"]["asset_scale"]["target"] == Decimal("5000.00")
    assert world.evaluate("2009-Q4")["indicators"]["asset_scale"]["target"] == Decimal("5000.00")
    assert world.evaluate("2009-H1")["indicators"]["asset_scale"]["target"] == Decimal("3000.00")


def test_attainment_and_gap_compare_the_actual_with_the_period_target(world: World) -> None:
    world.staff("mgr-li", team="north")
    world.target("new_customers", "60", unit_type="team", unit_id="north")
    world.target("asset_scale", "5000", unit_type="team", unit_id="north")
    world.target("new_customers", "100", unit_type="team", unit_id="north", year="2010")
    for day in (1, 2, 3):
        world.customer("mgr-li", at(2009, 5, day))
    world.account(world.customer("mgr-li", at(2009, 4, 1)), "mgr-li", at(2009, 4, 2))
    customer = world.customer("mgr-li", at(2009, 4, 1))
    world.account(customer, "mgr-li", at(2009, 4, 2))
    world.figures(customer, "mgr-li", at(2009, 5, 30), "1500")

    report = world.evaluate("2009-05", "team", "north")["indicators"]

    # new customers: target 60 × 1/12 = 5; actual 3 -> 60 %, 2 short
    assert report["new_customers"] == {"actual": 3, "target": Decimal("5.00"), "attainment_pct": Decimal("60.00"),
                                       "gap": Decimal("-2.00")}
    assert report["asset_scale"]["attainment_pct"] == Decimal("30.00")
    assert report["asset_scale"]["gap"] == Decimal("-3500.00")
    assert report["accounts_opened"] == {"actual": 0, "target": None, "attainment_pct": None, "gap": None}
    assert world.evaluate("2009-05", "person", "mgr-li")["indicators"]["new_customers"]["target"] is None


def test_a_target_of_zero_has_no_attainment(world: World) -> None:
    world.target("visits_conducted", "0")
    customer = world.customer("mgr-li", at(2009, 5, 1))
    world.visit(customer, "mgr-li", at(2009, 5, 2))

    line = world.evaluate("2009-05")["indicators"]["visits_conducted"]

    assert (line["actual"], line["target"], line["attainment_pct"], line["gap"]) == (1, Decimal("0.00"), None,
                                                                                   Decimal("1.00"))


# ---------------------------------------------------------------------- appraisal


def _scheme(world: World) -> None:
    world.app.define_appraisal_scheme(ctx(HEAD, at(2009, 1, 2), "branch_head"), year="2009", indicators=[
        {"indicator": "new_customers", "group": "acquisition_results", "weight": Decimal(60)},
        {"indicator": "accounts_opened", "group": "customer_quality", "weight": Decimal(40)}])


def test_staff_performance_scores_against_targets_or_the_best_person(world: World) -> None:
    _scheme(world)
    for code in ("mgr-a", "mgr-b", "mgr-c"):
        world.staff(code)
    world.target("new_customers", "24", unit_type="person", unit_id="mgr-a")  # May: 2
    world.target("accounts_opened", "36", unit_type="person", unit_id="mgr-b")  # May: 3
    for day in (1, 2, 3, 4):
        world.customer("mgr-a", at(2009, 5, day))
    world.account(world.customer("mgr-a", at(2009, 5, 5)), "mgr-a", at(2009, 5, 6))
    for day in (1, 2):
        world.account(world.customer("mgr-b", at(2009, 5, day)), "mgr-b", at(2009, 5, 6))

    ranking = world.performance("2009-05")

    # new customers: a 5 of target 2 -> capped at 150; b 2 of best 5 -> 40; c 0
    # accounts opened: a 1 of best 2 -> 50; b 2 of target 3 -> 66.666…; c 0
    # composite a = 0.6 × 150 + 0.4 × 50 = 110; b = 0.6 × 40 + 0.4 × 66.666… = 50.67; c = 0
    assert [(r["rank"], r["person_id"], r["composite"]) for r in ranking] == [
        (1, "mgr-a", Decimal("110.00")), (2, "mgr-b", Decimal("50.67")), (3, "mgr-c", Decimal("0.00"))]
    a, b = ranking[0]["indicators"], ranking[1]["indicators"]
    assert (a["new_customers"]["score"], a["new_customers"]["basis"]) == (Decimal("150.00"), "target")
    assert (a["accounts_opened"]["score"], a["accounts_opened"]["basis"]) == (Decimal("50.00"), "best")
    assert (b["new_customers"]["score"], b["accounts_opened"]["score"]) == (Decimal("40.00"), Decimal("66.67"))
    assert b["accounts_opened"]["target"] == Decimal("3.00")


def test_equal_composites_share_a_rank_and_are_listed_by_person(world: World) -> None:
    _scheme(world)
    for code in ("mgr-d", "mgr-c", "mgr-b", "mgr-a"):
        world.staff(code)
    world.customer("mgr-b", at(2009, 5, 1))
    world.customer("mgr-d", at(2009, 5, 1))

    ranking = world.performance("2009-05")

    # b and d: 1 new customer = the best -> 100 × 0.6 = 60; accounts: best is 0 -> 0. a and c: 0.
    assert [(r["rank"], r["person_id"], r["composite"]) for r in ranking] == [
        (1, "mgr-b", Decimal("60.00")), (1, "mgr-d", Decimal("60.00")),
        (3, "mgr-a", Decimal("0.00")), (3, "mgr-c", Decimal("0.00"))]


def test_staff_performance_lists_members_of_the_period_and_people_with_figures(world: World) -> None:
    _scheme(world)
    world.staff("mgr-quiet", when=at(2009, 1, 5))
    world.staff("mgr-gone", when=at(2009, 1, 5))
    world.app.leave_team(ctx(HEAD, at(2009, 3, 31), "branch_head"), "mgr-gone", reason="retired")
    world.staff("mgr-late", when=at(2009, 6, 1))
    world.customer("campaign-desk", at(2009, 5, 9))  # a person who is not a staff member

    people = {r["person_id"]: r for r in world.performance("2009-05")}

    assert set(people) == {"mgr-quiet", "campaign-desk"}
    assert people["mgr-quiet"]["is_staff"] and not people["campaign-desk"]["is_staff"]
    assert people["mgr-quiet"]["team"] == "north"


def test_staff_performance_needs_the_years_appraisal_scheme(world: World) -> None:
    _scheme(world)
    with pytest.raises(NoAppraisalScheme, match="2010"):
        world.performance("2010-05")


# ---------------------------------------------------------------------- replay


def test_rebuilding_the_evaluation_gives_the_same_rows(world: World) -> None:
    world.staff("mgr-li", team="north")
    customer = world.customer("mgr-li", at(2009, 4, 1), kind="corporate")
    world.account(customer, "mgr-li", at(2009, 4, 2))
    world.app.record_credit_standing(ctx("mgr-li", at(2009, 4, 3)), customer, source="bureau", result="no_default")
    world.visit(customer, "mgr-li", at(2009, 4, 5))
    world.figures(customer, "mgr-li", at(2009, 4, 30), "2500.75", loans="1000", fees="3.5")
    world.reassign(customer, "mgr-ma", at(2009, 5, 2))
    world.figures(customer, "mgr-ma", at(2009, 5, 31), "2000")
    world.runner.catch_up()
    before = world.evaluate("2009-H1", "branch", "futian")

    assert world.runner.verify() == []
    world.runner.rebuild("evaluation")

    assert world.evaluate("2009-H1", "branch", "futian") == before
    assert before["indicators"]["asset_scale"]["actual"] == Decimal("2000")


@pytest.mark.parametrize("unit_type, unit_id", [("region", "south"), ("bank", "futian")])
def test_an_unknown_unit_is_refused(world: World, unit_type: str, unit_id: str) -> None:
    with pytest.raises(ValueError, match=repr(unit_id if unit_type == "bank" else unit_type)):
        world.evaluate("2009-05", unit_type, unit_id)


def test_a_member_without_figures_in_the_period_keeps_the_previous_periods_base(world: World) -> None:
    """A team member with two new customers in April and none in May: May's growth rate is
    measured against April's two (-100 %), as the member's own evaluation says."""
    world.app.define_appraisal_scheme(ctx(HEAD, at(2009, 1, 2), "branch_head"), year="2009", indicators=[
        {"indicator": "growth_rate", "group": "acquisition_results", "weight": Decimal(100)}])
    world.staff("mgr-quiet", when=at(2009, 1, 5))
    world.customer("mgr-quiet", at(2009, 4, 9))
    world.customer("mgr-quiet", at(2009, 4, 10))

    [row] = world.performance("2009-05")
    own = world.evaluate("2009-05", unit_type="person", unit_id="mgr-quiet")["indicators"]["growth_rate"]["actual"]

    assert row["person_id"] == "mgr-quiet"
    assert row["indicators"]["growth_rate"]["actual"] == own == Decimal("-100.00")
