"""The actor trail: every event by each person or system, and every decision they took.

Tables (see :mod:`projections.framework`):

- ``actors``: one row per stored event - its position (notification id), who
  acted (``actor_id``, ``actor_role``), on which aggregate (type and id), the
  event, business time ``occurred_at`` and ``recorded_at`` (UTC), and whether it
  is a decision, with a one-line summary of it. Indexed by (actor_id, occurred_at);
- ``actor_reasons``: the reason of each event that has one, and the customer it
  is about (few rows: most events carry no reason);
- ``actor_owners``: the customer of each visit, proposal, contract and risk case.

Decisions (:data:`DECISIONS`): screened, reviewed (customer, documents,
clauses), approved, returned, signed, terminated, risk assessed, response
decided, risk closed, award granted, manager reassigned, key customer marked,
processing restricted, personal data erased.

When a customer's personal data are erased, the reasons that were encrypted
with their key (see :mod:`application.privacy`) are overwritten with
``[erased]`` here too, so the trail reads as a rebuild from the events would.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from sqlalchemy import Boolean, Column, DateTime, Index, Integer, String, Text, and_, func, or_, select
from sqlalchemy.engine import Connection

from application.privacy import ERASED, personal_fields
from domain.contract import Contract
from domain.customer import Customer
from domain.proposal import Proposal
from domain.risk import RiskCase
from domain.team import Staff
from projections.framework import Batch, Projection, TableSpec, Tables, uuid_text


def _summary(text: str) -> Callable[[Any], str]:
    return lambda _e: text


#: Event class -> one-line summary of the decision it records.
DECISIONS: dict[type, Callable[[Any], str]] = {
    Customer.Screened: lambda e: f"{e.outcome} (score {e.score}, {e.model_name} {e.model_version})",
    Customer.Reviewed: lambda e: e.decision,
    Customer.DocumentsReviewed: lambda e: "documents accepted" if e.accepted else "documents returned",
    Customer.ManagerReassigned: lambda e: f"manager {e.previous_manager_id} -> {e.manager_id}",
    Customer.MarkedKeyCustomer: _summary("marked key customer"),
    Customer.ProcessingRestricted: _summary("processing restricted"),
    Customer.PersonalDataErased: lambda e: "personal data erased" + (" early" if e.before_retention_end else ""),
    Proposal.Approved: lambda e: f"proposal revision {e.revision} approved",
    Proposal.Returned: lambda e: f"proposal revision {e.revision} returned",
    Contract.ClausesReviewed: lambda e: f"clauses reviewed, {len(e.findings)} findings",
    Contract.Approved: _summary("contract approved"),
    Contract.Signed: _summary("contract signed"),
    Contract.Terminated: _summary("contract terminated"),
    RiskCase.Assessed: lambda e: f"risk level {e.level}",
    RiskCase.ResponseDecided: lambda e: f"response {e.response}",
    RiskCase.Closed: _summary("risk case closed"),
    Staff.AwardGranted: lambda e: f"award {e.kind}",
}

_OWNED = ("Visit", "Proposal", "Contract", "RiskCase")


def _actor_columns() -> list[Any]:
    return [
        Column("position", Integer, primary_key=True, autoincrement=False),
        Column("actor_id", String(), nullable=False),
        Column("actor_role", String(), nullable=False),
        Column("aggregate_type", String(), nullable=False),
        Column("aggregate_id", String(), nullable=False),
        Column("event_type", String(), nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("recorded_at", DateTime(timezone=True), nullable=False),
        Column("is_decision", Boolean, nullable=False),
        Column("decision", String()),
        Index(None, "actor_id", "occurred_at"),
    ]


def _reason_columns() -> list[Any]:
    return [
        Column("position", Integer, primary_key=True, autoincrement=False),
        Column("customer_id", String(), index=True),
        Column("reason", Text, nullable=False),
    ]


def _owner_columns() -> list[Any]:
    return [
        Column("aggregate_id", String(), primary_key=True),
        Column("customer_id", String(), nullable=False),
    ]


#: Event class -> (aggregate type, event type, decision summary or None, whether the aggregate
#: belongs to a customer, whether the reason is personal, whether it erases personal data).
_FACTS: dict[type, tuple[str, str, Callable[[Any], str] | None, bool, bool, bool]] = {}


def _facts(kind: type) -> tuple[str, str, Callable[[Any], str] | None, bool, bool, bool]:
    owner = kind.__qualname__.split(".")[0]
    found = _FACTS[kind] = (owner, kind.__name__, DECISIONS.get(kind), owner in _OWNED,
                            "reason" in personal_fields(getattr(kind, "TOPIC", "")),
                            issubclass(kind, Customer.PersonalDataErased))
    return found


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


class ActorTrailProjection(Projection):
    """Who did what, when and why: one row per event, decisions marked."""

    name = "actors"
    specs = (TableSpec("actors", _actor_columns), TableSpec("actor_reasons", _reason_columns),
             TableSpec("actor_owners", _owner_columns))
    event_rows = "actors"

    def personal_fields_read(self, event_class: type) -> tuple[str, ...]:
        """The ``reason`` of every event (kept in ``actor_reasons``); no other personal field."""
        return ("reason",)

    def prefetch(self, batch: Batch, events: Sequence[Any]) -> None:
        batch.preload("actor_owners", {str(e.originator_id) for e in events
                                       if type(e).__qualname__.split(".")[0] in _OWNED})

    def handlers(self) -> dict[type, Callable[[Batch, Any], None]]:
        return {}

    def event_row(self, position: int, event: Any) -> dict[str, Any]:
        """The ``actors`` row of ``event`` at ``position``: who, on what, when, and the decision if it is one."""
        kind = type(event)
        owner, event_type, summary, _, _, _ = _FACTS.get(kind) or _facts(kind)
        return {
            "position": position, "actor_id": event.actor_id, "actor_role": event.actor_role,
            "aggregate_type": owner, "aggregate_id": uuid_text(event.originator_id), "event_type": event_type,
            "occurred_at": event.occurred_at, "recorded_at": event.timestamp,
            "is_decision": summary is not None, "decision": summary(event) if summary else None,
        }

    def apply(self, batch: Batch, event: Any) -> None:
        kind = type(event)
        facts = _FACTS.get(kind) or _facts(kind)
        owner, _, _, owned, personal_reason, erasure = facts
        aggregate_id = uuid_text(event.originator_id)
        if owned:
            given = getattr(event, "customer_id", None)
            if given is not None and batch.get("actor_owners", aggregate_id) is None:
                batch.put("actor_owners", {"aggregate_id": aggregate_id, "customer_id": uuid_text(given)})
        if not batch.row_elsewhere(event):
            batch.add("actors", self.event_row(batch.position, event))
        if event.reason is not None:
            # kept with the customer whose key encrypts it (None when not personal), to be erased with it
            batch.add("actor_reasons", {"position": batch.position, "reason": event.reason,
                                        "customer_id": self._customer_of(batch, owner, aggregate_id)
                                        if personal_reason else None})
        if erasure:
            # the reasons encrypted with the customer's key now read as erased; so must their copies here
            batch.update_where("actor_reasons", "customer_id", aggregate_id, lambda row: row.update(reason=ERASED))

    @staticmethod
    def _customer_of(batch: Batch, owner: str, aggregate_id: str) -> str | None:
        if owner == "Customer":
            return aggregate_id
        found = batch.get("actor_owners", aggregate_id) if owner in _OWNED else None
        return found["customer_id"] if found else None


# --------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------

_PERIOD = re.compile(r"^(\d{4})(?:-(0[1-9]|1[0-2])|-Q([1-4])|-H([12]))?$")


def period_range(period: str) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC of ``YYYY-MM``, ``YYYY-Qn``, ``YYYY-Hn`` or ``YYYY``. Raises ``ValueError``."""
    match = _PERIOD.match(period.strip())
    if match is None:
        raise ValueError(f"period must be YYYY-MM, YYYY-Qn, YYYY-Hn or YYYY; got {period!r}")
    year, month, quarter, half = match.groups()
    first, months = (int(month), 1) if month else (3 * int(quarter) - 2, 3) if quarter else \
        (6 * int(half) - 5, 6) if half else (1, 12)
    start = datetime(int(year), first, 1, tzinfo=timezone.utc)
    index = int(year) * 12 + first - 1 + months
    return start, datetime(index // 12, index % 12 + 1, 1, tzinfo=timezone.utc)



TRAIL_LIMIT = 1000
"""Rows per page of an actor trail when the caller names no ``limit`` (the route's and the CLI's)."""
TRAIL_MAX_LIMIT = 10_000
"""The most rows one page of an actor trail holds (the route's and the CLI's)."""


def trail(conn: Connection, t: Tables, actor_id: str, *, start: datetime | None = None, end: datetime | None = None,
          decisions_only: bool = False, limit: int = TRAIL_LIMIT, offset: int = 0,
          after: tuple[datetime, int] | None = None) -> dict[str, Any]:
    """Events by ``actor_id`` that occurred (business time, UTC) in ``[start, end)``, oldest first
    (by business time, then position).

    Returns one page, ``{"total": rows in all, "limit", "next": (occurred_at, position) of the page's last
    row or None on the last page, "rows": [...]}``: the rows after ``after`` (the ``next`` of the previous
    page), skipping ``offset`` more. ``decisions_only`` keeps the decisions.
    """
    a = t.actors.c
    where = [a.actor_id == actor_id]
    if start is not None:
        where.append(a.occurred_at >= start)
    if end is not None:
        where.append(a.occurred_at < end)
    if decisions_only:
        where.append(a.is_decision.is_(True))
    total = conn.execute(select(func.count()).select_from(t.actors).where(*where)).scalar_one()
    if after is not None:
        where.append(or_(a.occurred_at > after[0], and_(a.occurred_at == after[0], a.position > after[1])))
    query = (select(t.actors, t.actor_reasons.c.reason, t.actor_owners.c.customer_id)
             .select_from(t.actors.outerjoin(t.actor_reasons, t.actor_reasons.c.position == a.position)
                          .outerjoin(t.actor_owners, t.actor_owners.c.aggregate_id == a.aggregate_id))
             .where(*where).order_by(a.occurred_at, a.position).limit(limit + 1).offset(offset))
    rows = [_clean(dict(r)) for r in conn.execute(query).mappings()]
    shown = rows[:limit]
    more = len(rows) > limit and bool(shown)
    return {"total": int(total), "limit": limit,
            "next": (shown[-1]["occurred_at"], shown[-1]["position"]) if more else None, "rows": shown}


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    if row["aggregate_type"] == "Customer":
        row["customer_id"] = row["aggregate_id"]
    for column in ("occurred_at", "recorded_at"):
        if isinstance(row.get(column), datetime):
            row[column] = _utc(row[column])
    return row
