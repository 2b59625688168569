"""RiskCase: one acquisition risk from identification to closure (measures §4).

Lifecycle::

    identified -(assess)-> assessed -(decide response)-> responding
    responding -(record reading)-> responding (+ warning raised on a threshold crossing)
    assessed | responding -(dispose)-> disposed -(close)-> closed

Assessment rule (§4 "assess"), indicator scores are 0-100, higher is riskier:

- **high** when any indicator scores 80 or more, or the mean is 60 or more;
- **medium** when any indicator scores 50 or more, or the mean is 30 or more;
- **low** otherwise.

Responses (§4 "respond"): ``avoid`` (no business with the customer while the
case is open), ``reduce``, ``transfer``, ``accept`` (only for a low level).

Monitoring (§4 "monitor"): a reading carries its threshold and direction
(``above`` or ``below``). A warning is raised automatically when a reading is
beyond its threshold and the indicator's previous reading was not (a crossing).
"""

from __future__ import annotations

from decimal import Decimal
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

CATEGORIES = ("credit", "market", "operational", "reputational")
SUBJECT_TYPES = ("customer", "contract")
RESPONSES = ("avoid", "reduce", "transfer", "accept")
DIRECTIONS = ("above", "below")

IDENTIFIED = "identified"
ASSESSED = "assessed"
RESPONDING = "responding"
DISPOSED = "disposed"
CLOSED = "closed"


class ResponseNotAllowed(DomainError):
    """The chosen response does not fit the assessed level (§4: accept only low risk)."""

    code = "risk_response_not_allowed"


def assess_level(indicator_scores: dict[str, int]) -> str:
    """The level for ``indicator_scores`` (name -> 0-100) by the documented rule."""
    values = list(indicator_scores.values())
    top, mean = max(values), sum(values) / len(values)
    if top >= 80 or mean >= 60:
        return "high"
    if top >= 50 or mean >= 30:
        return "medium"
    return "low"


def is_beyond(value: Decimal, threshold: Decimal, direction: str) -> bool:
    """Whether ``value`` is beyond ``threshold`` in ``direction``."""
    return value > threshold if direction == "above" else value < threshold


class RiskCase(TuohuAggregate):
    """A credit, market, operational or reputational risk in acquisition work."""

    TOPIC = "tuohu:RiskCase"

    class Identified(TuohuAggregate.Created):
        """Risk identified (§4 identify) about a customer or a contract."""

        subject_type: str
        subject_id: UUID
        customer_id: UUID
        category: str
        description: str

        def apply(self, case: RiskCase) -> None:
            case.subject_type = self.subject_type
            case.subject_id = self.subject_id
            case.customer_id = self.customer_id
            case.category = self.category
            case.status = IDENTIFIED
            case.level = None
            case.response = None
            case.last_readings = {}
            case.warnings = 0

    class Assessed(TuohuAggregate.Event):
        """Indicator scores and the level they give (§4 assess)."""

        indicator_scores: dict[str, int]
        level: str

        def apply(self, case: RiskCase) -> None:
            case.level = self.level
            case.status = ASSESSED

    class ResponseDecided(TuohuAggregate.Event):
        """The response and its measures (§4 respond)."""

        response: str
        measures: list[str]

        def apply(self, case: RiskCase) -> None:
            case.response = self.response
            case.status = RESPONDING

    class ReadingRecorded(TuohuAggregate.Event):
        """A monitoring reading against its threshold (§4 monitor)."""

        indicator: str
        value: Decimal
        threshold: Decimal
        direction: str

        def apply(self, case: RiskCase) -> None:
            case.last_readings[self.indicator] = is_beyond(self.value, self.threshold, self.direction)

    class WarningRaised(TuohuAggregate.Event):
        """Early warning (風險預警): a reading crossed its threshold."""

        indicator: str
        value: Decimal
        threshold: Decimal
        direction: str

        def apply(self, case: RiskCase) -> None:
            case.warnings += 1

    class Disposed(TuohuAggregate.Event):
        """Investigated, analysed and acted upon (§4 disposal)."""

        actions: list[str]
        findings: str

        def apply(self, case: RiskCase) -> None:
            case.status = DISPOSED

    class Closed(TuohuAggregate.Event):
        """Closed, with the reason."""

        def apply(self, case: RiskCase) -> None:
            case.status = CLOSED

    @property
    def blocks_business(self) -> bool:
        """True while the case is open and its response is *avoid* (§4)."""
        return self.status != CLOSED and self.response == "avoid"

    # ------------------------------------------------------------------ commands

    @classmethod
    def identify(
        cls, ctx: Context, *, subject_type: str, subject_id: UUID, customer_id: UUID, category: str,
        description: str, risk_case_id: UUID | None = None,
    ) -> RiskCase:
        """Identify a risk (§4). ``customer_id`` is the customer concerned (the
        subject itself, or the contract's customer). Raises :class:`InvalidValue`."""
        return cls._start(
            cls.Identified, ctx, id=risk_case_id,
            subject_type=require_choice(subject_type, "subject_type", SUBJECT_TYPES), subject_id=subject_id,
            customer_id=customer_id, category=require_choice(category, "category", CATEGORIES),
            description=require_text(description, "description"),
        )

    def assess(self, ctx: Context, *, indicator_scores: dict[str, int], reason: str | None = None) -> None:
        """Score the indicators (0-100 each) and derive the level (§4 assess)."""
        self._check_status("assessed", (IDENTIFIED, ASSESSED, RESPONDING))
        if not indicator_scores:
            raise InvalidValue("indicator_scores", "at least one indicator score is required")
        for name, value in indicator_scores.items():
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
                raise InvalidValue(f"indicator_scores.{name}", f"must be a whole number from 0 to 100; got {value!r}")
        scores = dict(indicator_scores)
        self._record(self.Assessed, ctx, reason=reason, indicator_scores=scores, level=assess_level(scores))

    def decide_response(self, ctx: Context, *, response: str, measures: list[str], reason: str | None) -> None:
        """Decide the response with its measures (§4 respond). Raises :class:`ResponseNotAllowed`."""
        self._check_status("given a response", (ASSESSED, RESPONDING))
        require_choice(response, "response", RESPONSES)
        if response == "accept" and self.level != "low":
            raise ResponseNotAllowed(f"a {self.level} risk cannot be accepted; only a low risk may be (measures §4)")
        if not measures:
            raise InvalidValue("measures", "at least one measure is required")
        self._record(self.ResponseDecided, ctx, reason=require_reason(reason, "decide a risk response"),
                     response=response, measures=[require_text(m, "measures") for m in measures])

    def record_reading(self, ctx: Context, *, indicator: str, value: Decimal, threshold: Decimal, direction: str) -> None:
        """Record a monitoring reading; raises a warning on a threshold crossing (§4 monitor)."""
        self._check_status("monitored", (RESPONDING,))
        indicator = require_text(indicator, "indicator")
        require_choice(direction, "direction", DIRECTIONS)
        for name, number in (("value", value), ("threshold", threshold)):
            if not isinstance(number, Decimal) or not number.is_finite():
                raise InvalidValue(name, f"must be a finite decimal number; got {number!r}")
        was_beyond = self.last_readings.get(indicator, False)
        self._record(self.ReadingRecorded, ctx, indicator=indicator, value=value, threshold=threshold,
                     direction=direction)
        if is_beyond(value, threshold, direction) and not was_beyond:
            self._record(self.WarningRaised, ctx, indicator=indicator, value=value, threshold=threshold,
                         direction=direction)

    def dispose(self, ctx: Context, *, actions: list[str], findings: str) -> None:
        """Record the disposal: actions taken and findings (§4 disposal)."""
        self._check_status("disposed", (ASSESSED, RESPONDING))
        if not actions:
            raise InvalidValue("actions", "at least one action is required")
        self._record(self.Disposed, ctx, actions=[require_text(a, "actions") for a in actions],
                     findings=require_text(findings, "findings"))

    def close(self, ctx: Context, *, reason: str | None) -> None:
        """Close a disposed case, with the reason."""
        self._check_status("closed", (DISPOSED,))
        self._record(self.Closed, ctx, reason=require_reason(reason, "close a risk case"))

    def _check_status(self, action: str, allowed: tuple[str, ...]) -> None:
        if self.status not in allowed:
            raise IllegalTransition("risk case", action, self.status, allowed)

