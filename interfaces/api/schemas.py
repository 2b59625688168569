"""The API's pydantic models: ``XCreate`` for request bodies, ``XPublic`` for responses.

They describe the HTTP contract only. Rules stay in the aggregates (``domain/``):
a value the schema accepts may still be refused there, with 422
``invalid_value`` naming the field or 409 naming the rule.

Conventions:

- a whole number (a score, a count of seconds) is a JSON number: ``true`` or
  ``"80"`` is a 422 ``int_type``, ``80.0`` is 80; a yes/no is a JSON boolean;
- money is ``Decimal`` in major units of an ISO 4217 ``currency``; it is read
  from a JSON number or string and written as a JSON string (no float rounding);
- request datetimes must carry a UTC offset; response datetimes are ISO 8601 in
  UTC with the offset written out (``2025-03-01T01:00:00+00:00``);
- request bodies refuse unknown fields, NUL characters, lone UTF-16 surrogates
  (``"\\ud800"``: not a character, so not text UTF-8 can store; 422 ``invalid_text``)
  and non-finite numbers;
  fields the read models index are no longer than their columns (so a value
  PostgreSQL would refuse can never stop a projection).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    field_validator,
)
from pydantic_core import PydanticCustomError

from domain import contract as contract_rules
from domain import customer as customer_rules
from domain import proposal as proposal_rules
from domain import risk as risk_rules
from domain import team as team_rules
from domain import user as user_rules
from domain import visit as visit_rules

# --------------------------------------------------------------------------
# Shared types
# --------------------------------------------------------------------------

MAX_TEXT = 10_000
"""Longest accepted string in a request body, in characters."""


def _as_utc(value: datetime) -> datetime:
    """Aware datetimes converted to UTC; naive ones (SQLite read models) are UTC already."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


UtcDatetime = Annotated[
    datetime,
    AfterValidator(_as_utc),
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
]
"""A response datetime: UTC, written as ISO 8601 with ``+00:00``."""

def aware_to_utc(value: datetime) -> datetime:
    """An aware ``value`` in UTC; raises ``ValueError`` when it is out of range there (year 1 or 9999)."""
    try:
        return value.astimezone(timezone.utc)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


RequestDatetime = Annotated[AwareDatetime, AfterValidator(aware_to_utc)]
"""A request datetime: must carry a UTC offset; converted to UTC."""

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]
"""Why a decision was taken; the measures require it (evidence, §0)."""

Money = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=22, decimal_places=4, examples=["125000.00"])]
"""An amount in major units of the accompanying ``currency``: up to 18 integer digits and 4 decimals."""

Number = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=28, decimal_places=10)]
"""A decimal measure (hours, weights, readings, target values): up to 28 digits, 10 of them decimals,
so that sums stay exact within Python's default decimal precision."""

def _json_number(value: Any) -> Any:
    """Refuse what lax validation would turn into a number: a boolean (``true`` is not 1) or a string."""
    if isinstance(value, (bool, str)):
        raise PydanticCustomError("int_type", "Input should be a whole number written as a JSON number, not {kind}",
                                  {"kind": "a boolean" if isinstance(value, bool) else "a string"})
    return value


WholeNumber = Annotated[int, BeforeValidator(_json_number)]
"""A whole number sent as a JSON number (``80`` or ``80.0``; never ``true`` or ``"80"``)."""

CustomerKind = Literal[customer_rules.KINDS]  # type: ignore[valid-type]
AcquisitionChannel = Literal[customer_rules.CHANNELS]  # type: ignore[valid-type]
FactGroup = Literal[customer_rules.FACT_GROUPS]  # type: ignore[valid-type]
ReviewDecision = Literal[customer_rules.REVIEW_DECISIONS]  # type: ignore[valid-type]
CustomerStage = Literal[  # type: ignore[valid-type]
    (customer_rules.REGISTERED, customer_rules.SCREENED, customer_rules.QUALIFIED, customer_rules.REJECTED,
     customer_rules.APPLIED, customer_rules.DOCUMENTS_ACCEPTED, customer_rules.DOCUMENTS_RETURNED,
     customer_rules.ACCOUNT_OPENED)
]
VisitMethod = Literal[visit_rules.METHODS]  # type: ignore[valid-type]
VisitKind = Literal[visit_rules.KINDS]  # type: ignore[valid-type]
VisitStatus = Literal[  # type: ignore[valid-type]
    (visit_rules.PLANNED, visit_rules.PREPARED, visit_rules.CONDUCTED, visit_rules.CANCELLED)
]
ProposalStatus = Literal[  # type: ignore[valid-type]
    (*proposal_rules.OPEN, proposal_rules.ACCEPTED, proposal_rules.DECLINED, proposal_rules.WITHDRAWN)
]
ContractStatus = Literal[  # type: ignore[valid-type]
    (contract_rules.DRAFTED, contract_rules.UNDER_REVIEW, contract_rules.APPROVED, contract_rules.SIGNED,
     contract_rules.TERMINATED)
]
RiskSubjectType = Literal[risk_rules.SUBJECT_TYPES]  # type: ignore[valid-type]
RiskCategory = Literal[risk_rules.CATEGORIES]  # type: ignore[valid-type]
RiskResponse = Literal[risk_rules.RESPONSES]  # type: ignore[valid-type]
ReadingDirection = Literal[risk_rules.DIRECTIONS]  # type: ignore[valid-type]
RiskLevel = Literal["low", "medium", "high"]
RiskStatus = Literal[  # type: ignore[valid-type]
    (risk_rules.IDENTIFIED, risk_rules.ASSESSED, risk_rules.RESPONDING, risk_rules.DISPOSED, risk_rules.CLOSED)
]

StaffRole = Literal[team_rules.ROLES]  # type: ignore[valid-type]
TrainingKind = Literal[team_rules.TRAINING_KINDS]  # type: ignore[valid-type]
AwardKind = Literal[team_rules.AWARD_KINDS]  # type: ignore[valid-type]
UnitType = Literal[team_rules.UNIT_TYPES]  # type: ignore[valid-type]
IndicatorGroup = Literal[team_rules.INDICATOR_GROUPS]  # type: ignore[valid-type]
Indicator = Literal[tuple(team_rules.INDICATORS)]  # type: ignore[valid-type]
Year = Annotated[str, Field(pattern=r"^\d{4}$", examples=["2025"])]


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
"""A UTF-16 surrogate left alone in a decoded string (JSON's ``"\\ud800"``): it is not a character."""


def _check_json(value: Any, where: str = "") -> None:
    """Refuse NUL characters (no read-model database can store them), lone UTF-16 surrogates
    (``invalid_text``: no UTF-8 encoder can write them) and NaN / infinity."""
    prefix = f"{where}: " if where else ""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{prefix}must not contain NUL characters")
        if _LONE_SURROGATE.search(value):
            raise PydanticCustomError("invalid_text", "{where}must be Unicode text: a lone UTF-16 surrogate "
                                      "(\\ud800-\\udfff without its pair) is not a character", {"where": prefix})
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{prefix}must be a finite number, not NaN or Infinity")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json(key, f"{where}[{key!r}]")
            _check_json(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]")


def example(body: dict[str, Any]) -> ConfigDict:
    """A request model's config carrying one example body for the OpenAPI document."""
    return ConfigDict(json_schema_extra={"examples": [body]})


class ApiCreate(BaseModel):
    """Base of request bodies: unknown fields refused, strings at most ``MAX_TEXT`` long."""

    model_config = ConfigDict(extra="forbid", str_max_length=MAX_TEXT)

    @field_validator("*", mode="before")
    @classmethod
    def _plain_json(cls, value: Any) -> Any:
        _check_json(value)
        return value


class PublicModel(BaseModel):
    """Base of response bodies: read from aggregates' attributes or read-model rows."""

    model_config = ConfigDict(from_attributes=True)


# --------------------------------------------------------------------------
# Commands: common
# --------------------------------------------------------------------------


class ReasonCreate(ApiCreate):
    """A decision that the measures require a reason for."""

    model_config = example({"reason": "customer chose another bank"})

    reason: Reason


class OptionalReasonCreate(ApiCreate):
    """A decision whose reason is optional."""

    model_config = example({"reason": "pricing within policy"})

    reason: str | None = None


class CommandPublic(PublicModel):
    """What a command did. ``position`` is the event log position of its last event:
    read models show the command once their position reaches it."""

    aggregate_id: UUID
    version: int
    position: int
    replayed: bool = Field(description="true when the Idempotency-Key was already applied; nothing new was written")


class ErrorPublic(BaseModel):
    """A refused command: ``code`` is stable and machine-readable, ``detail`` says why."""

    code: str
    detail: str
    field: str | None = None


# --------------------------------------------------------------------------
# Customers (measures §2.1, §2.2, §2.5, §3, §5)
# --------------------------------------------------------------------------


class CustomerCreate(ApiCreate):
    """A prospect entered into the customer system (§2.1, §2.2 step 1)."""

    model_config = example({
        "kind": "corporate", "acquisition_channel": "branch", "source_detail": "walk-in at the counter",
        "segment": "sme_manufacturing", "manager_id": "mgr-li", "branch": "shanghai-pudong",
        "display_name": "Pudong Precision Ltd.",
    })

    kind: CustomerKind
    acquisition_channel: AcquisitionChannel
    source_detail: str
    segment: str = Field(max_length=64)
    manager_id: str = Field(max_length=128, description="the customer manager (客戶經理) who wins and keeps the customer")
    branch: str = Field(max_length=64)
    display_name: str | None = Field(default=None, max_length=256)


class FactsCreate(ApiCreate):
    """Facts of one group (§2.1): basic, financial, business or needs."""

    model_config = example({"group": "basic", "facts": {"age": 41, "job": "management"}})

    group: FactGroup
    facts: dict[str, Any] = Field(examples=[{"age": 41, "job": "management"}])


class CreditStandingCreate(ApiCreate):
    """Credit standing from the credit bureau (征信系統) or a rating agency (§2.2)."""

    model_config = example({"source": "credit_bureau", "result": "no_default", "rating": "AA"})

    source: str = Field(examples=["credit_bureau"])
    result: str = Field(max_length=32, examples=["no_default"],
                        description="the screening model reads no_default / in_default")
    rating: str | None = Field(default=None, max_length=16, examples=["AA"])


class CustomerReviewCreate(ApiCreate):
    """Manual review (§2.2 step 3) by someone other than the customer's manager."""

    model_config = example({"decision": "qualified", "reason": "facts verified against the business licence"})

    decision: ReviewDecision
    reason: Reason


class AccountApplicationCreate(ApiCreate):
    """Application for an account with its supporting documents (§2.5)."""

    model_config = example({
        "account_type": "corporate_current", "documents": ["business licence", "legal representative ID"],
    })

    account_type: str
    documents: list[str]


class DocumentReviewCreate(ApiCreate):
    """Documents accepted, or returned with at least one reason (§2.5)."""

    model_config = example({"accepted": False, "return_reasons": ["licence copy is not certified"]})

    accepted: StrictBool
    return_reasons: list[str] = []


class AccountCreate(ApiCreate):
    """The opened account (§2.5)."""

    model_config = example({"account_number": "6222-0001-0042"})

    account_number: str = Field(max_length=64)


class ProductsCreate(ApiCreate):
    """Products signed up on the opened account (§2.5)."""

    model_config = example({"products": ["corporate_current_account", "payroll_service"]})

    products: list[str]


class ManagerCreate(ApiCreate):
    """Hand the customer to another customer manager (§3)."""

    model_config = example({"manager_id": "mgr-qian", "reason": "mgr-li moved to the head office"})

    manager_id: str = Field(max_length=128)
    reason: Reason


class FollowUpCreate(ApiCreate):
    """A return visit (回訪): satisfaction 1-5 and feedback (§2.5 step 2)."""

    model_config = example({"satisfaction": 5, "feedback": "account opening was smooth"})

    satisfaction: WholeNumber = Field(description="1 (very unsatisfied) to 5 (very satisfied)")
    feedback: str = ""


class BusinessFiguresCreate(ApiCreate):
    """One month's figures (§5): month-end deposit balance, the month's loans and fee income."""

    model_config = example({
        "period": "2025-03", "currency": "CNY", "deposit_balance": "1234567.89", "loans_disbursed": "0",
        "fee_income": "1200.50",
    })

    period: str = Field(examples=["2025-03"], description="YYYY-MM")
    currency: str = Field(examples=["CNY"], description="ISO 4217 code")
    deposit_balance: Money
    loans_disbursed: Money
    fee_income: Money


class CreditStandingPublic(PublicModel):
    source: str
    result: str
    rating: str | None = None


class ScreeningPublic(PublicModel):
    model_name: str
    model_version: str
    score: int
    outcome: str


class ManualReviewPublic(PublicModel):
    decision: str
    reviewer_id: str
    reason: str | None = None


class AccountApplicationPublic(PublicModel):
    account_type: str
    documents: list[str]


class DocumentReviewPublic(PublicModel):
    accepted: StrictBool
    return_reasons: list[str]


class BusinessFiguresPublic(PublicModel):
    currency: str
    deposit_balance: Decimal
    loans_disbursed: Decimal
    fee_income: Decimal


class CustomerPublic(PublicModel):
    """A customer's current state, rebuilt from its events."""

    id: UUID
    version: int
    kind: str
    acquisition_channel: str
    source_detail: str
    segment: str
    manager_id: str
    branch: str
    display_name: str | None = None
    stage: str
    is_key: bool
    facts: dict[str, dict[str, Any]]
    credit_standing: CreditStandingPublic | None = None
    screening: ScreeningPublic | None = None
    manual_review: ManualReviewPublic | None = None
    application: AccountApplicationPublic | None = None
    document_review: DocumentReviewPublic | None = None
    account_number: str | None = None
    products: list[str]
    follow_ups: int
    business_figures: dict[str, BusinessFiguresPublic] = Field(description="by period YYYY-MM")
    open_risk_cases: list[UUID]
    created_on: UtcDatetime = Field(description="when tuohu recorded the first event")
    modified_on: UtcDatetime = Field(description="when tuohu recorded the latest event")


class CustomerSummaryPublic(PublicModel):
    """One customer row of the pipeline read model."""

    id: UUID = Field(validation_alias="customer_id")
    display_name: str | None = None
    kind: str
    channel: str
    segment: str
    manager_id: str
    branch: str
    stage: str
    stage_entered_at: UtcDatetime = Field(description="business time the customer entered its stage")
    is_key: bool
    risk_level: str | None = Field(default=None, description="highest level among its open risk cases")
    credit_result: str | None = None
    credit_rating: str | None = None
    registered_at: UtcDatetime
    screened: bool
    screening_outcome: str | None = None
    screening_score: int | None = None
    qualified: bool
    visited: bool
    proposed: bool
    contracted: bool
    account_opened: bool
    account_number: str | None = None
    version: int
    updated_at: UtcDatetime


class CustomersPublic(PublicModel):
    """A page of customers; ``position`` is the event log position the read model reflects."""

    data: list[CustomerSummaryPublic]
    limit: int
    offset: int
    position: int


# --------------------------------------------------------------------------
# Visits (§2.3)
# --------------------------------------------------------------------------


class VisitCreate(ApiCreate):
    """Visit plan (§2.3 step 1): purpose, time, staff, method."""

    model_config = example({
        "customer_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "purpose": "introduce payroll service",
        "scheduled_at": "2025-03-03T09:30:00+08:00", "staff": ["mgr-li"], "method": "in_person",
        "kind": "acquisition",
    })

    customer_id: UUID
    purpose: str
    scheduled_at: RequestDatetime
    staff: list[str]
    method: VisitMethod
    kind: VisitKind = "acquisition"


class VisitPreparationCreate(ApiCreate):
    """Preparation (§2.3 step 2): background, materials, talking points."""

    model_config = example({
        "background": "family-owned, 3 plants", "materials": ["payroll brochure"],
        "talking_points": ["fee waiver for 12 months"],
    })

    background: str
    materials: list[str] = []
    talking_points: list[str] = []


class VisitConductCreate(ApiCreate):
    """The visit as it took place (§2.3 step 3)."""

    model_config = example({
        "outcome": "interested in payroll", "needs_learned": "payroll for 120 staff",
        "next_steps": "send a proposal", "duration_seconds": 2700,
    })

    outcome: str
    needs_learned: str = ""
    next_steps: str = ""
    duration_seconds: WholeNumber | None = None


class VisitFeedbackCreate(ApiCreate):
    """Needs and suggestions fed back to the departments concerned (§2.3 step 4)."""

    model_config = example({"departments": ["product"], "feedback": "wants a payroll fee below 2.50 CNY per head"})

    departments: list[str]
    feedback: str


class VisitRescheduleCreate(ApiCreate):
    """A new time for the visit, with the reason."""

    model_config = example({"scheduled_at": "2025-03-05T14:00:00+08:00", "reason": "CFO travelling"})

    scheduled_at: RequestDatetime
    reason: Reason


class VisitPreparationPublic(PublicModel):
    background: str
    materials: list[str]
    talking_points: list[str]


class VisitPublic(PublicModel):
    """A visit's current state, rebuilt from its events."""

    id: UUID
    version: int
    customer_id: UUID
    purpose: str
    scheduled_at: UtcDatetime
    staff: list[str]
    method: str
    kind: str
    status: str
    preparation: VisitPreparationPublic | None = None
    outcome: str | None = None
    feedback_routed_to: list[str]
    created_on: UtcDatetime
    modified_on: UtcDatetime


# --------------------------------------------------------------------------
# Proposals (§2.4)
# --------------------------------------------------------------------------


class ProposalCreate(ApiCreate):
    """Proposal (§2.4 step 1): products, pricing terms, rights and obligations."""

    model_config = example({
        "customer_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "products": ["corporate_current_account", "payroll_service"],
        "pricing_terms": {"account_fee": "waived", "payroll_fee_per_head": "2.00", "currency": "CNY"},
        "rights_and_obligations": "bank provides payroll service; customer keeps payroll with the bank",
    })

    customer_id: UUID
    products: list[str]
    pricing_terms: dict[str, Any] = Field(examples=[{"account_fee": "waived", "currency": "CNY"}])
    rights_and_obligations: str


class ProposalRevisionCreate(ApiCreate):
    """A new numbered revision, with the reason (§2.4 step 2)."""

    model_config = example({
        "products": ["corporate_current_account", "payroll_service"],
        "pricing_terms": {"account_fee": "waived", "payroll_fee_per_head": "2.40", "currency": "CNY"},
        "rights_and_obligations": "bank provides payroll service; customer keeps payroll with the bank",
        "reason": "fee raised to cost",
    })

    products: list[str]
    pricing_terms: dict[str, Any]
    rights_and_obligations: str
    reason: Reason


class ProposalRevisionPublic(PublicModel):
    revision: int
    products: list[str]
    pricing_terms: dict[str, Any]
    rights_and_obligations: str


class ProposalPublic(PublicModel):
    """A proposal's current state with every revision, rebuilt from its events."""

    id: UUID
    version: int
    customer_id: UUID
    drafter_id: str
    approver_id: str | None = None
    status: str
    revision: int = Field(description="number of the current revision")
    revisions: list[ProposalRevisionPublic]
    created_on: UtcDatetime
    modified_on: UtcDatetime


# --------------------------------------------------------------------------
# Contracts (§2.4 step 3)
# --------------------------------------------------------------------------


class ContractCreate(ApiCreate):
    """A contract drafted from an accepted proposal."""

    model_config = example({"proposal_id": "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"})

    proposal_id: UUID


class ClauseFindingCreate(ApiCreate):
    """One finding of a clause review."""

    model_config = example({"clause": "7.2", "finding": "liability cap missing"})

    clause: str
    finding: str


class ClauseReviewCreate(ApiCreate):
    """A clause review (legal risk); an empty list records clean clauses."""

    model_config = example({"findings": [{"clause": "7.2", "finding": "liability cap missing"}]})

    findings: list[ClauseFindingCreate]


class FindingResolutionCreate(ApiCreate):
    """How a clause finding was resolved."""

    model_config = example({"resolution": "cap at fees of 12 months"})

    resolution: str


class SignatureCreate(ApiCreate):
    """The customer's signatory; the bank signs through the actor."""

    model_config = example({"customer_signatory": "Ms. Gao, CFO"})

    customer_signatory: str


class ClauseFindingPublic(PublicModel):
    clause: str
    finding: str
    resolution: str | None = None


class SignatoriesPublic(PublicModel):
    bank: str
    customer: str


class ContractPublic(PublicModel):
    """A contract's current state, rebuilt from its events; findings are numbered from 1."""

    id: UUID
    version: int
    proposal_id: UUID
    customer_id: UUID
    products: list[str]
    drafter_id: str
    approver_id: str | None = None
    status: str
    reviewed: bool
    findings: list[ClauseFindingPublic]
    open_findings: list[int]
    signatories: SignatoriesPublic | None = None
    created_on: UtcDatetime
    modified_on: UtcDatetime


# --------------------------------------------------------------------------
# Risk cases (§4)
# --------------------------------------------------------------------------


class RiskCaseCreate(ApiCreate):
    """A risk identified about a customer or a contract (§4 identify)."""

    model_config = example({
        "subject_type": "customer", "subject_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "category": "reputational",
        "description": "negative press about the customer's environmental record",
    })

    subject_type: RiskSubjectType
    subject_id: UUID
    category: RiskCategory
    description: str


class RiskAssessmentCreate(ApiCreate):
    """Indicator scores 0-100, higher is riskier; the level follows the documented rule (§4 assess)."""

    model_config = example({
        "indicator_scores": {"default_probability": 85, "sector_outlook": 40},
        "reason": "bureau shows two recent defaults",
    })

    indicator_scores: dict[str, WholeNumber] = Field(examples=[{"default_probability": 85, "sector_outlook": 40}])
    reason: str | None = None


class RiskResponseCreate(ApiCreate):
    """avoid, reduce, transfer or accept (low risk only), with measures and the reason (§4 respond)."""

    model_config = example({
        "response": "reduce", "measures": ["monthly review", "collateral required"],
        "reason": "exposure is small and secured",
    })

    response: RiskResponse
    measures: list[str]
    reason: Reason


class RiskReadingCreate(ApiCreate):
    """A monitoring reading against its threshold (§4 monitor); a crossing raises a warning."""

    model_config = example({"indicator": "overdue_days", "value": "45.5", "threshold": "30", "direction": "above"})

    indicator: str
    value: Number
    threshold: Number
    direction: ReadingDirection


class RiskDisposalCreate(ApiCreate):
    """Disposal (§4): actions taken and findings."""

    model_config = example({"actions": ["site inspection"], "findings": "press report was about a former subsidiary"})

    actions: list[str]
    findings: str


class RiskCasePublic(PublicModel):
    """A risk case's current state, rebuilt from its events."""

    id: UUID
    version: int
    subject_type: str
    subject_id: UUID
    customer_id: UUID
    category: str
    status: str
    level: str | None = None
    response: str | None = None
    blocks_business: bool = Field(description="open with response avoid: no business with the customer (§4)")
    warnings: int
    last_readings: dict[str, bool] = Field(description="indicator -> whether its latest reading is beyond threshold")
    created_on: UtcDatetime
    modified_on: UtcDatetime


# --------------------------------------------------------------------------
# Team, appraisal and targets (§1, §3)
# --------------------------------------------------------------------------


class StaffCreate(ApiCreate):
    """A member joining the acquisition team (§3 roles)."""

    model_config = example({
        "staff_code": "mgr-li", "display_name": "Li Na", "role": "customer_manager", "branch": "shanghai-pudong",
        "team": "sme-1",
    })

    staff_code: str = Field(pattern=r"^[^/\x00]+$", max_length=64, examples=["mgr-li"],
                            description="the id the person acts under: their user name")
    display_name: str
    role: StaffRole
    branch: str
    team: str = ""


class TrainingCreate(ApiCreate):
    """Internal or external training: topic and hours (§3 training)."""

    model_config = example({"kind": "internal", "topic": "KYC", "hours": "7.5"})

    kind: TrainingKind
    topic: str
    hours: Annotated[Number, Field(examples=["7.5"])]


class AwardCreate(ApiCreate):
    """Bonus (amount and currency required), certificate, promotion or special award (§3 rewards)."""

    model_config = example({"kind": "bonus", "reason": "30 new SME customers", "amount": "5000", "currency": "CNY"})

    kind: AwardKind
    reason: Reason
    amount: Money | None = None
    currency: str | None = None


class AppraisalIndicatorCreate(ApiCreate):
    """One weighted indicator of an appraisal scheme."""

    model_config = example({"indicator": "new_customers", "group": "acquisition_results", "weight": "60"})

    indicator: Indicator
    group: IndicatorGroup
    weight: Annotated[Number, Field(description="percent; a scheme's weights sum to 100")]


class AppraisalSchemeCreate(ApiCreate):
    """A year's appraisal scheme (§3 appraisal)."""

    model_config = example({
        "year": "2025",
        "indicators": [{"indicator": "new_customers", "group": "acquisition_results", "weight": "60"},
                       {"indicator": "average_satisfaction", "group": "service_quality", "weight": "40"}],
    })

    year: Year
    indicators: list[AppraisalIndicatorCreate]


class AppraisalSchemeRevisionCreate(ApiCreate):
    """The scheme's indicators replaced, with the reason."""

    model_config = example({
        "indicators": [{"indicator": "new_customers", "group": "acquisition_results", "weight": "50.5"},
                       {"indicator": "average_satisfaction", "group": "service_quality", "weight": "49.5"}],
        "reason": "more weight on service",
    })

    indicators: list[AppraisalIndicatorCreate]
    reason: Reason


class TargetCreate(ApiCreate):
    """One indicator's target for one organisation unit and year, with checkpoints (§1)."""

    model_config = example({
        "year": "2025", "unit_type": "branch", "unit_id": "shanghai-pudong", "indicator": "new_customers",
        "annual": "120", "checkpoints": {"2025-Q1": "20", "2025-H1": "50"},
    })

    year: Year
    unit_type: UnitType
    unit_id: str
    indicator: Indicator
    annual: Number
    checkpoints: dict[str, Number] | None = Field(
        default=None, examples=[{"2025-Q1": "20", "2025-H1": "45"}], description="YYYY-MM, YYYY-Qn or YYYY-Hn")


class TargetRevisionCreate(ApiCreate):
    """New target values, with the reason."""

    model_config = example({"annual": "150", "checkpoints": {"2025-Q1": "30"}, "reason": "new plant opened"})

    annual: Number
    checkpoints: dict[str, Number] | None = None
    reason: Reason


class StaffPublic(PublicModel):
    """A team member's current state, rebuilt from its events."""

    id: UUID
    version: int
    staff_code: str
    role: str
    branch: str
    team: str
    active: bool
    training_hours: Decimal
    awards: int
    created_on: UtcDatetime
    modified_on: UtcDatetime


class AppraisalIndicatorPublic(PublicModel):
    indicator: str
    group: str
    weight: Decimal


class AppraisalSchemePublic(PublicModel):
    """A year's appraisal scheme, rebuilt from its events."""

    id: UUID
    version: int
    year: str
    indicators: list[AppraisalIndicatorPublic]
    created_on: UtcDatetime
    modified_on: UtcDatetime


class TargetPublic(PublicModel):
    """A target's current values, rebuilt from its events."""

    id: UUID
    version: int
    year: str
    unit_type: str
    unit_id: str
    indicator: str
    annual: Decimal
    checkpoints: dict[str, Decimal]
    created_on: UtcDatetime
    modified_on: UtcDatetime


# --------------------------------------------------------------------------
# Read-model listings and reports
# --------------------------------------------------------------------------


class RecordSummaryPublic(PublicModel):
    """One visit, proposal, contract or risk case row of the pipeline read model."""

    id: UUID = Field(validation_alias="aggregate_id")
    customer_id: UUID
    status: str
    stage_entered_at: UtcDatetime = Field(description="business time it entered its status")
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int
    detail: str = Field(description="visit purpose, products, or risk description")
    scheduled_at: UtcDatetime | None = Field(default=None, description="visits")
    kind: str | None = Field(default=None, description="visit kind, or risk category")
    level: str | None = Field(default=None, description="risk cases")
    response: str | None = Field(default=None, description="risk cases")
    warnings: int = Field(default=0, description="risk cases: early warnings raised")


class RecordsPublic(PublicModel):
    """A page of rows; ``position`` is the event log position the read model reflects."""

    data: list[RecordSummaryPublic]
    limit: int
    offset: int
    position: int


class HealthPublic(PublicModel):
    """Liveness and the event log's newest position."""

    status: str
    position: int


# --------------------------------------------------------------------------
# Users: who may call the API, in which role
# --------------------------------------------------------------------------

UserRole = Literal[user_rules.ROLES]  # type: ignore[valid-type]
UserName = Annotated[str, StringConstraints(pattern=user_rules.NAME_PATTERN, max_length=64)]


class UserCreate(ApiCreate):
    """A user and their role; a branch head needs their branch, a customer manager may have one."""

    model_config = example({"name": "mgr-li", "role": "customer_manager", "branch": "shanghai-pudong"})

    name: UserName = Field(description="the actor id on every event the user causes; never reused")
    role: UserRole
    branch: str | None = Field(default=None, max_length=64)


class UserPublic(PublicModel):
    """A user's current state, rebuilt from its events (the token hash is never shown)."""

    id: UUID
    version: int
    name: str
    role: str
    branch: str | None = None
    status: str = Field(description="active or revoked")
    added_by: str
    created_on: UtcDatetime
    modified_on: UtcDatetime


class UsersPublic(PublicModel):
    """Every user ever added, in the order they were added."""

    data: list[UserPublic]


class UserTokenPublic(CommandPublic):
    """A user command's outcome and the user's new API token, shown this once."""

    name: str
    token: str | None = Field(description="`Authorization: Bearer <token>`; shown once, null on a replay "
                                           "(rotate the token if it was lost)")
