"""Proposals: draft, revise, approve (four eyes), present, and the customer's answer (measures §2.4)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Response

from domain.proposal import Proposal
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
    OptionalReasonCreate,
    ProposalCreate,
    ProposalPublic,
    ProposalRevisionCreate,
    ProposalStatus,
    ReasonCreate,
    RecordsPublic,
)

commands = APIRouter(prefix="/proposals", tags=["proposals"], responses=COMMAND_RESPONSES)
queries = APIRouter(prefix="/proposals", tags=["proposals"])

OptionalReason = Annotated[OptionalReasonCreate | None, Body()]


@commands.post("", status_code=201, operation_id="draft_proposal")
def draft_proposal(body: ProposalCreate, app: AppDep, ctx: ActorDep, response: Response) -> CommandPublic:
    """Draft a proposal for an existing customer: products, pricing, rights and obligations (§2.4 step 1)."""
    return created(response, app.draft_proposal(ctx, **body.model_dump()), "/proposals")


@commands.post("/{proposal_id}/revisions", operation_id="revise_proposal")
def revise_proposal(proposal_id: UUID, body: ProposalRevisionCreate, app: AppDep, ctx: ActorDep,
                    expected: IfMatchDep, response: Response) -> CommandPublic:
    """Record a new numbered revision, with the reason; earlier ones are kept (§2.4 step 2)."""
    return reply(response, app.revise_proposal(ctx, proposal_id, **body.model_dump(), expected_version=expected))


@commands.post("/{proposal_id}/submit", operation_id="submit_proposal")
def submit_proposal(proposal_id: UUID, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                    response: Response) -> CommandPublic:
    """Submit the current revision for internal approval."""
    return reply(response, app.submit_proposal(ctx, proposal_id, expected_version=expected))


@commands.post("/{proposal_id}/approve", operation_id="approve_proposal")
def approve_proposal(proposal_id: UUID, app: AppDep, ctx: ActorDep, expected: IfMatchDep, response: Response,
                     body: OptionalReason = None) -> CommandPublic:
    """Approve the submitted revision; the approver may not be the drafter (maker-checker)."""
    return reply(response, app.approve_proposal(ctx, proposal_id, reason=body.reason if body else None,
                                                expected_version=expected))


@commands.post("/{proposal_id}/return", operation_id="return_proposal")
def return_proposal(proposal_id: UUID, body: ReasonCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                    response: Response) -> CommandPublic:
    """Return the submitted revision to the drafter, with the reason (maker-checker)."""
    return reply(response, app.return_proposal(ctx, proposal_id, reason=body.reason, expected_version=expected))


@commands.post("/{proposal_id}/present", operation_id="present_proposal")
def present_proposal(proposal_id: UUID, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                     response: Response) -> CommandPublic:
    """Present the approved revision to the customer (§2.4 step 2)."""
    return reply(response, app.present_proposal(ctx, proposal_id, expected_version=expected))


@commands.post("/{proposal_id}/accept", operation_id="accept_proposal")
def accept_proposal(proposal_id: UUID, app: AppDep, ctx: ActorDep, expected: IfMatchDep, response: Response,
                    body: OptionalReason = None) -> CommandPublic:
    """Record the customer's acceptance of the presented revision."""
    return reply(response, app.accept_proposal(ctx, proposal_id, reason=body.reason if body else None,
                                               expected_version=expected))


@commands.post("/{proposal_id}/decline", operation_id="decline_proposal")
def decline_proposal(proposal_id: UUID, body: ReasonCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                     response: Response) -> CommandPublic:
    """Record the customer's refusal, with the reason."""
    return reply(response, app.decline_proposal(ctx, proposal_id, reason=body.reason, expected_version=expected))


@commands.post("/{proposal_id}/withdraw", operation_id="withdraw_proposal")
def withdraw_proposal(proposal_id: UUID, body: ReasonCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                      response: Response) -> CommandPublic:
    """Withdraw an open proposal, with the reason."""
    return reply(response, app.withdraw_proposal(ctx, proposal_id, reason=body.reason, expected_version=expected))


@queries.get("/{proposal_id}", operation_id="get_proposal", responses={404: COMMAND_RESPONSES[404]})
def get_proposal(proposal_id: UUID, app: AppDep, response: Response) -> ProposalPublic:
    """One proposal's current state with every revision; ETag is its version."""
    proposal = app.load(Proposal, proposal_id)
    response.headers["ETag"] = etag(proposal.version)
    return ProposalPublic.model_validate(proposal)


@queries.get("", operation_id="list_proposals")
def list_proposals(read_models: ReadModelsDep, scope: ScopeDep, customer_id: UUID | None = None,
                   status: ProposalStatus | None = None, created_by: CreatedBy = None,
                   limit: Limit = 100, offset: Offset = 0) -> RecordsPublic:
    """Proposals from the pipeline read model, newest first, caught up to the latest event;
    only those of the customers the caller may see."""
    return records_page(read_models, "proposal", customer_id=customer_id, status=status, created_by=created_by,
                        limit=limit, offset=offset, scope=scope)
