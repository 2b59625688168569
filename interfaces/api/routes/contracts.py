"""Contracts: drafted from an accepted proposal, clause review, approval, signing (measures §2.4 step 3)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Path, Response

from application import privacy
from domain.contract import Contract
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
    ClauseReviewCreate,
    CommandPublic,
    ContractCreate,
    ContractPublic,
    ContractStatus,
    FindingResolutionCreate,
    OptionalReasonCreate,
    ReasonCreate,
    RecordsPublic,
    SignatureCreate,
)

commands = APIRouter(prefix="/contracts", tags=["contracts"], responses=COMMAND_RESPONSES)
queries = APIRouter(prefix="/contracts", tags=["contracts"])


@commands.post("", status_code=201, operation_id="draft_contract")
def draft_contract(body: ContractCreate, app: AppDep, ctx: ActorDep, response: Response) -> CommandPublic:
    """Draft a contract from the accepted revision of a proposal."""
    return created(response, app.draft_contract(ctx, proposal_id=body.proposal_id), "/contracts")


@commands.post("/{contract_id}/clause-review", operation_id="review_contract_clauses")
def review_contract_clauses(contract_id: UUID, body: ClauseReviewCreate, app: AppDep, ctx: ActorDep,
                            expected: IfMatchDep, response: Response) -> CommandPublic:
    """Record a clause review (legal risk) with its findings, numbered from 1."""
    findings = [finding.model_dump() for finding in body.findings]
    return reply(response, app.review_contract_clauses(ctx, contract_id, findings=findings,
                                                       expected_version=expected))


@commands.post("/{contract_id}/findings/{finding_number}/resolve", operation_id="resolve_contract_finding")
def resolve_contract_finding(contract_id: UUID, finding_number: Annotated[int, Path(ge=1, le=1_000_000)],
                             body: FindingResolutionCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                             response: Response) -> CommandPublic:
    """Resolve one open clause finding."""
    return reply(response, app.resolve_contract_finding(ctx, contract_id, finding_number=finding_number,
                                                        resolution=body.resolution, expected_version=expected))


@commands.post("/{contract_id}/approve", operation_id="approve_contract")
def approve_contract(contract_id: UUID, app: AppDep, ctx: ActorDep, expected: IfMatchDep, response: Response,
                     body: Annotated[OptionalReasonCreate | None, Body()] = None) -> CommandPublic:
    """Approve a reviewed contract with every finding resolved; the approver may not be the drafter."""
    return reply(response, app.approve_contract(ctx, contract_id, reason=body.reason if body else None,
                                                expected_version=expected))


@commands.post("/{contract_id}/sign", operation_id="sign_contract")
def sign_contract(contract_id: UUID, body: SignatureCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                  response: Response) -> CommandPublic:
    """Sign for the bank; refused while the customer has an open risk case whose response is avoid (§4)."""
    return reply(response, app.sign_contract(ctx, contract_id, customer_signatory=body.customer_signatory,
                                             expected_version=expected))


@commands.post("/{contract_id}/terminate", operation_id="terminate_contract")
def terminate_contract(contract_id: UUID, body: ReasonCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                       response: Response) -> CommandPublic:
    """Terminate a signed contract, with the reason."""
    return reply(response, app.terminate_contract(ctx, contract_id, reason=body.reason, expected_version=expected))


@queries.get("/{contract_id}", operation_id="get_contract", responses={404: COMMAND_RESPONSES[404]})
def get_contract(contract_id: UUID, app: AppDep, response: Response) -> ContractPublic:
    """One contract's current state with its clause findings; ETag is its version."""
    contract = app.load(Contract, contract_id)
    response.headers["ETag"] = etag(contract.version)
    return ContractPublic.model_validate(privacy.shown(app, contract))  # restricted: auditors only


@queries.get("", operation_id="list_contracts")
def list_contracts(read_models: ReadModelsDep, scope: ScopeDep, customer_id: UUID | None = None,
                   status: ContractStatus | None = None, created_by: CreatedBy = None,
                   limit: Limit = 100, offset: Offset = 0) -> RecordsPublic:
    """Contracts from the pipeline read model, newest first, caught up to the latest event;
    only those of the customers the caller may see."""
    return records_page(read_models, "contract", customer_id=customer_id, status=status, created_by=created_by,
                        limit=limit, offset=offset, scope=scope)
