"""Visits: plan, prepare, conduct, feed back, reschedule, cancel (measures §2.3)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from application import privacy
from domain.visit import Visit
from interfaces.api.deps import (
    COMMAND_RESPONSES,
    ActorDep,
    AppDep,
    CreatedBy,
    IfMatchDep,
    Limit,
    Offset,
    ReadModelsDep,
    ScopeDep,
    created,
    etag,
    records_page,
    reply,
)
from interfaces.api.schemas import (
    CommandPublic,
    ReasonCreate,
    RecordsPublic,
    VisitConductCreate,
    VisitCreate,
    VisitFeedbackCreate,
    VisitPreparationCreate,
    VisitPublic,
    VisitRescheduleCreate,
    VisitStatus,
)

commands = APIRouter(prefix="/visits", tags=["visits"], responses=COMMAND_RESPONSES)
queries = APIRouter(prefix="/visits", tags=["visits"])


@commands.post("", status_code=201, operation_id="plan_visit")
def plan_visit(body: VisitCreate, app: AppDep, ctx: ActorDep, response: Response) -> CommandPublic:
    """Plan a visit to an existing customer: purpose, time, staff, method (§2.3 step 1)."""
    return created(response, app.plan_visit(ctx, **body.model_dump()), "/visits")


@commands.post("/{visit_id}/preparation", operation_id="prepare_visit")
def prepare_visit(visit_id: UUID, body: VisitPreparationCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                  response: Response) -> CommandPublic:
    """Record the preparation: background, materials, talking points (§2.3 step 2)."""
    return reply(response, app.prepare_visit(ctx, visit_id, **body.model_dump(), expected_version=expected))


@commands.post("/{visit_id}/conduct", operation_id="conduct_visit")
def conduct_visit(visit_id: UUID, body: VisitConductCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                  response: Response) -> CommandPublic:
    """Record the visit; a key customer's visit must have been prepared (§2.3 step 3)."""
    return reply(response, app.conduct_visit(ctx, visit_id, **body.model_dump(), expected_version=expected))


@commands.post("/{visit_id}/feedback", operation_id="route_visit_feedback")
def route_visit_feedback(visit_id: UUID, body: VisitFeedbackCreate, app: AppDep, ctx: ActorDep,
                         expected: IfMatchDep, response: Response) -> CommandPublic:
    """Feed the visit's findings back to the departments concerned (§2.3 step 4)."""
    return reply(response, app.route_visit_feedback(ctx, visit_id, departments=body.departments,
                                                    feedback=body.feedback, expected_version=expected))


@commands.post("/{visit_id}/reschedule", operation_id="reschedule_visit")
def reschedule_visit(visit_id: UUID, body: VisitRescheduleCreate, app: AppDep, ctx: ActorDep,
                     expected: IfMatchDep, response: Response) -> CommandPublic:
    """Move an open visit to a new time, with the reason."""
    return reply(response, app.reschedule_visit(ctx, visit_id, scheduled_at=body.scheduled_at, reason=body.reason,
                                                expected_version=expected))


@commands.post("/{visit_id}/cancel", operation_id="cancel_visit")
def cancel_visit(visit_id: UUID, body: ReasonCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                 response: Response) -> CommandPublic:
    """Cancel an open visit, with the reason."""
    return reply(response, app.cancel_visit(ctx, visit_id, reason=body.reason, expected_version=expected))


@queries.get("/{visit_id}", operation_id="get_visit", responses={404: COMMAND_RESPONSES[404]})
def get_visit(visit_id: UUID, app: AppDep, response: Response) -> VisitPublic:
    """One visit's current state, rebuilt from its events; ETag is its version."""
    visit = app.load(Visit, visit_id)
    response.headers["ETag"] = etag(visit.version)
    return VisitPublic.model_validate(privacy.shown(app, visit))  # a restricted customer's texts: auditors only


@queries.get("", operation_id="list_visits")
def list_visits(read_models: ReadModelsDep, scope: ScopeDep, customer_id: UUID | None = None,
                status: VisitStatus | None = None, created_by: CreatedBy = None,
                limit: Limit = 100, offset: Offset = 0) -> RecordsPublic:
    """Visits from the pipeline read model, newest first, caught up to the latest event;
    only those of the customers the caller may see."""
    return records_page(read_models, "visit", customer_id=customer_id, status=status, created_by=created_by,
                        limit=limit, offset=offset, scope=scope)
