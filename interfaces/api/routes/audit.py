"""Audit: history with field-level changes, state as of a moment, actor trail, explainable screening, hash chain.

For compliance auditors only (the permission matrix, and the caller's role
checked again here): these views show a restricted customer's personal data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from application import NotFound, audit
from application.chain import Seal
from domain.base import Context, InvalidValue
from interfaces import reports
from interfaces.api.deps import ActorDep, AppDep, ReadModelsDep
from interfaces.api.schemas import aware_to_utc
from projections.actors import TRAIL_LIMIT, TRAIL_MAX_LIMIT

AUDITOR = "compliance_auditor"
AggregateType = Literal["customer", "visit", "proposal", "contract", "risk_case", "staff", "appraisal_scheme", "target"]


def auditor_only(ctx: ActorDep) -> Context:
    """The caller, who must be a compliance auditor (403 ``forbidden`` otherwise)."""
    if ctx.actor_role != AUDITOR:
        raise HTTPException(status_code=403, detail={"code": "forbidden",
                                                     "detail": "the audit views are for compliance auditors"})
    return ctx


AuditorDep = Annotated[Context, Depends(auditor_only)]
queries = APIRouter(prefix="/audit", tags=["audit"], responses={404: {"description": "No such aggregate"}})


class AuditHistoryPublic(BaseModel):
    """Every event of an aggregate, oldest first: evidence, own fields, and the changes it made."""

    aggregate_type: str
    aggregate_id: UUID
    version: int
    field: str | None = None
    events: list[dict[str, Any]] = Field(description="position, version, event, topic, occurred_at, recorded_at, "
                                                      "actor_id, actor_role, reason, channel, correlation_id, "
                                                      "causation_id, command_id, data, changes[{field, before, after}]")


class AuditStatePublic(BaseModel):
    """An aggregate exactly as it stood at a recorded time, a version or an event."""

    aggregate_type: str
    aggregate_id: UUID
    version: int
    as_of: datetime | None = None
    at_event: str | None = None
    last_event: dict[str, Any]
    state: dict[str, Any]


class ActorTrailPublic(BaseModel):
    """Events (or decisions) by one actor in a period of business time, oldest first."""

    actor_id: str
    start: datetime | None = Field(default=None, serialization_alias="from")
    end: datetime | None = Field(default=None, serialization_alias="to")
    decisions_only: bool
    total: int = Field(description="rows in all")
    limit: int
    next: str | None = Field(description="the `cursor` of the following page; null on the last")
    rows: list[dict[str, Any]]


class ExplanationPublic(BaseModel):
    """Each screening re-scored from its recorded inputs with its recorded model version."""

    customer_id: UUID
    all_match: bool | None
    screenings: list[dict[str, Any]]


class VerificationPublic(BaseModel):
    """The hash chain recomputed from the stored events: ``ok``, or the first altered position."""

    ok: bool
    checked: int
    unsealed: int = Field(description="stored events after the last stored seal (all of them when none is stored)")
    seal: dict[str, Any] | None = Field(description="the last stored seal")
    published: dict[str, Any] | None
    problem: dict[str, Any] | None = Field(description="{position, kind, detail}: edited, deleted, inserted, "
                                                       "reordered, chain_altered, seal_mismatch or seals_missing "
                                                       "(the chain holds links, no seal is stored)")
    warning: dict[str, Any] | None = Field(default=None, description="seals_missing when the held seal matched: "
                                                                     "ok, but no stored seal exists")
    seconds: float
    summary: str


def _not_found(exc: Exception) -> NotFound:
    return NotFound(str(exc))


@queries.get("/verify", operation_id="audit_verify")
def verify(
    app: AppDep, _auditor: AuditorDep,
    seal_position: Annotated[int | None, Query(ge=1, le=2**63 - 1,
                                               description="the position of a seal you hold")] = None,
    seal_link: Annotated[str | None, Query(pattern="^[0-9a-fA-F]{64}$",
                                           description="that seal's link (64 hex digits, either case)")] = None,
) -> VerificationPublic:
    """Recompute every link from the stored events; compare with the seals and with a seal you hold.

    `ok: false` names the first `problem`. A chain that holds links while no seal is stored is the
    problem `seals_missing` (at the chain's head), unless the seal you hold matches the stored
    events: then `ok: true` with that finding as `warning`."""
    held = None
    if (seal_position is None) != (seal_link is None):
        raise InvalidValue("seal_link", "give both seal_position and seal_link, or neither")
    if seal_position is not None and seal_link is not None:
        held = Seal(0, seal_position, seal_link.lower(), 0, datetime.now().astimezone())
    return VerificationPublic.model_validate(app.chain.verify(held).to_json())


def _in_utc(name: str, moment: datetime | None) -> datetime | None:
    """``moment`` in UTC (None for None). Raises :class:`InvalidValue` (422, naming ``name``) for a time
    without a timezone, or one out of range in UTC (``0001-01-01T00:00:00+01:00``)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise InvalidValue(name, "must carry a timezone (e.g. 2009-07-01T00:00:00Z)")
    try:
        return aware_to_utc(moment)
    except ValueError as exc:
        raise InvalidValue(name, str(exc)) from None


@queries.get("/actors/{actor_id}", operation_id="audit_actor_trail", response_model_by_alias=True)
def actor_trail(
    actor_id: str, read_models: ReadModelsDep, _auditor: AuditorDep,
    period: Annotated[str | None, Query(description="2009-05, 2009-Q3, 2009-H1 or 2009 (business time)")] = None,
    start: Annotated[datetime | None, Query(alias="from", description="business time from (inclusive)")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="business time to (exclusive)")] = None,
    decisions_only: Annotated[bool, Query(description="only decisions")] = False,
    limit: Annotated[int, Query(ge=1, le=TRAIL_MAX_LIMIT, description=f"rows per page ({TRAIL_LIMIT} by "
                                                                       f"default, at most {TRAIL_MAX_LIMIT})")
                     ] = TRAIL_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]+$",
                                        description="`next` of the previous page; absent for the first page")] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000, description="rows to skip (after `cursor`)")] = 0,
) -> ActorTrailPublic:
    """Every event — or every decision — by one actor in a period (the actor trail read model), oldest first.
    A page: `total` rows in all, `limit`, `next` (the `cursor` of the following page; null on the last)."""
    from projections.actors import period_range, trail

    _in_utc("from", start), _in_utc("to", end)
    if period is not None:
        if start is not None or end is not None:
            raise InvalidValue("period", "give either period or from/to, not both")
        try:
            start, end = period_range(period)
        except ValueError as exc:
            raise InvalidValue("period", str(exc)) from None
    if start is not None and end is not None and end <= start:
        raise InvalidValue("to", f"must be after from ({start.isoformat()}); got {end.isoformat()}")
    try:
        after = reports.decode_cursor(cursor, ("time", "position"))
    except reports.ReportError as exc:
        raise InvalidValue(exc.field, exc.reason) from None
    with read_models.reading("actors") as (conn, tables):
        data = trail(conn, tables, actor_id, start=start, end=end, decisions_only=decisions_only, limit=limit,
                     offset=offset, after=after)  # type: ignore[arg-type]
    data["next"] = reports.encode_cursor(data["next"]) if data["next"] is not None else None
    return ActorTrailPublic(actor_id=actor_id, start=start, end=end, decisions_only=decisions_only, **data)


@queries.get("/customer/{customer_id}/explain", operation_id="audit_explain")
def explain(customer_id: UUID, app: AppDep, _auditor: AuditorDep) -> ExplanationPublic:
    """Re-score each recorded screening with the recorded model version: same score and outcome?"""
    try:
        return ExplanationPublic.model_validate(audit.explain(app, customer_id))
    except audit.AuditNotFound as exc:
        raise _not_found(exc) from None


@queries.get("/{aggregate_type}/{aggregate_id}/history", operation_id="audit_history")
def history(
    aggregate_type: AggregateType, aggregate_id: UUID, app: AppDep, _auditor: AuditorDep,
    field: Annotated[str | None, Query(max_length=128, description="only events that changed this field "
                                                                   "(or one under it), e.g. credit_standing")] = None,
) -> AuditHistoryPublic:
    """Every event with position, version, times, actor and role, reason, channel, correlation id, before → after.

    `field` keeps the events that changed it (an empty list when it never changed); a `field` the
    aggregate never had in any state and none of its events carries is a 422 `invalid_value` naming
    `field` and listing the aggregate's top-level fields."""
    try:
        return AuditHistoryPublic.model_validate(audit.history(app, aggregate_id, aggregate_type, field=field))
    except audit.AuditNotFound as exc:
        raise _not_found(exc) from None


@queries.get("/{aggregate_type}/{aggregate_id}", operation_id="audit_state")
def state(
    aggregate_type: AggregateType, aggregate_id: UUID, app: AppDep, _auditor: AuditorDep,
    as_of: Annotated[datetime | None, Query(description="recorded time (with a zone)")] = None,
    version: Annotated[int | None, Query(ge=1, description="after this version")] = None,
    at_event: Annotated[str | None, Query(max_length=64, description="right after the latest event of this kind")
                        ] = None,
) -> AuditStatePublic:
    """The aggregate exactly as it stood at a recorded time, after a version, or right after an event."""
    if as_of is not None and as_of.tzinfo is not None:  # without one: state_as_of's own error, below
        _in_utc("as_of", as_of)
    try:
        return AuditStatePublic.model_validate(audit.state_as_of(app, aggregate_id, aggregate_type, as_of=as_of,
                                                                 version=version, at_event=at_event))
    except audit.AuditNotFound as exc:
        raise _not_found(exc) from None
    except ValueError as exc:
        raise InvalidValue("as_of", str(exc)) from None
