"""The tuohu application: one use-case method per command.

Every use case loads the aggregate, calls one command on it, saves, and
returns a :class:`CommandResult` whose ``position`` is the notification id of
the last event written (the position read models must reach to show it).

Errors raised (besides the domain's own :class:`domain.DomainError`):

- :class:`NotFound` for an unknown id or an id of another aggregate type;
- :class:`VersionMismatch` when ``expected_version`` no longer matches;
- :class:`ConcurrentUpdate` when another writer saved first.

A command whose ``Context.command_id`` was already applied by the same actor
has no second effect: the result of the first application (the version and
position it answered then, whatever was saved since) is returned with
``replayed=True``. The same id for another command, or for the same command
with another request (``Context.request_hash``), raises
:class:`domain.receipt.IdempotencyKeyReused`.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Any, Callable, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import EventStore, IntegrityError, JSONTranscoder, Mapper, Transcoding

from application import privacy
from application.chain import AuditChain
from application.identity import hash_token, new_token
from domain import screening
from domain.base import Context, DomainError, TuohuAggregate
from domain.contract import Contract
from domain.customer import Customer, Successor
from domain.proposal import Proposal
from domain.receipt import CommandReceipt, receipt_id
from domain.risk import RiskCase
from domain.team import AppraisalScheme, Staff, Target, staff_id
from domain.user import User, check_name, user_id
from domain.visit import Visit

A = TypeVar("A", bound=TuohuAggregate)


class NotFound(DomainError):
    """No aggregate of the asked type has this id."""

    code = "not_found"


class VersionMismatch(DomainError):
    """The caller's expected version is not the aggregate's current version."""

    code = "version_mismatch"

    def __init__(self, aggregate_id: UUID, expected: int, actual: int) -> None:
        super().__init__(f"{aggregate_id} is at version {actual}, not the expected {expected}")
        self.expected, self.actual = expected, actual


class AlreadyExists(DomainError):
    """An aggregate with this id (derived from its natural key) is already recorded."""

    code = "already_exists"


class ConcurrentUpdate(DomainError):
    """Another command changed the aggregate between load and save; nothing was written."""

    code = "concurrent_update"


class DateAsISO(Transcoding):
    """``datetime.date`` as ``YYYY-MM-DD`` (not transcoded by the library by default)."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


@dataclass(frozen=True)
class CommandResult:
    """What a command did: the aggregate, its new version, the log position."""

    aggregate_id: UUID
    version: int
    position: int
    replayed: bool = False


_HANDED_OVER: ContextVar[dict[UUID, Any] | None] = ContextVar("tuohu_handed_over", default=None)


def handover_scope() -> None:
    """Start a hand-over scope in the current context (one API request): see :meth:`TuohuApplication.load`."""
    _HANDED_OVER.set({})


@dataclass(frozen=True)
class IssuedToken:
    """A user command's result and the user's new API token.

    ``token`` is None when the command was a replay: a token is shown once, and only
    its hash is kept; rotate the token if it was lost.
    """

    result: CommandResult
    token: str | None


def _project(aggregate: Any, events: Any) -> Any:
    """The aggregate after applying ``events`` in turn (each event's ``mutate``): the library's
    projector, without its per-event runtime protocol check (every stored event here is a
    domain event of ours)."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class TuohuApplication(Application[UUID]):
    """Customer acquisition (measures §2, §4) as an event-sourced application."""

    name = "tuohu"

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(DateAsISO())

    def construct_mapper(self) -> Mapper[UUID]:
        """The library's mapper, with customers' personal fields encrypted per customer (:mod:`application.privacy`)."""
        return privacy.PersonalDataMapper.wrap(super().construct_mapper(), privacy.key_store_for(self.env, self.factory))

    def construct_event_store(self) -> EventStore[UUID]:
        """An event store that writes new customers' keys before their events."""
        self.mapper.recorder = self.recorder  # type: ignore[attr-defined]
        return privacy.KeyedEventStore(mapper=self.mapper, recorder=self.recorder)

    @cached_property
    def chain(self) -> AuditChain:
        """The audit hash chain over this application's stored events (:mod:`application.chain`)."""
        return AuditChain(self)

    def close(self) -> None:
        if "chain" in self.__dict__:
            self.chain.close()
        super().close()
        self.mapper.keys.close()  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ plumbing

    def load(self, cls: type[A], aggregate_id: UUID, *, hand_over: bool = False) -> A:
        """The aggregate of type ``cls`` with this id. Raises :class:`NotFound`.

        Within a :func:`handover_scope` (one API request), an aggregate loaded with
        ``hand_over=True`` (to decide whether the caller may act on it) is handed to
        the next load of the same id (the use case) instead of being read and
        rebuilt again. It may then be a moment older than the store; a command on it
        that was overtaken fails at save with :class:`ConcurrentUpdate`, as ever.
        """
        handed = _HANDED_OVER.get()
        aggregate = handed.pop(aggregate_id, None) if handed is not None and not hand_over else None
        if aggregate is None:
            try:
                aggregate = self.repository.get(aggregate_id, projector_func=_project)
            except AggregateNotFoundError:
                raise NotFound(f"no {cls.__name__.lower()} with id {aggregate_id}") from None
        if not isinstance(aggregate, cls):
            raise NotFound(f"no {cls.__name__.lower()} with id {aggregate_id}")
        if hand_over and handed is not None:
            handed[aggregate_id] = aggregate
        return aggregate

    def position(self) -> int:
        """The notification id of the newest event (0 when the log is empty)."""
        return self.recorder.max_notification_id() or 0

    def _replayed(self, ctx: Context, command_name: str) -> CommandResult | None:
        """The first result of a repeated client command id, or None for a new one.

        Raises :class:`IdempotencyKeyReused` when the id was used for another
        command or for the same command with another request.
        """
        if not ctx.command_id:
            return None
        try:
            receipt = self.repository.get(receipt_id(ctx.actor_id, ctx.command_id))
        except AggregateNotFoundError:
            return None
        receipt.check_repeat(ctx, command_name)
        return self._first_result(receipt)

    def _first_result(self, receipt: CommandReceipt) -> CommandResult:
        """What the receipt's command answered when it was applied: the aggregate's version and the log position
        it saved (the receipt is saved last, with the command's events, so its position is the command's and
        the aggregate's version is that of its last event before it)."""
        positions = self.chain.storage.positions  # type: ignore[attr-defined]
        position = min(positions(receipt.id).values())
        version = max(version for version, at in positions(receipt.aggregate_id).items() if at < position)
        return CommandResult(receipt.aggregate_id, version, position, replayed=True)

    def _save(self, ctx: Context, command_name: str, *aggregates: TuohuAggregate) -> CommandResult:
        objs: list[TuohuAggregate] = list(aggregates)
        if ctx.command_id:
            objs.append(CommandReceipt.accept(ctx, command_name=command_name, aggregate_id=aggregates[0].id))
        try:
            recordings = self.save(*objs)
        except IntegrityError:
            replay = self._replayed(ctx, command_name)
            if replay is not None:
                return replay
            raise ConcurrentUpdate(
                f"{command_name}: {aggregates[0].id} was changed by another command; reload and retry"
            ) from None
        position = max((r.notification.id for r in recordings), default=0) or self.position()
        return CommandResult(aggregates[0].id, aggregates[0].version, position)

    def _create(self, ctx: Context, command_name: str, make: Callable[[], A]) -> CommandResult:
        replay = self._replayed(ctx, command_name)
        if replay is not None:
            return replay
        aggregate = make()
        if self.recorder.select_events(aggregate.id, limit=1):
            raise AlreadyExists(f"{type(aggregate).__name__} {aggregate.id} is already recorded")
        return self._save(ctx, command_name, aggregate)

    def _act(
        self, ctx: Context, command_name: str, cls: type[A], aggregate_id: UUID,
        action: Callable[[A], Any], expected_version: int | None = None,
    ) -> CommandResult:
        replay = self._replayed(ctx, command_name)
        if replay is not None:
            return replay
        aggregate = self.load(cls, aggregate_id)
        if expected_version is not None and aggregate.version != expected_version:
            raise VersionMismatch(aggregate_id, expected_version, aggregate.version)
        action(aggregate)
        return self._save(ctx, command_name, aggregate)

    # ------------------------------------------------------------------ customers (§2.1, §2.2, §2.5)

    def register_customer(self, ctx: Context, **fields: Any) -> CommandResult:
        """Register a prospect; fields as :meth:`Customer.register`."""
        return self._create(ctx, "register_customer", lambda: Customer.register(ctx, **fields))

    def record_facts(self, ctx: Context, customer_id: UUID, *, group: str, facts: dict[str, Any],
                     expected_version: int | None = None) -> CommandResult:
        """Record one group of facts (§2.1)."""
        return self._act(ctx, "record_facts", Customer, customer_id,
                         lambda c: c.record_facts(ctx, group=group, facts=facts), expected_version)

    def record_credit_standing(self, ctx: Context, customer_id: UUID, *, source: str, result: str,
                               rating: str | None = None, reason: str | None = None,
                               expected_version: int | None = None) -> CommandResult:
        """Record credit standing (§2.2), optionally with the reason."""
        return self._act(ctx, "record_credit_standing", Customer, customer_id,
                         lambda c: c.record_credit_standing(ctx, source=source, result=result, rating=rating,
                                                            reason=reason),
                         expected_version)

    def screen_customer(self, ctx: Context, customer_id: UUID, *, expected_version: int | None = None) -> CommandResult:
        """Run the built-in screening model on the recorded facts (§2.2 step 2)."""

        def run(customer: Customer) -> None:
            result = screening.score(screening_inputs(customer))
            customer.record_screening(
                ctx, model_name=result.model_name, model_version=result.model_version, inputs=result.inputs,
                score=result.score, contributions=result.contributions, outcome=result.outcome,
            )

        return self._act(ctx, "screen_customer", Customer, customer_id, run, expected_version)

    def review_customer(self, ctx: Context, customer_id: UUID, *, decision: str, reason: str | None,
                        expected_version: int | None = None) -> CommandResult:
        """Manual screening review (§2.2 step 3)."""
        return self._act(ctx, "review_customer", Customer, customer_id,
                         lambda c: c.review(ctx, decision=decision, reason=reason), expected_version)

    def apply_for_account(self, ctx: Context, customer_id: UUID, *, account_type: str, documents: list[str],
                          expected_version: int | None = None) -> CommandResult:
        """Apply for an account with supporting documents (§2.5)."""
        return self._act(ctx, "apply_for_account", Customer, customer_id,
                         lambda c: c.apply_for_account(ctx, account_type=account_type, documents=documents),
                         expected_version)

    def review_documents(self, ctx: Context, customer_id: UUID, *, accepted: bool,
                         return_reasons: list[str] | None = None, expected_version: int | None = None) -> CommandResult:
        """Accept or return the account-opening documents (§2.5)."""
        return self._act(ctx, "review_documents", Customer, customer_id,
                         lambda c: c.review_documents(ctx, accepted=accepted, return_reasons=return_reasons),
                         expected_version)

    def open_account(self, ctx: Context, customer_id: UUID, *, account_number: str,
                     expected_version: int | None = None) -> CommandResult:
        """Open the account (§2.5)."""
        return self._act(ctx, "open_account", Customer, customer_id,
                         lambda c: c.open_account(ctx, account_number=account_number), expected_version)

    def sign_products(self, ctx: Context, customer_id: UUID, *, products: list[str],
                      expected_version: int | None = None) -> CommandResult:
        """Sign up products on the account (§2.5)."""
        return self._act(ctx, "sign_products", Customer, customer_id,
                         lambda c: c.sign_products(ctx, products=products), expected_version)

    def reassign_manager(self, ctx: Context, customer_id: UUID, *, manager_id: str, reason: str | None,
                         expected_version: int | None = None) -> CommandResult:
        """Hand the customer to another manager (§3): an active customer manager user of its branch."""
        successor = self._successor(manager_id)
        return self._act(ctx, "reassign_manager", Customer, customer_id,
                         lambda c: c.reassign_manager(ctx, manager_id=manager_id, successor=successor, reason=reason),
                         expected_version)

    def _successor(self, name: str) -> Successor | None:
        """The user ``name`` as the directory knows them, or None when no user has that name."""
        try:
            user = self.load(User, user_id(name.strip() if isinstance(name, str) else str(name)))
        except NotFound:
            return None
        return Successor(name=user.name, role=user.role, branch=user.branch, active=user.active)

    def mark_key_customer(self, ctx: Context, customer_id: UUID, *, reason: str | None,
                          expected_version: int | None = None) -> CommandResult:
        """Mark as a key customer (§2.3)."""
        return self._act(ctx, "mark_key_customer", Customer, customer_id,
                         lambda c: c.mark_key_customer(ctx, reason=reason), expected_version)

    def record_follow_up(self, ctx: Context, customer_id: UUID, *, satisfaction: int, feedback: str,
                         expected_version: int | None = None) -> CommandResult:
        """Record a return visit's satisfaction and feedback (§2.5)."""
        return self._act(ctx, "record_follow_up", Customer, customer_id,
                         lambda c: c.record_follow_up(ctx, satisfaction=satisfaction, feedback=feedback),
                         expected_version)

    def report_business_figures(self, ctx: Context, customer_id: UUID, *, period: str, currency: str,
                                deposit_balance: Decimal, loans_disbursed: Decimal, fee_income: Decimal,
                                expected_version: int | None = None) -> CommandResult:
        """Report a month's business figures (§5)."""
        return self._act(ctx, "report_business_figures", Customer, customer_id,
                         lambda c: c.report_business_figures(
                             ctx, period=period, currency=currency, deposit_balance=deposit_balance,
                             loans_disbursed=loans_disbursed, fee_income=fee_income),
                         expected_version)

    # ------------------------------------------------------------------ visits (§2.3)

    def plan_visit(self, ctx: Context, **fields: Any) -> CommandResult:
        """Plan a visit to an existing customer; fields as :meth:`Visit.plan`."""
        self.load(Customer, fields["customer_id"]).check_processing_allowed("plan a visit")
        return self._create(ctx, "plan_visit", lambda: Visit.plan(ctx, **fields))

    def prepare_visit(self, ctx: Context, visit_id: UUID, *, background: str, materials: list[str],
                      talking_points: list[str], expected_version: int | None = None) -> CommandResult:
        """Record the visit's preparation."""
        return self._act(ctx, "prepare_visit", Visit, visit_id,
                         lambda v: v.prepare(ctx, background=background, materials=materials,
                                             talking_points=talking_points), expected_version)

    def conduct_visit(self, ctx: Context, visit_id: UUID, *, outcome: str, needs_learned: str = "",
                      next_steps: str = "", duration_seconds: int | None = None,
                      expected_version: int | None = None) -> CommandResult:
        """Record the visit; a key customer's visit must have been prepared."""

        def run(visit: Visit) -> None:
            customer = self.load(Customer, visit.customer_id)
            customer.check_processing_allowed("conduct a visit")
            visit.conduct(ctx, outcome=outcome, needs_learned=needs_learned, next_steps=next_steps,
                          duration_seconds=duration_seconds, customer_is_key=customer.is_key)

        return self._act(ctx, "conduct_visit", Visit, visit_id, run, expected_version)

    def route_visit_feedback(self, ctx: Context, visit_id: UUID, *, departments: list[str], feedback: str,
                             expected_version: int | None = None) -> CommandResult:
        """Feed the visit's findings back to departments."""
        return self._act(ctx, "route_visit_feedback", Visit, visit_id,
                         lambda v: v.route_feedback(ctx, departments=departments, feedback=feedback),
                         expected_version)

    def reschedule_visit(self, ctx: Context, visit_id: UUID, *, scheduled_at: Any, reason: str | None,
                         expected_version: int | None = None) -> CommandResult:
        """Move the visit to a new time."""
        return self._act(ctx, "reschedule_visit", Visit, visit_id,
                         lambda v: v.reschedule(ctx, scheduled_at=scheduled_at, reason=reason), expected_version)

    def cancel_visit(self, ctx: Context, visit_id: UUID, *, reason: str | None,
                     expected_version: int | None = None) -> CommandResult:
        """Cancel the visit."""
        return self._act(ctx, "cancel_visit", Visit, visit_id, lambda v: v.cancel(ctx, reason=reason),
                         expected_version)

    # ------------------------------------------------------------------ proposals (§2.4)

    def draft_proposal(self, ctx: Context, **fields: Any) -> CommandResult:
        """Draft a proposal for an existing customer; fields as :meth:`Proposal.draft`."""
        self.load(Customer, fields["customer_id"])
        return self._create(ctx, "draft_proposal", lambda: Proposal.draft(ctx, **fields))

    def revise_proposal(self, ctx: Context, proposal_id: UUID, *, products: list[str], pricing_terms: dict[str, Any],
                        rights_and_obligations: str, reason: str | None,
                        expected_version: int | None = None) -> CommandResult:
        """Record a new numbered revision."""
        return self._act(ctx, "revise_proposal", Proposal, proposal_id,
                         lambda p: p.revise(ctx, products=products, pricing_terms=pricing_terms,
                                            rights_and_obligations=rights_and_obligations, reason=reason),
                         expected_version)

    def submit_proposal(self, ctx: Context, proposal_id: UUID, *, expected_version: int | None = None) -> CommandResult:
        """Submit for approval."""
        return self._act(ctx, "submit_proposal", Proposal, proposal_id, lambda p: p.submit(ctx), expected_version)

    def approve_proposal(self, ctx: Context, proposal_id: UUID, *, reason: str | None = None,
                         expected_version: int | None = None) -> CommandResult:
        """Approve (not by the drafter)."""
        return self._act(ctx, "approve_proposal", Proposal, proposal_id,
                         lambda p: p.approve(ctx, reason=reason), expected_version)

    def return_proposal(self, ctx: Context, proposal_id: UUID, *, reason: str | None,
                        expected_version: int | None = None) -> CommandResult:
        """Return to the drafter with the reason."""
        return self._act(ctx, "return_proposal", Proposal, proposal_id,
                         lambda p: p.return_for_revision(ctx, reason=reason), expected_version)

    def present_proposal(self, ctx: Context, proposal_id: UUID, *, expected_version: int | None = None) -> CommandResult:
        """Present the approved proposal to the customer."""
        return self._act(ctx, "present_proposal", Proposal, proposal_id, lambda p: p.present(ctx), expected_version)

    def accept_proposal(self, ctx: Context, proposal_id: UUID, *, reason: str | None = None,
                        expected_version: int | None = None) -> CommandResult:
        """Record the customer's acceptance."""
        return self._act(ctx, "accept_proposal", Proposal, proposal_id,
                         lambda p: p.accept(ctx, reason=reason), expected_version)

    def decline_proposal(self, ctx: Context, proposal_id: UUID, *, reason: str | None,
                         expected_version: int | None = None) -> CommandResult:
        """Record the customer's refusal with the reason."""
        return self._act(ctx, "decline_proposal", Proposal, proposal_id,
                         lambda p: p.decline(ctx, reason=reason), expected_version)

    def withdraw_proposal(self, ctx: Context, proposal_id: UUID, *, reason: str | None,
                          expected_version: int | None = None) -> CommandResult:
        """Withdraw an open proposal."""
        return self._act(ctx, "withdraw_proposal", Proposal, proposal_id,
                         lambda p: p.withdraw(ctx, reason=reason), expected_version)

    # ------------------------------------------------------------------ contracts (§2.4 step 3)

    def draft_contract(self, ctx: Context, *, proposal_id: UUID, contract_id: UUID | None = None) -> CommandResult:
        """Draft a contract from an accepted proposal."""
        return self._create(ctx, "draft_contract", lambda: Contract.draft_from(
            ctx, self.load(Proposal, proposal_id), contract_id=contract_id))

    def review_contract_clauses(self, ctx: Context, contract_id: UUID, *, findings: list[dict[str, str]],
                                expected_version: int | None = None) -> CommandResult:
        """Record a clause review with its findings."""
        return self._act(ctx, "review_contract_clauses", Contract, contract_id,
                         lambda c: c.review_clauses(ctx, findings=findings), expected_version)

    def resolve_contract_finding(self, ctx: Context, contract_id: UUID, *, finding_number: int, resolution: str,
                                 expected_version: int | None = None) -> CommandResult:
        """Resolve one clause finding."""
        return self._act(ctx, "resolve_contract_finding", Contract, contract_id,
                         lambda c: c.resolve_finding(ctx, finding_number=finding_number, resolution=resolution),
                         expected_version)

    def approve_contract(self, ctx: Context, contract_id: UUID, *, reason: str | None = None,
                         expected_version: int | None = None) -> CommandResult:
        """Approve (not by the drafter; all findings resolved)."""
        return self._act(ctx, "approve_contract", Contract, contract_id,
                         lambda c: c.approve(ctx, reason=reason), expected_version)

    def sign_contract(self, ctx: Context, contract_id: UUID, *, customer_signatory: str,
                      expected_version: int | None = None) -> CommandResult:
        """Sign for the bank; refused while the customer has an open *avoid* risk case."""

        def run(contract: Contract) -> None:
            customer = self.load(Customer, contract.customer_id)
            cases = [self.load(RiskCase, case_id) for case_id in customer.open_risk_cases]
            contract.sign(ctx, customer_signatory=customer_signatory, customer_risk_cases=cases)

        return self._act(ctx, "sign_contract", Contract, contract_id, run, expected_version)

    def terminate_contract(self, ctx: Context, contract_id: UUID, *, reason: str | None,
                           expected_version: int | None = None) -> CommandResult:
        """Terminate a signed contract."""
        return self._act(ctx, "terminate_contract", Contract, contract_id,
                         lambda c: c.terminate(ctx, reason=reason), expected_version)

    # ------------------------------------------------------------------ risk cases (§4)

    def identify_risk(self, ctx: Context, *, subject_type: str, subject_id: UUID, category: str,
                      description: str, risk_case_id: UUID | None = None) -> CommandResult:
        """Open a risk case about a customer or a contract; the customer is linked in the same save."""
        replay = self._replayed(ctx, "identify_risk")
        if replay is not None:
            return replay
        if subject_type == "contract":
            customer_id = self.load(Contract, subject_id).customer_id
        else:
            customer_id = subject_id
        customer = self.load(Customer, customer_id)
        case = RiskCase.identify(ctx, subject_type=subject_type, subject_id=subject_id, customer_id=customer_id,
                                 category=category, description=description, risk_case_id=risk_case_id)
        customer.link_risk_case(ctx, risk_case_id=case.id)
        return self._save(ctx, "identify_risk", case, customer)

    def assess_risk(self, ctx: Context, risk_case_id: UUID, *, indicator_scores: dict[str, int],
                    reason: str | None = None, expected_version: int | None = None) -> CommandResult:
        """Score the indicators; the level follows the documented rule."""
        return self._act(ctx, "assess_risk", RiskCase, risk_case_id,
                         lambda r: r.assess(ctx, indicator_scores=indicator_scores, reason=reason), expected_version)

    def decide_risk_response(self, ctx: Context, risk_case_id: UUID, *, response: str, measures: list[str],
                             reason: str | None, expected_version: int | None = None) -> CommandResult:
        """Decide avoid / reduce / transfer / accept with measures."""
        return self._act(ctx, "decide_risk_response", RiskCase, risk_case_id,
                         lambda r: r.decide_response(ctx, response=response, measures=measures, reason=reason),
                         expected_version)

    def record_risk_reading(self, ctx: Context, risk_case_id: UUID, *, indicator: str, value: Decimal,
                            threshold: Decimal, direction: str, expected_version: int | None = None) -> CommandResult:
        """Record a monitoring reading; a crossing raises a warning."""
        return self._act(ctx, "record_risk_reading", RiskCase, risk_case_id,
                         lambda r: r.record_reading(ctx, indicator=indicator, value=value, threshold=threshold,
                                                    direction=direction), expected_version)

    def dispose_risk(self, ctx: Context, risk_case_id: UUID, *, actions: list[str], findings: str,
                     expected_version: int | None = None) -> CommandResult:
        """Record the disposal."""
        return self._act(ctx, "dispose_risk", RiskCase, risk_case_id,
                         lambda r: r.dispose(ctx, actions=actions, findings=findings), expected_version)

    def close_risk(self, ctx: Context, risk_case_id: UUID, *, reason: str | None,
                   expected_version: int | None = None) -> CommandResult:
        """Close a disposed case; the customer's link is removed in the same save."""
        replay = self._replayed(ctx, "close_risk")
        if replay is not None:
            return replay
        case = self.load(RiskCase, risk_case_id)
        if expected_version is not None and case.version != expected_version:
            raise VersionMismatch(risk_case_id, expected_version, case.version)
        case.close(ctx, reason=reason)
        customer = self.load(Customer, case.customer_id)
        customer.unlink_risk_case(ctx, risk_case_id=case.id)
        return self._save(ctx, "close_risk", case, customer)

    # ------------------------------------------------------------------ team and targets (§1, §3)

    def join_team(self, ctx: Context, **fields: Any) -> CommandResult:
        """Add a team member; fields as :meth:`Staff.join`. Raises :class:`AlreadyExists`."""
        return self._create(ctx, "join_team", lambda: Staff.join(ctx, **fields))

    def record_training(self, ctx: Context, staff_code: str, *, kind: str, topic: str, hours: Decimal,
                        expected_version: int | None = None) -> CommandResult:
        """Record a training of the staff member."""
        return self._act(ctx, "record_training", Staff, staff_id(staff_code),
                         lambda s: s.record_training(ctx, kind=kind, topic=topic, hours=hours), expected_version)

    def grant_award(self, ctx: Context, staff_code: str, *, kind: str, reason: str | None,
                    amount: Decimal | None = None, currency: str | None = None,
                    expected_version: int | None = None) -> CommandResult:
        """Grant an award to the staff member."""
        return self._act(ctx, "grant_award", Staff, staff_id(staff_code),
                         lambda s: s.grant_award(ctx, kind=kind, reason=reason, amount=amount, currency=currency),
                         expected_version)

    def leave_team(self, ctx: Context, staff_code: str, *, reason: str | None,
                   expected_version: int | None = None) -> CommandResult:
        """Record that the staff member left the team."""
        return self._act(ctx, "leave_team", Staff, staff_id(staff_code), lambda s: s.leave(ctx, reason=reason),
                         expected_version)

    def define_appraisal_scheme(self, ctx: Context, *, year: str, indicators: list[dict[str, Any]]) -> CommandResult:
        """Define a year's appraisal scheme. Raises :class:`AlreadyExists`."""
        return self._create(ctx, "define_appraisal_scheme",
                            lambda: AppraisalScheme.define(ctx, year=year, indicators=indicators))

    def redefine_appraisal_scheme(self, ctx: Context, scheme_id: UUID, *, indicators: list[dict[str, Any]],
                                  reason: str | None, expected_version: int | None = None) -> CommandResult:
        """Replace a scheme's indicators."""
        return self._act(ctx, "redefine_appraisal_scheme", AppraisalScheme, scheme_id,
                         lambda s: s.redefine(ctx, indicators=indicators, reason=reason), expected_version)

    def set_target(self, ctx: Context, **fields: Any) -> CommandResult:
        """Set a target; fields as :meth:`Target.set`. Raises :class:`AlreadyExists`."""
        return self._create(ctx, "set_target", lambda: Target.set(ctx, **fields))

    def revise_target(self, ctx: Context, target_id: UUID, *, annual: Decimal,
                      checkpoints: dict[str, Decimal] | None, reason: str | None,
                      expected_version: int | None = None) -> CommandResult:
        """Revise a target's values."""
        return self._act(ctx, "revise_target", Target, target_id,
                         lambda t: t.revise(ctx, annual=annual, checkpoints=checkpoints, reason=reason),
                         expected_version)


    # ------------------------------------------------------------------ users (who may call the API)

    def add_user(self, ctx: Context, *, name: str, role: str, branch: str | None = None) -> IssuedToken:
        """Add a user with a role (and branch) and issue their token. Raises :class:`AlreadyExists`."""
        replay = self._replayed(ctx, "add_user")
        if replay is not None:
            return IssuedToken(replay, None)
        if self.recorder.select_events(user_id(check_name(name)), limit=1):
            raise AlreadyExists(f"a user named {name!r} already exists; names are never reused")
        token = new_token(name)
        result = self._save(ctx, "add_user", User.add(ctx, name=name, role=role, branch=branch,
                                                      token_hash=hash_token(token)))
        return IssuedToken(result, None if result.replayed else token)

    def rotate_user_token(self, ctx: Context, name: str, *, expected_version: int | None = None) -> IssuedToken:
        """Issue a new token for the user; the old one stops working."""
        token = new_token(name)
        result = self._act(ctx, "rotate_user_token", User, user_id(name),
                           lambda u: u.rotate_token(ctx, token_hash=hash_token(token)), expected_version)
        return IssuedToken(result, None if result.replayed else token)

    def revoke_user(self, ctx: Context, name: str, *, reason: str | None,
                    expected_version: int | None = None) -> CommandResult:
        """Revoke the user, with the reason; their token stops working."""
        return self._act(ctx, "revoke_user", User, user_id(name), lambda u: u.revoke(ctx, reason=reason),
                         expected_version)

def screening_inputs(customer: Customer) -> dict[str, Any]:
    """The screening model's inputs from the customer's recorded facts (§2.2 criteria)."""
    basic, financial = customer.facts["basic"], customer.facts["financial"]
    credit = customer.credit_standing or {}
    return {
        "credit_standing": credit.get("result"),
        "age": basic.get("age"),
        "job": basic.get("job"),
        "balance": financial.get("balance"),
        "housing_loan": financial.get("housing_loan"),
        "personal_loan": financial.get("personal_loan"),
    }
