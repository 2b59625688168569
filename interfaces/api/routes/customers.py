"""Customers: registration, facts, screening, review, account opening and service (measures §2.1, §2.2, §2.5)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from application import privacy
from domain.customer import Customer
from interfaces.api.deps import (
    COMMAND_RESPONSES,
    ActorDep,
    AppDep,
    IfMatchDep,
    Limit,
    Offset,
    ReadModelsDep,
    ScopeDep,
    created,
    etag,
    pipeline_caught_up,
    reply,
)
from interfaces.api.schemas import (
    AccountApplicationCreate,
    AccountCreate,
    AcquisitionChannel,
    BusinessFiguresCreate,
    CommandPublic,
    CreditStandingCreate,
    CustomerCreate,
    CustomerKind,
    CustomerPublic,
    CustomerReviewCreate,
    CustomersPublic,
    CustomerStage,
    DocumentReviewCreate,
    FactsCreate,
    FollowUpCreate,
    ManagerCreate,
    ProductsCreate,
    ReasonCreate,
    RiskLevel,
)

TextFilter = Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$")]

commands = APIRouter(prefix="/customers", tags=["customers"], responses=COMMAND_RESPONSES)
queries = APIRouter(prefix="/customers", tags=["customers"])


@commands.post("", status_code=201, operation_id="register_customer")
def register_customer(body: CustomerCreate, app: AppDep, ctx: ActorDep, response: Response) -> CommandPublic:
    """Register a prospect in the customer system (§2.1, §2.2 step 1)."""
    return created(response, app.register_customer(ctx, **body.model_dump()), "/customers")


@commands.post("/{customer_id}/facts", operation_id="record_facts")
def record_facts(customer_id: UUID, body: FactsCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                 response: Response) -> CommandPublic:
    """Record one group of facts: basic, financial, business or needs (§2.1)."""
    return reply(response, app.record_facts(ctx, customer_id, group=body.group, facts=body.facts,
                                            expected_version=expected))


@commands.post("/{customer_id}/credit-standing", operation_id="record_credit_standing")
def record_credit_standing(customer_id: UUID, body: CreditStandingCreate, app: AppDep, ctx: ActorDep,
                           expected: IfMatchDep, response: Response) -> CommandPublic:
    """Record the credit standing from the credit bureau or a rating agency (§2.2)."""
    return reply(response, app.record_credit_standing(ctx, customer_id, source=body.source, result=body.result,
                                                      rating=body.rating, expected_version=expected))


@commands.post("/{customer_id}/screening", operation_id="screen_customer")
def screen_customer(customer_id: UUID, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                    response: Response) -> CommandPublic:
    """Run the built-in screening model on the recorded facts (§2.2 step 2)."""
    return reply(response, app.screen_customer(ctx, customer_id, expected_version=expected))


@commands.post("/{customer_id}/review", operation_id="review_customer")
def review_customer(customer_id: UUID, body: CustomerReviewCreate, app: AppDep, ctx: ActorDep,
                    expected: IfMatchDep, response: Response) -> CommandPublic:
    """Qualify or reject after screening; the reviewer may not be the customer's manager (§2.2 step 3)."""
    return reply(response, app.review_customer(ctx, customer_id, decision=body.decision, reason=body.reason,
                                               expected_version=expected))


@commands.post("/{customer_id}/account-application", operation_id="apply_for_account")
def apply_for_account(customer_id: UUID, body: AccountApplicationCreate, app: AppDep, ctx: ActorDep,
                      expected: IfMatchDep, response: Response) -> CommandPublic:
    """Apply for an account with supporting documents (§2.5)."""
    return reply(response, app.apply_for_account(ctx, customer_id, account_type=body.account_type,
                                                 documents=body.documents, expected_version=expected))


@commands.post("/{customer_id}/document-review", operation_id="review_documents")
def review_documents(customer_id: UUID, body: DocumentReviewCreate, app: AppDep, ctx: ActorDep,
                     expected: IfMatchDep, response: Response) -> CommandPublic:
    """Accept the account-opening documents or return them with reasons (§2.5)."""
    return reply(response, app.review_documents(ctx, customer_id, accepted=body.accepted,
                                                return_reasons=body.return_reasons, expected_version=expected))


@commands.post("/{customer_id}/account", operation_id="open_account")
def open_account(customer_id: UUID, body: AccountCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                 response: Response) -> CommandPublic:
    """Open and initialise the account once the documents are accepted (§2.5)."""
    return reply(response, app.open_account(ctx, customer_id, account_number=body.account_number,
                                            expected_version=expected))


@commands.post("/{customer_id}/products", operation_id="sign_products")
def sign_products(customer_id: UUID, body: ProductsCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                  response: Response) -> CommandPublic:
    """Sign up products on the opened account (§2.5)."""
    return reply(response, app.sign_products(ctx, customer_id, products=body.products, expected_version=expected))


@commands.post("/{customer_id}/manager", operation_id="reassign_manager")
def reassign_manager(customer_id: UUID, body: ManagerCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                     response: Response) -> CommandPublic:
    """Hand the customer to another customer manager, with the reason (§3)."""
    return reply(response, app.reassign_manager(ctx, customer_id, manager_id=body.manager_id, reason=body.reason,
                                                expected_version=expected))


@commands.post("/{customer_id}/key-customer", operation_id="mark_key_customer")
def mark_key_customer(customer_id: UUID, body: ReasonCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                      response: Response) -> CommandPublic:
    """Mark as a key customer (重點客戶), whose visits need a prepared plan (§2.3)."""
    return reply(response, app.mark_key_customer(ctx, customer_id, reason=body.reason, expected_version=expected))


@commands.post("/{customer_id}/follow-ups", operation_id="record_follow_up")
def record_follow_up(customer_id: UUID, body: FollowUpCreate, app: AppDep, ctx: ActorDep, expected: IfMatchDep,
                     response: Response) -> CommandPublic:
    """Record a return visit's satisfaction (1-5) and feedback (§2.5 step 2)."""
    return reply(response, app.record_follow_up(ctx, customer_id, satisfaction=body.satisfaction,
                                                feedback=body.feedback, expected_version=expected))


@commands.post("/{customer_id}/business-figures", operation_id="report_business_figures")
def report_business_figures(customer_id: UUID, body: BusinessFiguresCreate, app: AppDep, ctx: ActorDep,
                            expected: IfMatchDep, response: Response) -> CommandPublic:
    """Report one month's deposit balance, loans disbursed and fee income (§5)."""
    return reply(response, app.report_business_figures(ctx, customer_id, **body.model_dump(),
                                                       expected_version=expected))


@queries.get("/{customer_id}", operation_id="get_customer", responses={404: COMMAND_RESPONSES[404]})
def get_customer(customer_id: UUID, app: AppDep, response: Response) -> CustomerPublic:
    """One customer's current state, rebuilt from its events; ETag is its version."""
    customer = app.load(Customer, customer_id)
    response.headers["ETag"] = etag(customer.version)
    return CustomerPublic.model_validate(privacy.without_personal_data(customer))  # restricted: auditors only


@queries.get("", operation_id="list_customers")
def list_customers(
    read_models: ReadModelsDep,
    scope: ScopeDep,
    stage: CustomerStage | None = None,
    manager_id: TextFilter = None,
    branch: TextFilter = None,
    channel: AcquisitionChannel | None = None,
    segment: TextFilter = None,
    kind: CustomerKind | None = None,
    is_key: bool | None = None,
    risk_level: RiskLevel | None = None,
    q: Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$",
                                   description="text in the name, account number or id (case-insensitive)")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> CustomersPublic:
    """Customers from the pipeline read model, newest registration first, caught up to the latest event;
    a customer manager sees their own customers, a branch head their branch's."""
    position = pipeline_caught_up(read_models)
    rows = read_models.customers(stage=stage, manager_id=manager_id, branch=branch, channel=channel, segment=segment,
                                 kind=kind, is_key=is_key, risk_level=risk_level, q=q, limit=limit, offset=offset,
                                 scope=scope)
    return CustomersPublic(data=rows, limit=limit, offset=offset, position=position)
