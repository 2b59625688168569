"""Evaluation read models (measures §1, §3, §5): the team, its targets, and monthly rollups.

Two projections (see :mod:`projections.framework` for generations and tracking):

``team`` (:class:`TeamProjection`)
    - ``staff``: one row per staff code — name, role, branch, team, active,
      training hours (``Decimal`` hours) and count, awards, ``joined_at`` /
      ``left_at`` (business time, UTC);
    - ``schemes``: one row per year — the appraisal indicators as JSON text
      ``[{"indicator", "group", "weight"}]`` (weights as decimal strings);
    - ``targets``: one row per (year, unit type, unit id, indicator) — the
      ``annual`` value and the checkpoints as JSON text ``{"2009-Q3": "120", ...}``;
    - ``team_keys``: aggregate id -> natural key, for the events that carry only the id.

``evaluation`` (:class:`EvaluationProjection`)
    - ``unit_month``: (month ``YYYY-MM``, unit type, unit id, indicator) -> ``value``,
      the month's flows per organisation unit, so a report reads a few rows;
    - ``unit_period``: the same flows summed per quarter, half and year
      (``2009-Q3``, ``2009-H1``, ``2009``; :func:`period_keys`), kept with
      ``unit_month``, so a report of a longer period, or of everything up to a
      month, reads one row per indicator and period instead of one per month;
    - ``activity``: (customer, month) -> the customer's branch, manager and team
      (``""`` for none), for distinct counts of active customers over several months;
    - ``active_counts``: (period key, unit type, unit id) -> ``customers``, the
      distinct active customers of every month, quarter, half and year
      (:func:`period_keys`) per unit, kept from ``activity`` as it changes, so a
      report reads one row per unit instead of counting ``activity``;
    - ``eval_customers``, ``eval_visits``, ``eval_staff``, ``eval_portfolios``: what
      the projection needs to attribute events (it never reads another projection).

Attribution. An event of a customer (or of a visit to one) counts for the
organisation units of the customer at that point of the event log:
``("bank", "bank")``, ``("branch", branch)``, ``("person", manager_id)`` and,
when the manager is a staff member (staff code = manager id) who is in a
non-empty team and has not left it, ``("team", team)``. A
``ManagerReassigned`` changes the units of the customer's later events. The
month of an event is the month of its ``occurred_at`` (business time, UTC):
a new customer counts in the month of registration, and business figures in
the month they were reported (not by their ``period`` field). Money is summed as
reported (one reporting currency is assumed), ``Decimal`` in major units.

Monthly flows in ``unit_month`` (indicator column):

- ``new_customers``, ``new_corporate_customers``, ``new_retail_customers``: registrations;
- ``accounts_opened``, ``visits_conducted``, ``reviewed``, ``qualified`` (manual reviews);
- ``loans_disbursed``, ``fee_income``: as reported in business figures;
- ``deposit_balance_delta``: the customer's reported deposit balance minus its
  previous reported balance (0 before the first report). A unit's asset scale at
  the end of a month is the running sum of its deltas up to that month. When a
  customer changes manager, or a manager joins or leaves a team, the customer's
  (or the manager's whole portfolio's) latest balance moves out of the old units
  and into the new ones in that month, so a unit's asset scale is always the sum
  of the latest balances of the customers it holds;
- ``satisfaction_sum``, ``satisfaction_count``: follow-up scores 1-5;
- ``credit_<result>``: customers registered that month by recorded credit
  standing, counted for the month and units of registration; a re-recorded
  standing moves the customer from the old result to the new one.

Report rules (:func:`evaluation`), for a period ``YYYY-MM``, ``YYYY-Qn``,
``YYYY-Hn`` or ``YYYY`` (:func:`parse_period`) and one unit:

- counts and money are the sums of the period's months; ``active_customers``
  counts distinct customers with a conducted visit or business figures in the
  period (from ``activity``, where a customer's month counts for the units of
  its latest activity in that month);
- ``growth_rate`` = (new customers − new customers of the previous period of
  the same length) / the previous × 100; ``None`` when the previous is 0;
- ``asset_scale`` = the sum of deposit balances at the end of the period;
  ``deposit_balance_growth`` = its change over the period;
- ``average_satisfaction`` = mean follow-up score (``None`` without follow-ups);
- ``qualification_rate`` = qualified / reviewed × 100 (``None`` without reviews);
- ``good_credit_share`` = customers registered in the period whose credit
  standing is ``no_default`` / new customers × 100 (``None`` without new customers);
- ``credit_rating_mix`` = ``{result: customers}`` registered in the period.

Targets (measures §1, §5). For each indicator with a :class:`domain.team.Target`
for (the period's year, unit type, unit id, indicator), the target for the
period is the checkpoint given for exactly that period key (``2009-05``,
``2009-Q3``, ``2009-H1``); otherwise, for a flow or count indicator, the annual
value × months in the period / 12, and for a level indicator
(:data:`LEVEL_INDICATORS`) the annual value itself. ``attainment_pct`` =
actual / target × 100 (``None`` when the target is 0 or the actual is ``None``)
and ``gap`` = actual − target. Percentages, averages, targets and gaps are
``Decimal`` rounded half-up to 0.01; attainment is computed from the unrounded target.

Appraisal (:func:`staff_performance`, measures §3). Under the year's
appraisal scheme, each person gets a score 0-150 per indicator:

- with a person target above 0: ``min(actual / target, 1.5) × 100``;
- otherwise (no target, or a target of 0), relative to the best person in the period: ``actual / max × 100``,
  where max is the highest actual among the people listed (0 when max ≤ 0);
- a missing actual (``None``) scores 0, and no score goes below 0.

``composite = Σ weight × score / 100`` (weights sum to 100), rounded half-up to
0.01 (scores are rounded for display only). People are ranked by the rounded
composite, descending; equal composites share a rank
(the next rank skips: 1, 2, 2, 4) and are listed by person id. The people are
the staff members who were in the team during the period (joined before its
end, not left before its start), even without activity, and every other person
unit with figures in the period.
"""

from __future__ import annotations

import functools

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Callable, Iterable, Sequence
from uuid import UUID

from sqlalchemy import Boolean, Column, DateTime, Integer, Numeric, String, Text, and_, func, or_, select
from sqlalchemy.engine import Connection

from domain.customer import Customer
from domain.team import INDICATORS, UNIT_TYPES, AppraisalScheme, Staff, Target, staff_id
from domain.visit import Visit
from projections.framework import Batch, Projection, TableSpec, Tables, utc, uuid_text

#: Indicators whose target is a level for the whole year, not pro-rated by months.
LEVEL_INDICATORS = frozenset({"growth_rate", "asset_scale", "average_satisfaction", "qualification_rate",
                              "good_credit_share"})
#: Indicators that are whole counts.
COUNT_INDICATORS = frozenset({"new_corporate_customers", "new_retail_customers", "new_customers", "accounts_opened",
                              "active_customers", "visits_conducted"})
CREDIT_PREFIX = "credit_"
GOOD_CREDIT = "no_default"

ZERO = Decimal(0)
CENT = Decimal("0.01")
HUNDRED = Decimal(100)
CAP = Decimal("1.5")

Unit = tuple[str, str]
BANK: Unit = ("bank", "bank")


def _money() -> Numeric[Decimal]:
    """Money and counters: ``Decimal`` with 4 decimal places."""
    return Numeric(24, 4)


@functools.lru_cache(maxsize=4096)
def _staff_key(staff_code: str) -> str:
    """The eval_staff key (the Staff aggregate id as text) of a staff code."""
    return str(staff_id(staff_code))


@functools.lru_cache(maxsize=1 << 14)
def _month(value: datetime) -> str:
    """``YYYY-MM`` of ``value`` in UTC (naive values are UTC)."""
    moment = utc(value)
    return f"{moment.year:04d}-{moment.month:02d}"  # type: ignore[union-attr]  # "%Y" is unpadded before 1000


def _round(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _aggregate(event: Any) -> str:
    """The name of the aggregate class an event belongs to (``Customer``)."""
    return type(event).__qualname__.split(".", 1)[0]


def _pct(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    if not whole:
        return None
    return _round(Decimal(part) * HUNDRED / Decimal(whole))


# ==========================================================================
# The team projection
# ==========================================================================


def _staff_columns() -> list[Column[Any]]:
    return [
        Column("staff_code", String(128), primary_key=True),
        Column("display_name", String(256), nullable=False),
        Column("role", String(32), nullable=False, index=True),
        Column("branch", String(128), nullable=False, index=True),
        Column("team", String(128), nullable=False, index=True),
        Column("active", Boolean, nullable=False),
        Column("training_hours", Numeric(14, 4), nullable=False),
        Column("trainings", Integer, nullable=False),
        Column("awards", Integer, nullable=False),
        Column("joined_at", DateTime(timezone=True), nullable=False),
        Column("left_at", DateTime(timezone=True)),
    ]


def _scheme_columns() -> list[Column[Any]]:
    return [
        Column("year", String(4), primary_key=True),
        Column("indicators", Text, nullable=False),
    ]


def _target_columns() -> list[Column[Any]]:
    return [
        Column("year", String(4), primary_key=True),
        Column("unit_type", String(16), primary_key=True),
        Column("unit_id", String(128), primary_key=True),
        Column("indicator", String(64), primary_key=True),
        Column("annual", _money(), nullable=False),
        Column("checkpoints", Text, nullable=False),
    ]


def _team_key_columns() -> list[Column[Any]]:
    return [
        Column("aggregate_id", String(36), primary_key=True),
        Column("natural_key", Text, nullable=False),
    ]


def _decimal_json(values: dict[str, Decimal]) -> str:
    return json.dumps({k: str(v) for k, v in values.items()}, sort_keys=True)


def _scheme_json(indicators: Iterable[dict[str, Any]]) -> str:
    return json.dumps([{"indicator": i["indicator"], "group": i["group"], "weight": str(i["weight"])}
                       for i in indicators])


AS_OF_CHECKPOINT_EVERY = 1000
"""Positions between the checkpoints at which the evaluation and team tables keep their
row versions: a report as of a recorded time reads the versions at the checkpoint
before it and applies at most this many events more."""


class TeamProjection(Projection):
    """Staff, appraisal schemes and targets (measures §1, §3), for queries and reports."""

    name = "team"
    checkpoint_every = AS_OF_CHECKPOINT_EVERY
    fill_apart = True
    specs = (
        TableSpec("staff", _staff_columns),
        TableSpec("schemes", _scheme_columns),
        TableSpec("targets", _target_columns),
        TableSpec("team_keys", _team_key_columns),
    )

    def personal_fields_read(self, event_class: type) -> tuple[str, ...]:
        """No personal field: staff, schemes and targets carry no customer's personal data."""
        return ()

    def prefetch(self, batch: Batch, events: Sequence[Any]) -> None:
        batch.preload("team_keys", {str(e.originator_id) for e in events
                                    if _aggregate(e) in ("Staff", "AppraisalScheme", "Target")})

    def _remember(self, batch: Batch, aggregate_id: UUID, *key: str) -> None:
        batch.put("team_keys", {"aggregate_id": str(aggregate_id), "natural_key": json.dumps(list(key))})

    def _key(self, batch: Batch, aggregate_id: UUID) -> tuple[str, ...]:
        row = batch.get("team_keys", str(aggregate_id))
        if row is None:
            raise LookupError(f"{aggregate_id} has no key: its first event was not projected")
        return tuple(json.loads(row["natural_key"]))

    def _row(self, batch: Batch, base: str, aggregate_id: UUID) -> dict[str, Any]:
        key = self._key(batch, aggregate_id)
        row = batch.get(base, key[0] if len(key) == 1 else key)
        if row is None:
            raise LookupError(f"{base} row {key} of {aggregate_id} is missing")
        return row

    # ------------------------------------------------------------------ staff

    def _joined(self, batch: Batch, e: Staff.JoinedTeam) -> None:
        self._remember(batch, e.originator_id, e.staff_code)
        batch.put("staff", {
            "staff_code": e.staff_code, "display_name": e.display_name, "role": e.role, "branch": e.branch,
            "team": e.team, "active": True, "training_hours": ZERO, "trainings": 0, "awards": 0,
            "joined_at": utc(e.occurred_at), "left_at": None,
        })

    def _trained(self, batch: Batch, e: Staff.TrainingRecorded) -> None:
        row = self._row(batch, "staff", e.originator_id)
        row["training_hours"] = Decimal(row["training_hours"]) + e.hours
        row["trainings"] += 1
        batch.put("staff", row)

    def _awarded(self, batch: Batch, e: Staff.AwardGranted) -> None:
        row = self._row(batch, "staff", e.originator_id)
        row["awards"] += 1
        batch.put("staff", row)

    def _left(self, batch: Batch, e: Staff.LeftTeam) -> None:
        row = self._row(batch, "staff", e.originator_id)
        row["active"], row["left_at"] = False, utc(e.occurred_at)
        batch.put("staff", row)

    # ------------------------------------------------------------------ schemes and targets

    def _scheme_defined(self, batch: Batch, e: AppraisalScheme.Defined) -> None:
        self._remember(batch, e.originator_id, e.year)
        batch.put("schemes", {"year": e.year, "indicators": _scheme_json(e.indicators)})

    def _scheme_redefined(self, batch: Batch, e: AppraisalScheme.Redefined) -> None:
        row = self._row(batch, "schemes", e.originator_id)
        row["indicators"] = _scheme_json(e.indicators)
        batch.put("schemes", row)

    def _target_set(self, batch: Batch, e: Target.Set) -> None:
        self._remember(batch, e.originator_id, e.year, e.unit_type, e.unit_id, e.indicator)
        batch.put("targets", {"year": e.year, "unit_type": e.unit_type, "unit_id": e.unit_id,
                              "indicator": e.indicator, "annual": e.annual,
                              "checkpoints": _decimal_json(e.checkpoints)})

    def _target_revised(self, batch: Batch, e: Target.Revised) -> None:
        row = self._row(batch, "targets", e.originator_id)
        row["annual"], row["checkpoints"] = e.annual, _decimal_json(e.checkpoints)
        batch.put("targets", row)

    def handlers(self) -> dict[type, Callable[[Batch, Any], None]]:
        return {
            Staff.JoinedTeam: self._joined,
            Staff.TrainingRecorded: self._trained,
            Staff.AwardGranted: self._awarded,
            Staff.LeftTeam: self._left,
            AppraisalScheme.Defined: self._scheme_defined,
            AppraisalScheme.Redefined: self._scheme_redefined,
            Target.Set: self._target_set,
            Target.Revised: self._target_revised,
        }


# ==========================================================================
# The evaluation projection
# ==========================================================================


def _unit_flow_columns(key: str) -> list[Column[Any]]:
    """A unit's indicator values by ``key``: ``month`` (``YYYY-MM``) or ``period`` (``YYYY-Qn``, ``-Hn``, ``YYYY``)."""
    return [
        Column(key, String(7), primary_key=True),
        Column("unit_type", String(16), primary_key=True),
        Column("unit_id", String(128), primary_key=True),
        Column("indicator", String(), primary_key=True),
        Column("value", _money(), nullable=False),
    ]


def _activity_columns() -> list[Column[Any]]:
    return [
        Column("customer_id", String(36), primary_key=True),
        Column("month", String(7), primary_key=True, index=True),
        Column("branch", String(128), nullable=False, index=True),
        Column("manager_id", String(128), nullable=False, index=True),
        Column("team", String(128), nullable=False, index=True),
    ]


def _active_count_columns() -> list[Column[Any]]:
    return [
        Column("period", String(7), primary_key=True),
        Column("unit_type", String(16), primary_key=True),
        Column("unit_id", String(128), primary_key=True),
        Column("customers", Integer, nullable=False),
    ]


def _eval_customer_columns() -> list[Column[Any]]:
    return [
        Column("customer_id", String(36), primary_key=True),
        Column("kind", String(16), nullable=False),
        Column("branch", String(128), nullable=False),
        Column("manager_id", String(128), nullable=False),
        Column("registered_month", String(7), nullable=False),
        Column("registered_manager_id", String(128), nullable=False),
        Column("registered_team", String(128), nullable=False),
        Column("credit_result", String()),
        Column("last_deposit_balance", _money(), nullable=False),
        Column("currency", String(3)),
    ]


def _eval_visit_columns() -> list[Column[Any]]:
    return [
        Column("visit_id", String(36), primary_key=True),
        Column("customer_id", String(36), nullable=False),
    ]


def _eval_staff_columns() -> list[Column[Any]]:
    return [
        Column("staff_id", String(36), primary_key=True),
        Column("staff_code", String(128), nullable=False),
        Column("team", String(128), nullable=False),
        Column("active", Boolean, nullable=False),
    ]


def _eval_portfolio_columns() -> list[Column[Any]]:
    return [
        Column("manager_id", String(128), primary_key=True),
        Column("deposit_balance", _money(), nullable=False),
    ]


def _active_units(activity: dict[str, Any]) -> set[Unit]:
    """The units an ``activity`` row counts the customer as active for (none with an empty id)."""
    found = {BANK}
    for unit_type, column in _ACTIVITY_COLUMN.items():
        if activity[column] != "":
            found.add((unit_type, activity[column]))
    return found


_PERIOD_MONTHS = {
    "": [f"{m:02d}" for m in range(1, 13)],
    **{f"-{m:02d}": [f"{m:02d}"] for m in range(1, 13)},
    **{f"-Q{q}": [f"{m:02d}" for m in range(3 * q - 2, 3 * q + 1)] for q in range(1, 5)},
    **{f"-H{h}": [f"{m:02d}" for m in range(6 * h - 5, 6 * h + 1)] for h in range(1, 3)},
}
"""The months (``MM``) of each period kind, by the period key's suffix after the year."""


@functools.lru_cache(maxsize=1024)
def _longer_periods(month: str) -> tuple[str, str, str]:
    """The quarter, half and year keys of a month (:func:`period_keys` after the month)."""
    _, quarter, half, year = period_keys(month)
    return quarter, half, year


def period_keys(month: str) -> list[str]:
    """The keys of the month, quarter, half and year a month ``YYYY-MM`` lies in: ``2009-05`` ->
    ``["2009-05", "2009-Q2", "2009-H1", "2009"]``."""
    year, number = month[:4], int(month[5:7])
    return [month, f"{year}-Q{(number + 2) // 3}", f"{year}-H{(number + 5) // 6}", year]


def units(branch: str, manager_id: str, team: str) -> list[Unit]:
    """The organisation units an event of a customer counts for."""
    found = [BANK, ("branch", branch), ("person", manager_id)]
    if team:
        found.append(("team", team))
    return found


class EvaluationProjection(Projection):
    """Monthly flows per organisation unit and active customers (measures §5)."""

    name = "evaluation"
    checkpoint_every = AS_OF_CHECKPOINT_EVERY
    fill_apart = True
    specs = (
        TableSpec("unit_month", lambda: _unit_flow_columns("month")),
        TableSpec("unit_period", lambda: _unit_flow_columns("period")),
        TableSpec("activity", _activity_columns),
        TableSpec("active_counts", _active_count_columns),
        TableSpec("eval_customers", _eval_customer_columns),
        TableSpec("eval_visits", _eval_visit_columns),
        TableSpec("eval_staff", _eval_staff_columns),
        TableSpec("eval_portfolios", _eval_portfolio_columns),
    )

    def personal_fields_read(self, event_class: type) -> tuple[str, ...]:
        """No personal field: the flows count customers, visits and business figures, never a name or a text
        about a person."""
        return ()

    def prefetch(self, batch: Batch, events: Sequence[Any]) -> None:
        customer_ids: set[str] = set()
        visit_ids: set[str] = set()
        planned: set[str] = set()
        managers: set[str] = set()
        staff_ids: set[str] = set()
        active_ids: set[str] = set()
        for e in events:
            owner = _aggregate(e)
            if owner == "Customer":
                customer_ids.add(str(e.originator_id))
                if isinstance(e, Customer.BusinessFiguresReported):
                    active_ids.add(str(e.originator_id))
                if isinstance(e, (Customer.Registered, Customer.ManagerReassigned)):
                    managers.add(e.manager_id)
            elif owner == "Visit":
                if isinstance(e, Visit.Planned):
                    planned.add(str(e.originator_id))
                    customer_ids.add(str(e.customer_id))
                    active_ids.add(str(e.customer_id))
                else:
                    visit_ids.add(str(e.originator_id))
            elif owner == "Staff":
                staff_ids.add(str(e.originator_id))
                if isinstance(e, Staff.JoinedTeam):
                    managers.add(e.staff_code)
        visit_ids -= planned
        batch.preload("eval_visits", visit_ids)
        for visit_id in visit_ids:
            visit = batch.get("eval_visits", visit_id)
            if visit is not None:
                customer_ids.add(visit["customer_id"])
                active_ids.add(visit["customer_id"])
        batch.preload("eval_customers", customer_ids)
        for customer_id in customer_ids:
            row = batch.get("eval_customers", customer_id)
            if row is not None:
                managers.add(row["manager_id"])
        batch.preload("eval_staff", staff_ids | {_staff_key(m) for m in managers})
        batch.preload("eval_portfolios", managers)
        months = {_month(e.occurred_at) for e in events}
        for customer_id in customer_ids:
            row = batch.get("eval_customers", customer_id)
            if row is not None:
                months.add(row["registered_month"])
        batch.preload_where("unit_month", "month", months)
        batch.preload_where("unit_period", "period", {key for m in months for key in period_keys(m)[1:]})
        if active_ids:
            batch.preload_where("activity", "customer_id", active_ids)
            batch.preload_where("active_counts", "period", {key for m in months for key in period_keys(m)})

    # ------------------------------------------------------------------ helpers

    def _customer(self, batch: Batch, customer_id: UUID | str) -> dict[str, Any]:
        row = batch.get("eval_customers", uuid_text(customer_id))
        if row is None:
            raise LookupError(f"customer {customer_id} has no row: its Registered event was not projected")
        return row

    def _team_of(self, batch: Batch, manager_id: str) -> str:
        staff = batch.get("eval_staff", _staff_key(manager_id))
        return staff["team"] if staff is not None and staff["active"] else ""

    def _units_now(self, batch: Batch, row: dict[str, Any]) -> list[Unit]:
        return units(row["branch"], row["manager_id"], self._team_of(batch, row["manager_id"]))

    @staticmethod
    def _add(batch: Batch, month: str, where: Iterable[Unit], indicator: str, by: Decimal | int) -> None:
        if by:
            longer = _longer_periods(month)
            for unit_type, unit_id in where:
                batch.increment("unit_month", (month, unit_type, unit_id, indicator), "value", by)
                for period in longer:
                    batch.increment("unit_period", (period, unit_type, unit_id, indicator), "value", by)

    @staticmethod
    def _portfolio(batch: Batch, manager_id: str, by: Decimal) -> None:
        if by:
            row = batch.get("eval_portfolios", manager_id) or {"manager_id": manager_id, "deposit_balance": ZERO}
            row["deposit_balance"] = Decimal(row["deposit_balance"]) + by
            batch.put("eval_portfolios", row)

    def _active(self, batch: Batch, row: dict[str, Any], month: str) -> None:
        # The units of the customer's latest activity in the month.
        customer_id = row["customer_id"]
        new = {"customer_id": customer_id, "month": month, "branch": row["branch"],
               "manager_id": row["manager_id"], "team": self._team_of(batch, row["manager_id"])}
        old = batch.get("activity", (customer_id, month))
        if old is not None and all(old[k] == new[k] for k in ("branch", "manager_id", "team")):
            return
        for key in period_keys(month):
            others: set[Unit] = set()
            for other in _PERIOD_MONTHS[key[4:]]:
                other_month = f"{month[:4]}-{other}"
                if other_month != month:
                    found = batch.get("activity", (customer_id, other_month))
                    if found is not None:
                        others.update(_active_units(found))
            before = others | (_active_units(old) if old is not None else set())
            after = others | _active_units(new)
            for unit_type, unit_id in after - before:
                batch.increment("active_counts", (key, unit_type, unit_id), "customers", 1)
            for unit_type, unit_id in before - after:
                batch.increment("active_counts", (key, unit_type, unit_id), "customers", -1)
        batch.put("activity", new)

    def _counter(self, indicator: str) -> Callable[[Batch, Any], None]:
        def handle(batch: Batch, e: Any) -> None:
            row = self._customer(batch, e.originator_id)
            self._add(batch, _month(e.occurred_at), self._units_now(batch, row), indicator, 1)
        return handle

    # ------------------------------------------------------------------ customer events

    def _registered(self, batch: Batch, e: Customer.Registered) -> None:
        month = _month(e.occurred_at)
        team = self._team_of(batch, e.manager_id)
        batch.put("eval_customers", {
            "customer_id": uuid_text(e.originator_id), "kind": e.kind, "branch": e.branch, "manager_id": e.manager_id,
            "registered_month": month, "registered_manager_id": e.manager_id, "registered_team": team,
            "credit_result": None, "last_deposit_balance": ZERO, "currency": None,
        })
        where = units(e.branch, e.manager_id, team)
        self._add(batch, month, where, "new_customers", 1)
        self._add(batch, month, where, f"new_{e.kind}_customers", 1)

    def _credit(self, batch: Batch, e: Customer.CreditStandingRecorded) -> None:
        row = self._customer(batch, e.originator_id)
        if row["credit_result"] == e.result:
            return
        where = units(row["branch"], row["registered_manager_id"], row["registered_team"])
        if row["credit_result"] is not None:
            self._add(batch, row["registered_month"], where, CREDIT_PREFIX + row["credit_result"], -1)
        self._add(batch, row["registered_month"], where, CREDIT_PREFIX + e.result, 1)
        row["credit_result"] = e.result
        batch.put("eval_customers", row)

    def _reviewed(self, batch: Batch, e: Customer.Reviewed) -> None:
        row = self._customer(batch, e.originator_id)
        where, month = self._units_now(batch, row), _month(e.occurred_at)
        self._add(batch, month, where, "reviewed", 1)
        if e.decision == "qualified":
            self._add(batch, month, where, "qualified", 1)

    def _follow_up(self, batch: Batch, e: Customer.FollowUpRecorded) -> None:
        row = self._customer(batch, e.originator_id)
        where, month = self._units_now(batch, row), _month(e.occurred_at)
        self._add(batch, month, where, "satisfaction_sum", e.satisfaction)
        self._add(batch, month, where, "satisfaction_count", 1)

    def _figures(self, batch: Batch, e: Customer.BusinessFiguresReported) -> None:
        row = self._customer(batch, e.originator_id)
        where, month = self._units_now(batch, row), _month(e.occurred_at)
        delta = e.deposit_balance - Decimal(row["last_deposit_balance"])
        self._add(batch, month, where, "deposit_balance_delta", delta)
        self._add(batch, month, where, "loans_disbursed", e.loans_disbursed)
        self._add(batch, month, where, "fee_income", e.fee_income)
        self._portfolio(batch, row["manager_id"], delta)
        row["last_deposit_balance"], row["currency"] = e.deposit_balance, e.currency
        batch.put("eval_customers", row)
        self._active(batch, row, month)

    def _reassigned(self, batch: Batch, e: Customer.ManagerReassigned) -> None:
        row = self._customer(batch, e.originator_id)
        month, balance = _month(e.occurred_at), Decimal(row["last_deposit_balance"])
        before = self._units_now(batch, row)
        previous_manager = row["manager_id"]
        row["manager_id"] = e.manager_id
        after = self._units_now(batch, row)
        self._add(batch, month, [u for u in before if u not in after], "deposit_balance_delta", -balance)
        self._add(batch, month, [u for u in after if u not in before], "deposit_balance_delta", balance)
        self._portfolio(batch, previous_manager, -balance)
        self._portfolio(batch, e.manager_id, balance)
        batch.put("eval_customers", row)

    # ------------------------------------------------------------------ visits

    def _visit_planned(self, batch: Batch, e: Visit.Planned) -> None:
        batch.put("eval_visits", {"visit_id": uuid_text(e.originator_id), "customer_id": uuid_text(e.customer_id)})

    def _visit_conducted(self, batch: Batch, e: Visit.Conducted) -> None:
        visit = batch.get("eval_visits", uuid_text(e.originator_id))
        if visit is None:
            raise LookupError(f"visit {e.originator_id} has no row: its Planned event was not projected")
        row = self._customer(batch, visit["customer_id"])
        month = _month(e.occurred_at)
        self._add(batch, month, self._units_now(batch, row), "visits_conducted", 1)
        self._active(batch, row, month)

    # ------------------------------------------------------------------ staff: team membership

    def _portfolio_balance(self, batch: Batch, manager_id: str) -> Decimal:
        row = batch.get("eval_portfolios", manager_id)
        return Decimal(row["deposit_balance"]) if row is not None else ZERO

    def _staff_joined(self, batch: Batch, e: Staff.JoinedTeam) -> None:
        batch.put("eval_staff", {"staff_id": str(e.originator_id), "staff_code": e.staff_code, "team": e.team,
                                 "active": True})
        if e.team:
            self._add(batch, _month(e.occurred_at), [("team", e.team)], "deposit_balance_delta",
                      self._portfolio_balance(batch, e.staff_code))

    def _staff_left(self, batch: Batch, e: Staff.LeftTeam) -> None:
        staff = batch.get("eval_staff", str(e.originator_id))
        if staff is None:
            raise LookupError(f"staff member {e.originator_id} has no row: JoinedTeam was not projected")
        if staff["team"] and staff["active"]:
            self._add(batch, _month(e.occurred_at), [("team", staff["team"])], "deposit_balance_delta",
                      -self._portfolio_balance(batch, staff["staff_code"]))
        staff["active"] = False
        batch.put("eval_staff", staff)

    def handlers(self) -> dict[type, Callable[[Batch, Any], None]]:
        return {
            Customer.Registered: self._registered,
            Customer.CreditStandingRecorded: self._credit,
            Customer.Reviewed: self._reviewed,
            Customer.AccountOpened: self._counter("accounts_opened"),
            Customer.FollowUpRecorded: self._follow_up,
            Customer.BusinessFiguresReported: self._figures,
            Customer.ManagerReassigned: self._reassigned,
            Visit.Planned: self._visit_planned,
            Visit.Conducted: self._visit_conducted,
            Staff.JoinedTeam: self._staff_joined,
            Staff.LeftTeam: self._staff_left,
        }


# ==========================================================================
# Queries
# ==========================================================================

_PERIOD = re.compile(r"^(\d{4})(?:-(?:(0[1-9]|1[0-2])|Q([1-4])|H([12])))?$")


PERIOD_YEARS = (1900, 2100)
"""The years a period may be in (as the Bank Marketing import's ``--year``): a period's growth is
against the one before it, so the year before must have four digits too."""


def parse_period(period: str) -> tuple[str, str, str]:
    """``(kind, first_month, last_month)`` of ``YYYY-MM`` (month), ``YYYY-Qn``
    (quarter), ``YYYY-Hn`` (half) or ``YYYY`` (year) with the year in :data:`PERIOD_YEARS`;
    months are ``YYYY-MM``.

    Raises ``ValueError`` naming the period otherwise.
    """
    match = _PERIOD.match(period.strip()) if isinstance(period, str) else None
    if match is None:
        raise ValueError(f"period must be YYYY-MM, YYYY-Qn, YYYY-Hn or YYYY; got {period!r}")
    year, month, quarter, half = match.groups()
    if not PERIOD_YEARS[0] <= int(year) <= PERIOD_YEARS[1]:
        raise ValueError(f"a period's year is from {PERIOD_YEARS[0]} to {PERIOD_YEARS[1]}; got {period!r}")
    if month:
        kind, first, last = "month", int(month), int(month)
    elif quarter:
        kind, first, last = "quarter", 3 * int(quarter) - 2, 3 * int(quarter)
    elif half:
        kind, first, last = "half", 6 * int(half) - 5, 6 * int(half)
    else:
        kind, first, last = "year", 1, 12
    return kind, f"{year}-{first:02d}", f"{year}-{last:02d}"


def _shift(month: str, by: int) -> str:
    index = int(month[:4]) * 12 + int(month[5:7]) - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _months(first: str, last: str) -> int:
    return (int(last[:4]) * 12 + int(last[5:7])) - (int(first[:4]) * 12 + int(first[5:7])) + 1


@dataclass(frozen=True)
class _Period:
    key: str
    kind: str
    first: str
    last: str

    @property
    def year(self) -> str:
        return self.first[:4]

    @property
    def canonical(self) -> str:
        """The period's key as :func:`period_keys` writes it (``2009-Q3``)."""
        return _period_key(self.kind, self.first)

    @functools.cached_property
    def months(self) -> int:
        return _months(self.first, self.last)

    @property
    def previous(self) -> tuple[str, str]:
        return _shift(self.first, -self.months), _shift(self.first, -1)

    @property
    def starts_at(self) -> datetime:
        return datetime(int(self.first[:4]), int(self.first[5:7]), 1, tzinfo=timezone.utc)

    @property
    def ends_at(self) -> datetime:
        after = _shift(self.last, 1)
        return datetime(int(after[:4]), int(after[5:7]), 1, tzinfo=timezone.utc)


@functools.lru_cache(maxsize=256)
def _period(period: str) -> _Period:
    kind, first, last = parse_period(period)
    return _Period(period.strip(), kind, first, last)


def _period_key(kind: str, month: str) -> str:
    """The key of the period of ``kind`` (month, quarter, half, year) that ``month`` lies in."""
    return period_keys(month)[("month", "quarter", "half", "year").index(kind)]


def _check_unit(unit_type: str, unit_id: str) -> None:
    if unit_type not in UNIT_TYPES:
        raise ValueError(f"unit_type must be one of {', '.join(UNIT_TYPES)}; got {unit_type!r}")
    if unit_type == "bank" and unit_id != "bank":
        raise ValueError(f"the bank unit's id is 'bank'; got {unit_id!r}")


_ACTIVITY_COLUMN = {"branch": "branch", "person": "manager_id", "team": "team"}


def _keys(period: _Period) -> tuple[list[str], list[str]]:
    """``(months, longer periods)``: the one key that holds ``period``'s flows."""
    return ([period.first], []) if period.kind == "month" else ([], [period.canonical])


def _keys_through(month: str) -> tuple[list[str], list[str]]:
    """``(months, longer periods)`` that together hold January to ``month`` (``YYYY-MM``) of its year:
    ``2009-08`` -> ``(["2009-07", "2009-08"], ["2009-H1"])``, ``2009-12`` -> ``([], ["2009"])``."""
    year, last = month[:4], int(month[5:7])
    if last == 12:
        return [], [year]
    periods, first = [], 1
    if last >= 6:
        periods, first = [f"{year}-H1"], 7
    while first + 2 <= last:
        periods.append(f"{year}-Q{(first + 2) // 3}")
        first += 3
    return [f"{year}-{m:02d}" for m in range(first, last + 1)], periods


def _flows(conn: Connection, t: Tables, unit_type: str, unit_ids: Sequence[str] | None, months: Sequence[str],
           periods: Sequence[str], years_before: str | None = None,
           indicator: str | None = None) -> dict[str, dict[str, Decimal]]:
    """``{unit_id: {indicator: sum of value}}`` over ``months`` (``unit_month``), longer ``periods``
    (``unit_period``) and, with ``years_before`` (``YYYY``), every year before it."""
    found: dict[str, dict[str, Decimal]] = {}
    for table, column, keys in ((t.unit_month, "month", months), (t.unit_period, "period", periods)):
        u = table.c
        chosen = [u[column].in_(list(keys))] if keys else []
        if column == "period" and years_before is not None:
            chosen.append(and_(u.period < years_before, func.length(u.period) == 4))
        if not chosen:
            continue
        query = (select(u.unit_id, u.indicator, func.sum(u.value)).where(u.unit_type == unit_type, or_(*chosen))
                 .group_by(u.unit_id, u.indicator))
        if unit_ids is not None:
            query = query.where(u.unit_id.in_(list(unit_ids)))
        if indicator is not None:
            query = query.where(u.indicator == indicator)
        for unit_id, name, total in conn.execute(query).all():
            sums = found.setdefault(unit_id, {})
            sums[name] = sums.get(name, ZERO) + Decimal(total or 0)
    return found


def _active_customers(conn: Connection, t: Tables, unit_type: str, unit_ids: Sequence[str] | None,
                      period: str) -> dict[str, int]:
    """``{unit_id: distinct active customers}`` of a period key (``active_counts``); units without any are left out."""
    c = t.active_counts.c
    query = select(c.unit_id, c.customers).where(c.period == period, c.unit_type == unit_type, c.customers != 0)
    if unit_ids is not None:
        query = query.where(c.unit_id.in_(list(unit_ids)))
    return {unit_id: int(n) for unit_id, n in conn.execute(query).all()}


def _values(flows: dict[str, Decimal], new_before: int, asset_scale: Decimal,
            active: int) -> tuple[dict[str, Any], dict[str, int]]:
    """The indicators of one unit from its period's flows, and its credit mix."""
    def flow(name: str) -> Decimal:
        return flows.get(name, ZERO)

    new = int(flow("new_customers"))
    reviewed, follow_ups = int(flow("reviewed")), int(flow("satisfaction_count"))
    mix = {name[len(CREDIT_PREFIX):]: int(value) for name, value in sorted(flows.items())
           if name.startswith(CREDIT_PREFIX) and int(value) != 0}
    values: dict[str, Any] = {
        "new_corporate_customers": int(flow("new_corporate_customers")),
        "new_retail_customers": int(flow("new_retail_customers")),
        "new_customers": new,
        "accounts_opened": int(flow("accounts_opened")),
        "growth_rate": _pct(new - new_before, new_before),
        "asset_scale": asset_scale,
        "good_credit_share": _pct(mix.get(GOOD_CREDIT, 0), new),
        "active_customers": active,
        "deposit_balance_growth": flow("deposit_balance_delta"),
        "loans_disbursed": flow("loans_disbursed"),
        "fee_income": flow("fee_income"),
        "average_satisfaction": _round(flow("satisfaction_sum") / follow_ups) if follow_ups else None,
        "visits_conducted": int(flow("visits_conducted")),
        "qualification_rate": _pct(int(flow("qualified")), reviewed),
    }
    return values, mix


def _actuals(conn: Connection, t: Tables, p: _Period, unit_type: str, unit_ids: Sequence[str] | None,
             active: dict[str, int] | None = None,
             also: Iterable[str] = ()) -> dict[str, tuple[dict[str, Any], dict[str, int]]]:
    """``{unit_id: (indicator values, credit mix)}`` for the period: of ``unit_ids``, or (None)
    of every unit with flows or active customers in the period itself (a balance carried from
    before it does not count) and of the units ``also`` names. ``active``: the units' active
    customers in the period (:func:`_active_customers`), when the caller has read them already."""
    current = _flows(conn, t, unit_type, unit_ids, *_keys(p))
    previous = _flows(conn, t, unit_type, unit_ids, *_keys(_period(_period_key(p.kind, p.previous[0]))),
                      indicator="new_customers")
    assets = _flows(conn, t, unit_type, unit_ids, *_keys_through(p.last), years_before=p.year,
                    indicator="deposit_balance_delta")
    if active is None:
        active = _active_customers(conn, t, unit_type, unit_ids, p.canonical)
    ids = set(unit_ids) if unit_ids is not None else set(current) | set(active) | set(also)
    result = {}
    for unit_id in ids:
        result[unit_id] = _values(current.get(unit_id, {}), int(previous.get(unit_id, {}).get("new_customers", 0)),
                                  assets.get(unit_id, {}).get("deposit_balance_delta", ZERO), active.get(unit_id, 0))
    return result


def _targets(conn: Connection, team: Tables, year: str, unit_type: str,
             unit_ids: Sequence[str] | None) -> dict[str, dict[str, tuple[Decimal, dict[str, Decimal]]]]:
    """``{unit_id: {indicator: (annual, checkpoints)}}`` of the year."""
    c = team.targets.c
    query = select(team.targets).where(c.year == year, c.unit_type == unit_type)
    if unit_ids is not None:
        query = query.where(c.unit_id.in_(list(unit_ids)))
    found: dict[str, dict[str, tuple[Decimal, dict[str, Decimal]]]] = {}
    for row in conn.execute(query).mappings().all():
        checkpoints = {k: Decimal(v) for k, v in json.loads(row["checkpoints"]).items()}
        found.setdefault(row["unit_id"], {})[row["indicator"]] = (Decimal(row["annual"]), checkpoints)
    return found


def period_target(indicator: str, annual: Decimal, checkpoints: dict[str, Decimal], period: str) -> Decimal:
    """The target of ``indicator`` for ``period`` (unrounded), by the rule in the module docstring."""
    p = _period(period)
    if p.key in checkpoints:
        return Decimal(checkpoints[p.key])
    if indicator in LEVEL_INDICATORS:
        return Decimal(annual)
    return Decimal(annual) * p.months / 12


def evaluation(conn: Connection, eval_tables: Tables, team_tables: Tables, period: str, unit_type: str = "bank",
               unit_id: str = "bank") -> dict[str, Any]:
    """The evaluation of one organisation unit for a period (measures §5), against its targets (§1).

    Returns ``{"period", "unit_type", "unit_id", "indicators": {name: {"actual",
    "target", "attainment_pct", "gap"}}, "credit_rating_mix": {result: customers}}``
    for every indicator of :data:`domain.team.INDICATORS`; counts are ``int``,
    money, rates and averages ``Decimal`` (money in major units of the reporting
    currency, rates in %). ``target``, ``attainment_pct`` and ``gap`` are
    ``None`` where the unit has no target for the indicator. Rules: module docstring.

    Raises ``ValueError`` for a malformed period or an unknown unit.
    """
    p = _period(period)
    _check_unit(unit_type, unit_id)
    values, mix = _actuals(conn, eval_tables, p, unit_type, [unit_id])[unit_id]
    targets = _targets(conn, team_tables, p.year, unit_type, [unit_id]).get(unit_id, {})
    indicators = {}
    for name in INDICATORS:
        actual = values[name]
        target = attainment = gap = None
        if name in targets:
            exact = period_target(name, *targets[name], p.key)
            target = _round(exact)
            if actual is not None:
                attainment = _pct(actual, exact) if exact else None
                gap = _round(Decimal(actual) - exact)
        indicators[name] = {"actual": actual, "target": target, "attainment_pct": attainment, "gap": gap}
    return {"period": p.key, "unit_type": unit_type, "unit_id": unit_id, "indicators": indicators,
            "credit_rating_mix": mix}


class NoAppraisalScheme(LookupError):
    """No appraisal scheme is defined for the period's year (measures §3)."""


def _score(actual: Any, target: Decimal | None, best: Decimal | None) -> tuple[Decimal, str]:
    if target is not None and target > 0:
        if actual is None:
            return ZERO, "target"
        return max(ZERO, min(Decimal(actual) / target, CAP)) * HUNDRED, "target"
    if actual is None or best is None or best <= 0:
        return ZERO, "best"
    return max(ZERO, Decimal(actual) * HUNDRED / best), "best"


def staff_performance(conn: Connection, eval_tables: Tables, team_tables: Tables, period: str) -> list[dict[str, Any]]:
    """Each person's appraisal for a period under the year's scheme (measures §3), best first.

    Returns ``[{"rank", "person_id", "display_name", "role", "branch", "team",
    "is_staff", "composite", "indicators": {name: {"actual", "target", "weight",
    "score", "basis"}}}]`` where ``basis`` is ``"target"`` or ``"best"`` and
    scores and the composite are ``Decimal`` rounded half-up to 0.01. Rules:
    module docstring.

    Raises ``ValueError`` for a malformed period and :class:`NoAppraisalScheme`.
    """
    p = _period(period)
    scheme = conn.execute(select(team_tables.schemes).where(team_tables.schemes.c.year == p.year)).mappings().first()
    if scheme is None:
        raise NoAppraisalScheme(f"no appraisal scheme is defined for {p.year}")
    weights = [(i["indicator"], Decimal(i["weight"])) for i in json.loads(scheme["indicators"])]

    staff = {}
    for row in conn.execute(select(team_tables.staff)).mappings().all():
        joined, left = utc(row["joined_at"]), utc(row["left_at"])
        if joined < p.ends_at and (left is None or left >= p.starts_at):  # type: ignore[operator]
            staff[row["staff_code"]] = dict(row)
    # Everyone with figures in the period (the people's flows and activity, read once for all of
    # them) and every member of the team then, with or without figures.
    active = _active_customers(conn, eval_tables, "person", None, p.canonical)
    actuals = _actuals(conn, eval_tables, p, "person", None, active, also=staff)
    people = sorted(actuals)
    if not people:
        return []
    targets = _targets(conn, team_tables, p.year, "person", None)
    best: dict[str, Decimal | None] = {}
    for name, _ in weights:
        present = [Decimal(actuals[person][0][name]) for person in people if actuals[person][0][name] is not None]
        best[name] = max(present) if present else None

    rows = []
    for person in people:
        values = actuals[person][0]
        composite = ZERO
        scored = {}
        for name, weight in weights:
            target = None
            if name in targets.get(person, {}):
                target = period_target(name, *targets[person][name], p.key)
            score, basis = _score(values[name], target, best[name])
            composite += weight * score / HUNDRED
            scored[name] = {"actual": values[name], "target": None if target is None else _round(target),
                            "weight": weight, "score": _round(score), "basis": basis}
        member = staff.get(person, {})
        rows.append({
            "rank": 0, "person_id": person, "display_name": member.get("display_name"), "role": member.get("role"),
            "branch": member.get("branch"), "team": member.get("team"), "is_staff": person in staff,
            "composite": _round(composite), "indicators": scored,
        })
    rows.sort(key=lambda r: (-r["composite"], r["person_id"]))
    for index, row in enumerate(rows):
        same = index > 0 and rows[index - 1]["composite"] == row["composite"]
        row["rank"] = rows[index - 1]["rank"] if same else index + 1
    return rows
