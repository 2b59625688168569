"""The acquisition team (measures §3) and its targets (measures §1, §5).

- **Staff**: a member of the team, from joining to leaving, with training and awards.
- **AppraisalScheme**: per period, weighted indicators (weights sum to 100) that
  give each person's composite score (§3 appraisal).
- **Target**: per period (a year, with monthly / quarterly / half-year
  checkpoints), organisation unit (bank, branch, team, person) and indicator (§1).

Ids are derived (UUID v5) from their natural keys — a staff code, a scheme
period, a (year, unit, indicator) triple — so the same thing always has the
same id. Amounts are ``Decimal``; training hours are ``Decimal`` hours.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.base import (
    Context,
    DomainError,
    IllegalTransition,
    InvalidValue,
    TuohuAggregate,
    require_choice,
    require_reason,
    require_text,
)

ROLES = ("customer_manager", "product_manager", "operations", "reviewer", "risk_officer",
         "compliance_auditor", "branch_head")
TRAINING_KINDS = ("internal", "external")
AWARD_KINDS = ("bonus", "certificate", "promotion", "special_award")
UNIT_TYPES = ("bank", "branch", "team", "person")
INDICATOR_GROUPS = ("acquisition_results", "customer_quality", "service_quality")

#: Indicators the evaluation computes (measures §5); targets and appraisal schemes name these.
INDICATORS = {
    "new_corporate_customers": "new corporate customers (count)",
    "new_retail_customers": "new retail customers (count)",
    "new_customers": "new customers, corporate and retail (count)",
    "accounts_opened": "accounts opened (count)",
    "growth_rate": "new customers against the previous period (%)",
    "asset_scale": "sum of customers' latest deposit balances (currency)",
    "good_credit_share": "share of new customers without a default (%)",
    "active_customers": "customers with a visit or business figures in the period (count)",
    "deposit_balance_growth": "change of the deposit balance sum over the period (currency)",
    "loans_disbursed": "loans disbursed in the period (currency)",
    "fee_income": "fee (intermediary) income in the period (currency)",
    "average_satisfaction": "mean follow-up satisfaction 1-5",
    "visits_conducted": "visits conducted (count)",
    "qualification_rate": "qualified among reviewed customers (%)",
}

_NS = uuid.UUID("7d3c2f7e-4b8e-4f57-9a0e-7465616d7475")
_YEAR = re.compile(r"^\d{4}$")
_CHECKPOINT = re.compile(r"^(\d{4})-(0[1-9]|1[0-2]|Q[1-4]|H[12])$")


class WeightsDoNotSumTo100(DomainError):
    """An appraisal scheme's indicator weights must sum to exactly 100 (§3 appraisal)."""

    code = "weights_do_not_sum_to_100"


def staff_id(staff_code: str) -> UUID:
    """The Staff aggregate id for a staff code (the id people act under)."""
    return uuid.uuid5(_NS, f"staff:{staff_code}")


def scheme_id(year: str) -> UUID:
    """The AppraisalScheme id for a year."""
    return uuid.uuid5(_NS, f"appraisal:{year}")


def target_id(year: str, unit_type: str, unit_id: str, indicator: str) -> UUID:
    """The Target id for (year, unit, indicator)."""
    return uuid.uuid5(_NS, f"target:{year}:{unit_type}:{unit_id}:{indicator}")


def _year(value: str) -> str:
    if not isinstance(value, str) or not _YEAR.match(value):
        raise InvalidValue("year", f"must be a year like 2009; got {value!r}")
    return value


def _decimal(value: Any, field_name: str, *, positive: bool = False) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidValue(field_name, f"must be a finite decimal number; got {value!r}")
    if value < 0 or (positive and value == 0):
        raise InvalidValue(field_name, f"must be {'more than' if positive else 'at least'} 0; got {value}")
    return value


class Staff(TuohuAggregate):
    """A member of the acquisition team (§3)."""

    TOPIC = "tuohu:Staff"

    class JoinedTeam(TuohuAggregate.Created):
        """Joined the team in a role and a branch (§3 roles)."""

        staff_code: str
        display_name: str
        role: str
        branch: str
        team: str

        def apply(self, staff: Staff) -> None:
            staff.staff_code = self.staff_code
            staff.role = self.role
            staff.branch = self.branch
            staff.team = self.team
            staff.active = True
            staff.training_hours = Decimal(0)
            staff.awards = 0

    class TrainingRecorded(TuohuAggregate.Event):
        """Internal or external training: topic and hours (§3 training)."""

        kind: str
        topic: str
        hours: Decimal

        def apply(self, staff: Staff) -> None:
            staff.training_hours += self.hours

    class AwardGranted(TuohuAggregate.Event):
        """Bonus, certificate, promotion or special award, with the reason (§3 rewards)."""

        kind: str
        amount: Decimal | None
        currency: str | None

        def apply(self, staff: Staff) -> None:
            staff.awards += 1

    class LeftTeam(TuohuAggregate.Event):
        """Left the team, with the reason."""

        def apply(self, staff: Staff) -> None:
            staff.active = False

    @classmethod
    def join(cls, ctx: Context, *, staff_code: str, display_name: str, role: str, branch: str,
             team: str = "") -> Staff:
        """Add a member (§3). Raises :class:`InvalidValue`."""
        code = require_text(staff_code, "staff_code")
        return cls._start(cls.JoinedTeam, ctx, id=staff_id(code), staff_code=code,
                          display_name=require_text(display_name, "display_name"),
                          role=require_choice(role, "role", ROLES), branch=require_text(branch, "branch"),
                          team=(team or "").strip())

    def record_training(self, ctx: Context, *, kind: str, topic: str, hours: Decimal) -> None:
        """Record a training (hours > 0)."""
        self._check_active("trained")
        self._record(self.TrainingRecorded, ctx, kind=require_choice(kind, "kind", TRAINING_KINDS),
                     topic=require_text(topic, "topic"), hours=_decimal(hours, "hours", positive=True))

    def grant_award(self, ctx: Context, *, kind: str, reason: str | None, amount: Decimal | None = None,
                    currency: str | None = None) -> None:
        """Grant an award with the reason; a bonus needs an amount and currency."""
        self._check_active("given an award")
        require_choice(kind, "kind", AWARD_KINDS)
        if kind == "bonus" and (amount is None or not currency):
            raise InvalidValue("amount", "a bonus needs an amount and a currency")
        if amount is not None:
            _decimal(amount, "amount", positive=True)
        self._record(self.AwardGranted, ctx, reason=require_reason(reason, "grant an award"), kind=kind,
                     amount=amount, currency=currency)

    def leave(self, ctx: Context, *, reason: str | None) -> None:
        """Record leaving the team."""
        self._check_active("leave")
        self._record(self.LeftTeam, ctx, reason=require_reason(reason, "record leaving the team"))

    def _check_active(self, action: str) -> None:
        if not self.active:
            raise IllegalTransition("staff member", action, "left", ("active",))


class AppraisalScheme(TuohuAggregate):
    """Weighted appraisal indicators for one year (§3 appraisal)."""

    TOPIC = "tuohu:AppraisalScheme"

    class Defined(TuohuAggregate.Created):
        """Indicators ``[{indicator, group, weight}]`` with weights summing to 100."""

        year: str
        indicators: list[dict[str, Any]]

        def apply(self, scheme: AppraisalScheme) -> None:
            scheme.year = self.year
            scheme.indicators = [dict(i) for i in self.indicators]

    class Redefined(TuohuAggregate.Event):
        """The indicators replaced, with the reason."""

        indicators: list[dict[str, Any]]

        def apply(self, scheme: AppraisalScheme) -> None:
            scheme.indicators = [dict(i) for i in self.indicators]

    @classmethod
    def define(cls, ctx: Context, *, year: str, indicators: list[dict[str, Any]]) -> AppraisalScheme:
        """Define the year's scheme. Raises :class:`WeightsDoNotSumTo100`, :class:`InvalidValue`."""
        return cls._start(cls.Defined, ctx, id=scheme_id(_year(year)), year=year,
                          indicators=_indicators(indicators))

    def redefine(self, ctx: Context, *, indicators: list[dict[str, Any]], reason: str | None) -> None:
        """Replace the indicators, with the reason."""
        self._record(self.Redefined, ctx, reason=require_reason(reason, "redefine an appraisal scheme"),
                     indicators=_indicators(indicators))


def _indicators(indicators: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not indicators:
        raise InvalidValue("indicators", "at least one indicator is required")
    clean, seen = [], set()
    for i, item in enumerate(indicators):
        name = item.get("indicator")
        if name not in INDICATORS:
            raise InvalidValue(f"indicators[{i}].indicator", f"must be one of {', '.join(INDICATORS)}; got {name!r}")
        if name in seen:
            raise InvalidValue(f"indicators[{i}].indicator", f"{name} is listed twice")
        seen.add(name)
        group = require_choice(item.get("group", ""), f"indicators[{i}].group", INDICATOR_GROUPS)
        weight = _decimal(item.get("weight"), f"indicators[{i}].weight", positive=True)
        clean.append({"indicator": name, "group": group, "weight": weight})
    total = sum(c["weight"] for c in clean)
    if total != 100:
        raise WeightsDoNotSumTo100(f"the weights sum to {total}, not 100")
    return clean


class Target(TuohuAggregate):
    """The target of one indicator for one organisation unit in one year (§1)."""

    TOPIC = "tuohu:Target"

    class Set(TuohuAggregate.Created):
        """Annual value and checkpoints (``YYYY-MM``, ``YYYY-Qn``, ``YYYY-Hn`` -> value)."""

        year: str
        unit_type: str
        unit_id: str
        indicator: str
        annual: Decimal
        checkpoints: dict[str, Decimal]

        def apply(self, target: Target) -> None:
            target.year, target.unit_type, target.unit_id = self.year, self.unit_type, self.unit_id
            target.indicator = self.indicator
            target.annual = self.annual
            target.checkpoints = dict(self.checkpoints)

    class Revised(TuohuAggregate.Event):
        """New values, with the reason."""

        annual: Decimal
        checkpoints: dict[str, Decimal]

        def apply(self, target: Target) -> None:
            target.annual = self.annual
            target.checkpoints = dict(self.checkpoints)

    @classmethod
    def set(cls, ctx: Context, *, year: str, unit_type: str, unit_id: str, indicator: str, annual: Decimal,
            checkpoints: dict[str, Decimal] | None = None) -> Target:
        """Set a target. Raises :class:`InvalidValue`."""
        _year(year)
        require_choice(unit_type, "unit_type", UNIT_TYPES)
        unit_id = require_text(unit_id, "unit_id")
        if indicator not in INDICATORS:
            raise InvalidValue("indicator", f"must be one of {', '.join(INDICATORS)}; got {indicator!r}")
        return cls._start(cls.Set, ctx, id=target_id(year, unit_type, unit_id, indicator), year=year,
                          unit_type=unit_type, unit_id=unit_id, indicator=indicator,
                          annual=_decimal(annual, "annual"), checkpoints=_checkpoints(year, checkpoints))

    def revise(self, ctx: Context, *, annual: Decimal, checkpoints: dict[str, Decimal] | None,
               reason: str | None) -> None:
        """Revise the values, with the reason."""
        self._record(self.Revised, ctx, reason=require_reason(reason, "revise a target"),
                     annual=_decimal(annual, "annual"), checkpoints=_checkpoints(self.year, checkpoints))


def _checkpoints(year: str, checkpoints: dict[str, Decimal] | None) -> dict[str, Decimal]:
    clean = {}
    for key, value in (checkpoints or {}).items():
        match = _CHECKPOINT.match(key)
        if not match or match.group(1) != year:
            raise InvalidValue(f"checkpoints.{key}", f"must be {year}-MM, {year}-Qn or {year}-Hn")
        clean[key] = _decimal(value, f"checkpoints.{key}")
    return clean
