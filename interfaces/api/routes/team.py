"""The acquisition team, its appraisal schemes and targets (measures §1, §3).

Staff are addressed by their staff code (the id they act under); schemes and
targets by the id returned when they were created.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Path, Response

from domain.team import AppraisalScheme, Staff, Target, staff_id
from interfaces.api.deps import COMMAND_RESPONSES, ActorDep, AppDep, IfMatchDep, created, etag, reply
from interfaces.api.schemas import (
    AppraisalSchemeCreate,
    AppraisalSchemePublic,
    AppraisalSchemeRevisionCreate,
    AwardCreate,
    CommandPublic,
    ReasonCreate,
    StaffCreate,
    StaffPublic,
    TargetCreate,
    TargetPublic,
    TargetRevisionCreate,
    TrainingCreate,
)

commands = APIRouter(tags=["team"], responses=COMMAND_RESPONSES)
queries = APIRouter(tags=["team"])

StaffCode = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[^/\x00]+$")]


@commands.post("/staff", status_code=201, operation_id="join_team")
def join_team(body: StaffCreate, app: AppDep, ctx: ActorDep, response: Response) -> CommandPublic:
    """Add a member to the acquisition team in a role and branch (§3)."""
    result = app.join_team(ctx, **body.model_dump())
    response.headers["Location"] = f"/staff/{quote(body.staff_code.strip(), safe='')}"
    return reply(response, result)


@commands.post("/staff/{staff_code}/trainings", operation_id="record_training")
def record_training(staff_code: StaffCode, body: TrainingCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                    response: Response) -> CommandPublic:
    """Record an internal or external training with its hours (§3 training)."""
    return reply(response, app.record_training(ctx, staff_code, **body.model_dump(), expected_version=expected))


@commands.post("/staff/{staff_code}/awards", operation_id="grant_award")
def grant_award(staff_code: StaffCode, body: AwardCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                response: Response) -> CommandPublic:
    """Grant a bonus, certificate, promotion or special award, with the reason (§3 rewards)."""
    return reply(response, app.grant_award(ctx, staff_code, **body.model_dump(), expected_version=expected))


@commands.post("/staff/{staff_code}/leave", operation_id="leave_team")
def leave_team(staff_code: StaffCode, body: ReasonCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
               response: Response) -> CommandPublic:
    """Record that the member left the team, with the reason."""
    return reply(response, app.leave_team(ctx, staff_code, reason=body.reason, expected_version=expected))


@commands.post("/appraisal-schemes", status_code=201, operation_id="define_appraisal_scheme")
def define_appraisal_scheme(body: AppraisalSchemeCreate, app: AppDep, ctx: ActorDep,
                            response: Response) -> CommandPublic:
    """Define a year's appraisal scheme; the weights sum to 100 (§3 appraisal)."""
    return created(response, app.define_appraisal_scheme(ctx, **body.model_dump()), "/appraisal-schemes")


@commands.post("/appraisal-schemes/{scheme_id}/redefinition", operation_id="redefine_appraisal_scheme")
def redefine_appraisal_scheme(scheme_id: UUID, body: AppraisalSchemeRevisionCreate, app: AppDep, ctx: ActorDep,
                              expected: IfMatchDep, response: Response) -> CommandPublic:
    """Replace a scheme's indicators, with the reason."""
    return reply(response, app.redefine_appraisal_scheme(ctx, scheme_id, **body.model_dump(),
                                                         expected_version=expected))


@commands.post("/targets", status_code=201, operation_id="set_target")
def set_target(body: TargetCreate, app: AppDep, ctx: ActorDep, response: Response) -> CommandPublic:
    """Set a year's target of one indicator for a bank, branch, team or person (§1)."""
    return created(response, app.set_target(ctx, **body.model_dump()), "/targets")


@commands.post("/targets/{target_id}/revisions", operation_id="revise_target")
def revise_target(target_id: UUID, body: TargetRevisionCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                  response: Response) -> CommandPublic:
    """Revise a target's annual value and checkpoints, with the reason."""
    return reply(response, app.revise_target(ctx, target_id, **body.model_dump(), expected_version=expected))


@queries.get("/staff/{staff_code}", operation_id="get_staff", responses={404: COMMAND_RESPONSES[404]})
def get_staff(staff_code: StaffCode, app: AppDep, response: Response) -> StaffPublic:
    """One team member's current state; ETag is its version."""
    staff = app.load(Staff, staff_id(staff_code))
    response.headers["ETag"] = etag(staff.version)
    return StaffPublic.model_validate(staff)


@queries.get("/appraisal-schemes/{scheme_id}", operation_id="get_appraisal_scheme",
             responses={404: COMMAND_RESPONSES[404]})
def get_appraisal_scheme(scheme_id: UUID, app: AppDep, response: Response) -> AppraisalSchemePublic:
    """One appraisal scheme with its weighted indicators; ETag is its version."""
    scheme = app.load(AppraisalScheme, scheme_id)
    response.headers["ETag"] = etag(scheme.version)
    return AppraisalSchemePublic.model_validate(scheme)


@queries.get("/targets/{target_id}", operation_id="get_target", responses={404: COMMAND_RESPONSES[404]})
def get_target(target_id: UUID, app: AppDep, response: Response) -> TargetPublic:
    """One target's current values; ETag is its version."""
    target = app.load(Target, target_id)
    response.headers["ETag"] = etag(target.version)
    return TargetPublic.model_validate(target)
