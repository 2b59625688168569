"""Visit: one planned contact with a customer (measures §2.3).

Lifecycle::

    planned -> (prepared) -> conducted -> feedback routed
    planned | prepared -> rescheduled (stays open) | cancelled

A key customer's visit must be prepared before it is conducted (§2.3 step 1).
Times are timezone-aware and stored as UTC; durations are in seconds.
"""

from __future__ import annotations

from datetime import datetime, timezone
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

METHODS = ("in_person", "phone", "video")
KINDS = ("acquisition", "follow_up")

PLANNED = "planned"
PREPARED = "prepared"
CONDUCTED = "conducted"
CANCELLED = "cancelled"


class PreparationRequired(DomainError):
    """A key customer's visit was to be conducted without a prepared plan (§2.3)."""

    code = "visit_preparation_required"


def _utc(value: datetime, field_name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidValue(field_name, "must be a timezone-aware date and time")
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise InvalidValue(field_name, "is out of range once converted to UTC") from None


class Visit(TuohuAggregate):
    """A planned and then conducted contact with a customer."""

    TOPIC = "tuohu:Visit"

    class Planned(TuohuAggregate.Created):
        """Visit plan: purpose, time, staff, method, kind (§2.3 step 1)."""

        customer_id: UUID
        purpose: str
        scheduled_at: datetime
        staff: list[str]
        method: str
        kind: str

        def apply(self, visit: Visit) -> None:
            visit.customer_id = self.customer_id
            visit.purpose = self.purpose
            visit.scheduled_at = self.scheduled_at
            visit.staff = list(self.staff)
            visit.method = self.method
            visit.kind = self.kind
            visit.status = PLANNED
            visit.preparation = None
            visit.outcome = None
            visit.feedback_routed_to = []

    class Prepared(TuohuAggregate.Event):
        """Preparation: background, materials, talking points (§2.3 step 2)."""

        background: str
        materials: list[str]
        talking_points: list[str]

        def apply(self, visit: Visit) -> None:
            visit.preparation = {
                "background": self.background,
                "materials": list(self.materials),
                "talking_points": list(self.talking_points),
            }
            visit.status = PREPARED

    class Conducted(TuohuAggregate.Event):
        """The visit took place (§2.3 step 3); ``duration_seconds`` may be unknown."""

        outcome: str
        needs_learned: str
        next_steps: str
        duration_seconds: int | None

        def apply(self, visit: Visit) -> None:
            visit.outcome = self.outcome
            visit.status = CONDUCTED

    class FeedbackRouted(TuohuAggregate.Event):
        """Needs and suggestions fed back to the departments concerned (§2.3 step 4)."""

        departments: list[str]
        feedback: str

        def apply(self, visit: Visit) -> None:
            visit.feedback_routed_to.extend(self.departments)

    class Rescheduled(TuohuAggregate.Event):
        """Moved to a new time, with the reason."""

        scheduled_at: datetime

        def apply(self, visit: Visit) -> None:
            visit.scheduled_at = self.scheduled_at

    class Cancelled(TuohuAggregate.Event):
        """Cancelled, with the reason."""

        def apply(self, visit: Visit) -> None:
            visit.status = CANCELLED

    # ------------------------------------------------------------------ commands

    @classmethod
    def plan(
        cls, ctx: Context, *, customer_id: UUID, purpose: str, scheduled_at: datetime,
        staff: list[str], method: str, kind: str, visit_id: UUID | None = None,
    ) -> Visit:
        """Plan a visit (§2.3 step 1). Raises :class:`InvalidValue`."""
        if not staff or not all(s and s.strip() for s in staff):
            raise InvalidValue("staff", "at least one staff member id is required")
        return cls._start(
            cls.Planned, ctx, id=visit_id, customer_id=customer_id,
            purpose=require_text(purpose, "purpose"), scheduled_at=_utc(scheduled_at, "scheduled_at"),
            staff=[s.strip() for s in staff], method=require_choice(method, "method", METHODS),
            kind=require_choice(kind, "kind", KINDS),
        )

    def prepare(self, ctx: Context, *, background: str, materials: list[str], talking_points: list[str]) -> None:
        """Record the preparation (§2.3 step 2)."""
        self._check_status("prepared", (PLANNED, PREPARED))
        self._record(
            self.Prepared, ctx, background=require_text(background, "background"),
            materials=list(materials or []), talking_points=list(talking_points or []),
        )

    def conduct(
        self, ctx: Context, *, outcome: str, needs_learned: str = "", next_steps: str = "",
        duration_seconds: int | None = None, customer_is_key: bool = False,
    ) -> None:
        """Record the visit (§2.3 step 3). ``customer_is_key`` comes from the Customer.

        Raises :class:`PreparationRequired` for an unprepared key-customer visit.
        """
        self._check_status("conducted", (PLANNED, PREPARED))
        if customer_is_key and self.preparation is None:
            raise PreparationRequired("a key customer's visit must be prepared before it is conducted (measures §2.3)")
        if duration_seconds is not None and (
            isinstance(duration_seconds, bool) or not isinstance(duration_seconds, int) or duration_seconds < 0
        ):
            raise InvalidValue("duration_seconds", f"must be zero or more seconds; got {duration_seconds!r}")
        self._record(
            self.Conducted, ctx, outcome=require_text(outcome, "outcome"), needs_learned=needs_learned or "",
            next_steps=next_steps or "", duration_seconds=duration_seconds,
        )

    def route_feedback(self, ctx: Context, *, departments: list[str], feedback: str) -> None:
        """Feed the visit's findings back to departments (§2.3 step 4)."""
        self._check_status("have feedback routed", (CONDUCTED,))
        if not departments:
            raise InvalidValue("departments", "at least one department is required")
        self._record(
            self.FeedbackRouted, ctx, departments=[require_text(d, "departments") for d in departments],
            feedback=require_text(feedback, "feedback"),
        )

    def reschedule(self, ctx: Context, *, scheduled_at: datetime, reason: str | None) -> None:
        """Move the visit to a new time, with the reason."""
        self._check_status("rescheduled", (PLANNED, PREPARED))
        self._record(
            self.Rescheduled, ctx, reason=require_reason(reason, "reschedule a visit"),
            scheduled_at=_utc(scheduled_at, "scheduled_at"),
        )

    def cancel(self, ctx: Context, *, reason: str | None) -> None:
        """Cancel the visit, with the reason."""
        self._check_status("cancelled", (PLANNED, PREPARED))
        self._record(self.Cancelled, ctx, reason=require_reason(reason, "cancel a visit"))

    def _check_status(self, action: str, allowed: tuple[str, ...]) -> None:
        if self.status not in allowed:
            raise IllegalTransition("visit", action, self.status, allowed)
