"""Risk cases: identify, assess, respond, monitor, dispose, close (measures §4)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from domain.risk import RiskCase
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
    RiskAssessmentCreate,
    RiskCaseCreate,
    RiskCasePublic,
    RiskDisposalCreate,
    RiskReadingCreate,
    RiskResponseCreate,
    RiskStatus,
)

commands = APIRouter(prefix="/risk-cases", tags=["risk cases"], responses=COMMAND_RESPONSES)
queries = APIRouter(prefix="/risk-cases", tags=["risk cases"])


@commands.post("", status_code=201, operation_id="identify_risk")
def identify_risk(body: RiskCaseCreate, app: AppDep, ctx: ActorDep, response: Response) -> CommandPublic:
    """Open a risk case about a customer or a contract; the customer is linked to it (§4 identify)."""
    return created(response, app.identify_risk(ctx, **body.model_dump()), "/risk-cases")


@commands.post("/{risk_case_id}/assessment", operation_id="assess_risk")
def assess_risk(risk_case_id: UUID, body: RiskAssessmentCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                response: Response) -> CommandPublic:
    """Score the indicators 0-100; the level high / medium / low follows the documented rule (§4 assess)."""
    return reply(response, app.assess_risk(ctx, risk_case_id, indicator_scores=body.indicator_scores,
                                           reason=body.reason, expected_version=expected))


@commands.post("/{risk_case_id}/response", operation_id="decide_risk_response")
def decide_risk_response(risk_case_id: UUID, body: RiskResponseCreate, app: AppDep, ctx: ActorDep,
                         expected: IfMatchDep, response: Response) -> CommandPublic:
    """Decide avoid, reduce, transfer or accept (low risk only), with measures and the reason (§4 respond)."""
    return reply(response, app.decide_risk_response(ctx, risk_case_id, response=body.response,
                                                    measures=body.measures, reason=body.reason,
                                                    expected_version=expected))


@commands.post("/{risk_case_id}/readings", operation_id="record_risk_reading")
def record_risk_reading(risk_case_id: UUID, body: RiskReadingCreate, app: AppDep, ctx: ActorDep,
                        expected: IfMatchDep, response: Response) -> CommandPublic:
    """Record a monitoring reading; crossing its threshold raises an early warning (§4 monitor)."""
    return reply(response, app.record_risk_reading(ctx, risk_case_id, **body.model_dump(),
                                                   expected_version=expected))


@commands.post("/{risk_case_id}/disposal", operation_id="dispose_risk")
def dispose_risk(risk_case_id: UUID, body: RiskDisposalCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                 response: Response) -> CommandPublic:
    """Record the disposal: actions taken and findings (§4 disposal)."""
    return reply(response, app.dispose_risk(ctx, risk_case_id, actions=body.actions, findings=body.findings,
                                            expected_version=expected))


@commands.post("/{risk_case_id}/close", operation_id="close_risk")
def close_risk(risk_case_id: UUID, body: ReasonCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
               response: Response) -> CommandPublic:
    """Close a disposed case, with the reason; the customer's link is removed."""
    return reply(response, app.close_risk(ctx, risk_case_id, reason=body.reason, expected_version=expected))


@queries.get("/{risk_case_id}", operation_id="get_risk_case", responses={404: COMMAND_RESPONSES[404]})
def get_risk_case(risk_case_id: UUID, app: AppDep, response: Response) -> RiskCasePublic:
    """One risk case's current state; ETag is its version."""
    case = app.load(RiskCase, risk_case_id)
    response.headers["ETag"] = etag(case.version)
    return RiskCasePublic.model_validate(case)


@queries.get("", operation_id="list_risk_cases")
def list_risk_cases(read_models: ReadModelsDep, scope: ScopeDep, customer_id: UUID | None = None,
                    status: RiskStatus | None = None, created_by: CreatedBy = None,
                    limit: Limit = 100, offset: Offset = 0) -> RecordsPublic:
    """Risk cases from the pipeline read model, newest first, caught up to the latest event;
    only those of the customers the caller may see."""
    return records_page(read_models, "risk_case", customer_id=customer_id, status=status, created_by=created_by,
                        limit=limit, offset=offset, scope=scope)
