"""Customer: a prospect from first contact to an active account holder.

Lifecycle (measures §2.1, §2.2, §2.5)::

    registered -> screened -> qualified | rejected
    qualified -> account_opening_applied -> documents_accepted | documents_returned
    documents_returned -> account_opening_applied (re-applied with new documents)
    documents_accepted -> account_opened -> (products signed, follow-ups, figures)

Monetary amounts are ``decimal.Decimal`` in major units of ``currency`` (ISO 4217).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.base import (
    Context,
    DomainError,
    IllegalTransition,
    InvalidValue,
    MakerCheckerViolation,
    TuohuAggregate,
    require_choice,
    require_reason,
    require_text,
    utcnow,
)

KINDS = ("corporate", "retail")
CHANNELS = ("branch", "online", "partner", "market_research", "telemarketing", "referral")
FACT_GROUPS = ("basic", "financial", "business", "needs")
SCREENING_OUTCOMES = ("pass", "refer", "decline")
REVIEW_DECISIONS = ("qualified", "rejected")

REGISTERED = "registered"
SCREENED = "screened"
QUALIFIED = "qualified"
REJECTED = "rejected"
APPLIED = "account_opening_applied"
DOCUMENTS_ACCEPTED = "documents_accepted"
DOCUMENTS_RETURNED = "documents_returned"
ACCOUNT_OPENED = "account_opened"

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class ReviewerIsCustomerManager(MakerCheckerViolation):
    """The manual screening review was attempted by the customer's own manager (measures §2.2)."""

    code = "reviewer_is_customer_manager"


class ReviewerIsRegistrar(MakerCheckerViolation):
    """The manual screening review was attempted by the person who registered the customer (measures §2.2)."""

    code = "reviewer_is_registrar"


class CustomerNotScreened(DomainError):
    """A manual review needs the automated screening first (measures §2.2, steps in order)."""

    code = "customer_not_screened"


class ManagerNotEligible(DomainError):
    """A customer may be handed only to an active customer manager of its branch (measures §3): not to a name
    no user has, a revoked user, another role, or a customer manager of another branch."""

    code = "manager_not_eligible"


@dataclass(frozen=True)
class Successor:
    """The person a customer is to be handed to, as the user directory knows them: their role, their branch
    (None for a customer manager who works bank-wide) and whether they are active."""

    name: str
    role: str
    branch: str | None
    active: bool


class ProcessingIsRestricted(DomainError):
    """The person's data may only be kept, not processed, while restricted (PIPL Art. 44, GDPR Art. 18)."""

    code = "processing_restricted"


class PersonalDataWasErased(DomainError):
    """The person's data were erased; nothing more may be recorded about them (PIPL Art. 47, GDPR Art. 17)."""

    code = "personal_data_erased"


class RetentionPeriodNotOver(DomainError):
    """Erasure before the retention period ended, by someone who is not a compliance auditor."""

    code = "retention_period_not_over"


#: Who may erase a person's data before the retention period has ended.
EARLY_ERASURE_ROLE = "compliance_auditor"


def add_years(moment: datetime, years: int) -> datetime:
    """``moment`` plus whole calendar years (29 February becomes 28 February)."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


class Customer(TuohuAggregate):
    """A corporate or retail customer won through one acquisition channel."""

    TOPIC = "tuohu:Customer"

    class Registered(TuohuAggregate.Created):
        """Entered into the customer system (measures §2.1, §2.2 step 1)."""

        kind: str
        acquisition_channel: str
        source_detail: str
        segment: str
        manager_id: str
        branch: str
        display_name: str | None

        def apply(self, customer: Customer) -> None:
            customer.kind = self.kind
            customer.acquisition_channel = self.acquisition_channel
            customer.source_detail = self.source_detail
            customer.segment = self.segment
            customer.manager_id = self.manager_id
            customer.branch = self.branch
            customer.display_name = self.display_name
            customer.registered_by = self.actor_id
            customer.stage = REGISTERED
            customer.facts = {g: {} for g in FACT_GROUPS}
            customer.credit_standing = None
            customer.screening = None
            customer.manual_review = None
            customer.is_key = False
            customer.application = None
            customer.document_review = None
            customer.account_number = None
            customer.products = []
            customer.follow_ups = 0
            customer.business_figures = {}
            customer.open_risk_cases = []
            customer.processing_restricted = False
            customer.personal_data_erased = False

    class FactsRecorded(TuohuAggregate.Event):
        """Facts in one of the four groups: basic, financial, business, needs (§2.1)."""

        group: str
        facts: dict[str, Any]

        def apply(self, customer: Customer) -> None:
            customer.facts[self.group].update(self.facts)

    class CreditStandingRecorded(TuohuAggregate.Event):
        """Credit standing from the credit bureau or a rating agency (§2.2 criteria)."""

        source: str
        result: str
        rating: str | None

        def apply(self, customer: Customer) -> None:
            customer.credit_standing = {"source": self.source, "result": self.result, "rating": self.rating}

    class Screened(TuohuAggregate.Event):
        """Automated analysis by the screening model (§2.2 step 2): explainable score."""

        model_name: str
        model_version: str
        inputs: dict[str, Any]
        score: int
        contributions: dict[str, int]
        outcome: str

        def apply(self, customer: Customer) -> None:
            customer.screening = {
                "model_name": self.model_name,
                "model_version": self.model_version,
                "score": self.score,
                "outcome": self.outcome,
            }
            if customer.stage in (REGISTERED, SCREENED):
                customer.stage = SCREENED

    class Reviewed(TuohuAggregate.Event):
        """Manual review (§2.2 step 3): qualified or rejected, with the reason."""

        decision: str

        def apply(self, customer: Customer) -> None:
            customer.manual_review = {"decision": self.decision, "reviewer_id": self.actor_id, "reason": self.reason}
            customer.stage = QUALIFIED if self.decision == "qualified" else REJECTED

    class AccountOpeningApplied(TuohuAggregate.Event):
        """Application for an account with supporting documents (§2.5 step 1)."""

        account_type: str
        documents: list[str]

        def apply(self, customer: Customer) -> None:
            customer.application = {"account_type": self.account_type, "documents": list(self.documents)}
            customer.stage = APPLIED

    class DocumentsReviewed(TuohuAggregate.Event):
        """Documents checked as true, complete and compliant (§2.5 step 1)."""

        accepted: bool
        return_reasons: list[str]

        def apply(self, customer: Customer) -> None:
            customer.document_review = {"accepted": self.accepted, "return_reasons": list(self.return_reasons)}
            customer.stage = DOCUMENTS_ACCEPTED if self.accepted else DOCUMENTS_RETURNED

    class AccountOpened(TuohuAggregate.Event):
        """Account opened and initialised (§2.5 step 1)."""

        account_number: str

        def apply(self, customer: Customer) -> None:
            customer.account_number = self.account_number
            customer.stage = ACCOUNT_OPENED

    class ProductsSigned(TuohuAggregate.Event):
        """Products signed up on the opened account (§2.5 step 1)."""

        products: list[str]

        def apply(self, customer: Customer) -> None:
            customer.products.extend(p for p in self.products if p not in customer.products)

    class ManagerReassigned(TuohuAggregate.Event):
        """The customer was handed to another customer manager (§3)."""

        previous_manager_id: str
        manager_id: str

        def apply(self, customer: Customer) -> None:
            customer.manager_id = self.manager_id

    class MarkedKeyCustomer(TuohuAggregate.Event):
        """Marked as a key customer (重點客戶): visits need a prepared plan (§2.3)."""

        def apply(self, customer: Customer) -> None:
            customer.is_key = True

    class FollowUpRecorded(TuohuAggregate.Event):
        """A return visit's feedback and satisfaction score 1-5 (§2.5 step 2)."""

        satisfaction: int
        feedback: str

        def apply(self, customer: Customer) -> None:
            customer.follow_ups += 1

    class BusinessFiguresReported(TuohuAggregate.Event):
        """Monthly business figures (§5): balances and flows in ``currency``."""

        period: str
        currency: str
        deposit_balance: Decimal
        loans_disbursed: Decimal
        fee_income: Decimal

        def apply(self, customer: Customer) -> None:
            customer.business_figures[self.period] = {
                "currency": self.currency,
                "deposit_balance": self.deposit_balance,
                "loans_disbursed": self.loans_disbursed,
                "fee_income": self.fee_income,
            }

    class RiskCaseLinked(TuohuAggregate.Event):
        """A risk case about this customer (or one of its contracts) was opened (§4)."""

        risk_case_id: UUID

        def apply(self, customer: Customer) -> None:
            customer.open_risk_cases.append(self.risk_case_id)

    class RiskCaseUnlinked(TuohuAggregate.Event):
        """A risk case about this customer was closed (§4 disposal)."""

        risk_case_id: UUID

        def apply(self, customer: Customer) -> None:
            if self.risk_case_id in customer.open_risk_cases:
                customer.open_risk_cases.remove(self.risk_case_id)

    class ProcessingRestricted(TuohuAggregate.Event):
        """Processing restricted (PIPL Art. 44, GDPR Art. 18): data kept, shown to auditors only, with the reason."""

        def apply(self, customer: Customer) -> None:
            customer.processing_restricted = True

    class PersonalDataErased(TuohuAggregate.Event):
        """The person's key destroyed (PIPL Art. 47, GDPR Art. 17): their data read as erased, with the reason."""

        relationship_ended_at: datetime | None
        retention_until: datetime | None
        before_retention_end: bool

        def apply(self, customer: Customer) -> None:
            customer.personal_data_erased = True

    # ------------------------------------------------------------------ commands

    @classmethod
    def register(
        cls,
        ctx: Context,
        *,
        kind: str,
        acquisition_channel: str,
        source_detail: str,
        segment: str,
        manager_id: str,
        branch: str,
        display_name: str | None = None,
        customer_id: UUID | None = None,
    ) -> Customer:
        """Enter a prospect (measures §2.1). Raises :class:`InvalidValue`."""
        return cls._start(
            cls.Registered,
            ctx,
            id=customer_id,
            kind=require_choice(kind, "kind", KINDS),
            acquisition_channel=require_choice(acquisition_channel, "acquisition_channel", CHANNELS),
            source_detail=require_text(source_detail, "source_detail"),
            segment=require_text(segment, "segment"),
            manager_id=require_text(manager_id, "manager_id"),
            branch=require_text(branch, "branch"),
            display_name=display_name,
        )

    def record_facts(self, ctx: Context, *, group: str, facts: dict[str, Any]) -> None:
        """Record facts of one group (§2.1); each call is its own event."""
        require_choice(group, "group", FACT_GROUPS)
        if not facts:
            raise InvalidValue("facts", "at least one fact is required")
        self._record(self.FactsRecorded, ctx, group=group, facts=dict(facts))

    def record_credit_standing(self, ctx: Context, *, source: str, result: str, rating: str | None = None,
                               reason: str | None = None) -> None:
        """Record credit standing (§2.2 criteria: credit bureau, rating agency), optionally with the reason."""
        self._record(
            self.CreditStandingRecorded, ctx, reason=reason,
            source=require_text(source, "source"), result=require_text(result, "result"), rating=rating,
        )

    def record_screening(
        self, ctx: Context, *, model_name: str, model_version: str, inputs: dict[str, Any],
        score: int, contributions: dict[str, int], outcome: str,
    ) -> None:
        """Record the screening model's result (§2.2 step 2)."""
        self._check_stage("screened", (REGISTERED, SCREENED))
        require_choice(outcome, "outcome", SCREENING_OUTCOMES)
        self._record(
            self.Screened, ctx, model_name=model_name, model_version=model_version, inputs=dict(inputs),
            score=int(score), contributions=dict(contributions), outcome=outcome,
        )

    def review(self, ctx: Context, *, decision: str, reason: str | None) -> None:
        """Manual review (§2.2 step 3). The reviewer may be neither the customer's manager
        nor the person who registered the customer (maker-checker).

        Raises :class:`CustomerNotScreened`, :class:`ReviewerIsCustomerManager`,
        :class:`ReviewerIsRegistrar`, :class:`ReasonRequired`, :class:`IllegalTransition`.
        """
        require_choice(decision, "decision", REVIEW_DECISIONS)
        if self.stage == REGISTERED:
            raise CustomerNotScreened("the customer must be screened by the model before the manual review")
        self._check_stage("reviewed", (SCREENED,))
        if ctx.actor_id == self.manager_id:
            raise ReviewerIsCustomerManager(
                f"reviewer {ctx.actor_id!r} is the customer's own manager; another person must review"
            )
        if ctx.actor_id == self.registered_by:
            raise ReviewerIsRegistrar(
                f"reviewer {ctx.actor_id!r} registered this customer; another person must review"
            )
        self._record(self.Reviewed, ctx, reason=require_reason(reason, "review a customer"), decision=decision)

    def apply_for_account(self, ctx: Context, *, account_type: str, documents: list[str]) -> None:
        """Apply for an account opening with supporting documents (§2.5)."""
        self._check_stage("applied for an account", (QUALIFIED, DOCUMENTS_RETURNED))
        if not documents:
            raise InvalidValue("documents", "at least one supporting document is required")
        self._record(
            self.AccountOpeningApplied, ctx, account_type=require_text(account_type, "account_type"),
            documents=[require_text(d, "documents") for d in documents],
        )

    def review_documents(self, ctx: Context, *, accepted: bool, return_reasons: list[str] | None = None) -> None:
        """Accept the documents, or return them with the reasons (§2.5)."""
        self._check_stage("document-reviewed", (APPLIED,))
        reasons = [r.strip() for r in (return_reasons or []) if r and r.strip()]
        if not accepted and not reasons:
            raise InvalidValue("return_reasons", "returned documents need at least one reason")
        if accepted and reasons:
            raise InvalidValue("return_reasons", "accepted documents take no return reasons")
        self._record(self.DocumentsReviewed, ctx, accepted=bool(accepted), return_reasons=reasons)

    def open_account(self, ctx: Context, *, account_number: str) -> None:
        """Open and initialise the account (§2.5); needs accepted documents."""
        self._check_stage("given an account", (DOCUMENTS_ACCEPTED,))
        self._record(self.AccountOpened, ctx, account_number=require_text(account_number, "account_number"))

    def sign_products(self, ctx: Context, *, products: list[str]) -> None:
        """Sign up products on the opened account (§2.5)."""
        self._check_stage("signed up for products", (ACCOUNT_OPENED,))
        if not products:
            raise InvalidValue("products", "at least one product is required")
        self._record(self.ProductsSigned, ctx, products=[require_text(p, "products") for p in products])

    def reassign_manager(self, ctx: Context, *, manager_id: str, successor: Successor | None,
                         reason: str | None) -> None:
        """Hand the customer to another manager, with the reason (§3). ``successor`` is the user named
        ``manager_id`` (None when no user has that name).

        Raises :class:`ManagerNotEligible` unless they are an active customer manager of the customer's
        branch (or one without a branch, who works bank-wide, as at registration).
        """
        manager_id = require_text(manager_id, "manager_id")
        if manager_id == self.manager_id:
            raise InvalidValue("manager_id", f"{manager_id!r} already manages this customer")
        self._check_eligible_manager(manager_id, successor)
        self._record(
            self.ManagerReassigned, ctx, reason=require_reason(reason, "reassign a customer"),
            previous_manager_id=self.manager_id, manager_id=manager_id,
        )

    def _check_eligible_manager(self, manager_id: str, successor: Successor | None) -> None:
        refused = "the customer can be handed only to an active customer manager of branch " + repr(self.branch)
        if successor is None or successor.name != manager_id:
            raise ManagerNotEligible(f"no user is named {manager_id!r}; {refused}")
        if not successor.active:
            raise ManagerNotEligible(f"{manager_id!r} is no longer an active user; {refused}")
        if successor.role != "customer_manager":
            raise ManagerNotEligible(f"{manager_id!r} is a {successor.role}, not a customer manager; {refused}")
        if successor.branch is not None and successor.branch != self.branch:
            raise ManagerNotEligible(f"{manager_id!r} works for branch {successor.branch!r}; {refused}")

    def mark_key_customer(self, ctx: Context, *, reason: str | None) -> None:
        """Mark as a key customer (§2.3), with the reason."""
        if self.is_key:
            raise InvalidValue("is_key", "the customer is already a key customer")
        self._record(self.MarkedKeyCustomer, ctx, reason=require_reason(reason, "mark a key customer"))

    def record_follow_up(self, ctx: Context, *, satisfaction: int, feedback: str) -> None:
        """Record a return visit's satisfaction (1-5) and feedback (§2.5 step 2)."""
        self._check_stage("followed up", (ACCOUNT_OPENED,))
        if isinstance(satisfaction, bool) or not isinstance(satisfaction, int) or not 1 <= satisfaction <= 5:
            raise InvalidValue("satisfaction", f"must be a whole number from 1 to 5; got {satisfaction!r}")
        self._record(self.FollowUpRecorded, ctx, satisfaction=satisfaction, feedback=feedback or "")

    def report_business_figures(
        self, ctx: Context, *, period: str, currency: str, deposit_balance: Decimal,
        loans_disbursed: Decimal, fee_income: Decimal,
    ) -> None:
        """Report one month's figures (§5): ``period`` is ``YYYY-MM``; amounts in ``currency``.

        Deposit balance is the month-end balance; loans disbursed and fee income
        are the month's flows. None may be negative.
        """
        self._check_stage("given business figures", (ACCOUNT_OPENED,))
        if not _PERIOD.match(period or ""):
            raise InvalidValue("period", f"must be YYYY-MM; got {period!r}")
        if not _CURRENCY.match(currency or ""):
            raise InvalidValue("currency", f"must be an ISO 4217 code like EUR; got {currency!r}")
        amounts = {"deposit_balance": deposit_balance, "loans_disbursed": loans_disbursed, "fee_income": fee_income}
        for name, value in amounts.items():
            if not isinstance(value, Decimal) or not value.is_finite():
                raise InvalidValue(name, f"must be a finite decimal amount; got {value!r}")
            if value < 0:
                raise InvalidValue(name, f"must not be negative; got {value}")
        self._record(self.BusinessFiguresReported, ctx, period=period, currency=currency, **amounts)

    def link_risk_case(self, ctx: Context, *, risk_case_id: UUID) -> None:
        """Note an open risk case about this customer (§4)."""
        self._record(self.RiskCaseLinked, ctx, risk_case_id=risk_case_id)

    def unlink_risk_case(self, ctx: Context, *, risk_case_id: UUID) -> None:
        """Note that a risk case about this customer was closed (§4)."""
        if risk_case_id in self.open_risk_cases:
            self._record(self.RiskCaseUnlinked, ctx, risk_case_id=risk_case_id)

    def restrict_processing(self, ctx: Context, *, reason: str | None) -> None:
        """Restrict the processing of the person's data (PIPL Art. 44, GDPR Art. 18), with the reason.

        Afterwards only risk-case links and erasure are recorded. Raises
        :class:`ReasonRequired`, :class:`ProcessingIsRestricted`, :class:`PersonalDataWasErased`.
        """
        reason = require_reason(reason, "restrict the processing of a person's data")
        self._record(self.ProcessingRestricted, ctx, reason=reason)

    def erase_personal_data(
        self, ctx: Context, *, reason: str | None, relationship_ended_at: datetime | None, retention_years: int,
        now: datetime | None = None,
    ) -> None:
        """Record the erasure of the person's data (PIPL Art. 47, GDPR Art. 17), with the reason.

        Customer due-diligence records are kept ``retention_years`` after the
        relationship ended (``relationship_ended_at``, UTC; None while it goes on).
        Before then only a compliance auditor may erase. Raises :class:`ReasonRequired`,
        :class:`RetentionPeriodNotOver`, :class:`PersonalDataWasErased`.
        """
        reason = require_reason(reason, "erase a person's data")
        now = now or utcnow()
        retention_until = add_years(relationship_ended_at, retention_years) if relationship_ended_at else None
        early = retention_until is None or now < retention_until
        if early and ctx.actor_role != EARLY_ERASURE_ROLE:
            kept = f"until {retention_until.isoformat()}" if retention_until else "while the relationship goes on"
            raise RetentionPeriodNotOver(
                f"customer due-diligence records are kept {kept}; only a {EARLY_ERASURE_ROLE} may erase earlier"
            )
        self._record(self.PersonalDataErased, ctx, reason=reason, relationship_ended_at=relationship_ended_at,
                     retention_until=retention_until, before_retention_end=early)

    # ------------------------------------------------------------------ guards

    def check_processing_allowed(self, action: str) -> None:
        """Raise :class:`PersonalDataWasErased` or :class:`ProcessingIsRestricted` for ``action``."""
        if self.personal_data_erased:
            raise PersonalDataWasErased(f"cannot {action}: the customer's personal data were erased")
        if self.processing_restricted:
            raise ProcessingIsRestricted(f"cannot {action}: the processing of the customer's data is restricted")

    def _record(self, event_class: type, ctx: Context, reason: str | None = None, **fields: Any) -> None:
        # Risk-case links (legal obligation) and the erasure itself stay possible (PIPL Art. 44, GDPR Art. 18(2)).
        if event_class not in (Customer.RiskCaseLinked, Customer.RiskCaseUnlinked, Customer.PersonalDataErased):
            self.check_processing_allowed(f"record {event_class.__name__}")
        elif event_class is Customer.PersonalDataErased and self.personal_data_erased:
            raise PersonalDataWasErased("the customer's personal data were already erased")
        super()._record(event_class, ctx, reason, **fields)

    def _check_stage(self, action: str, allowed: tuple[str, ...]) -> None:
        if self.stage not in allowed:
            raise IllegalTransition("customer", action, self.stage, allowed)
