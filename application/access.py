"""Who is acting, and which customers they may see and act on (row-level access).

- A **customer manager** sees and acts on their own customers only (the
  customer's ``manager_id`` is the user's name).
- A **branch head** sees and acts on the customers of their branch.
- Every other role works bank-wide; the administrator sees no customer at all
  (the role matrix keeps them out of every business route).

Visits, proposals, contracts and risk cases belong to a customer and are seen
through it. A customer outside the principal's scope is answered exactly like
an unknown id (:class:`application.NotFound`), so ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import Context, DomainError
from domain.contract import Contract
from domain.customer import Customer
from domain.proposal import Proposal
from domain.risk import RiskCase
from domain.user import BRANCH_HEAD, CUSTOMER_MANAGER
from domain.visit import Visit

if TYPE_CHECKING:
    from application.app import TuohuApplication


class Unauthenticated(DomainError):
    """No valid credentials: the token is missing, malformed, unknown, rotated or revoked."""

    code = "unauthenticated"


class AccessDenied(DomainError):
    """The principal's role may not perform this operation."""

    code = "forbidden"


class OutsideYourScope(AccessDenied):
    """The command would act for, or read about, someone outside the principal's scope."""

    code = "outside_your_scope"


@dataclass(frozen=True)
class Principal:
    """The authenticated user: name (the actor id on events), role and branch."""

    name: str
    role: str
    branch: str | None = None

    def context(self, *, channel: str, correlation_id: str, command_id: str | None = None,
                request_hash: str | None = None) -> Context:
        """The command context with this principal as the actor."""
        return Context(actor_id=self.name, actor_role=self.role, channel=channel, correlation_id=correlation_id,
                       command_id=command_id, request_hash=request_hash)


@dataclass(frozen=True)
class CustomerScope:
    """The customers a principal may see: exact matches on the read model's customer columns."""

    manager_id: str | None = None
    branch: str | None = None

    def admits(self, customer: Customer) -> bool:
        """Whether ``customer`` is inside the scope."""
        if self.manager_id is not None and customer.manager_id != self.manager_id:
            return False
        return self.branch is None or customer.branch == self.branch

    def filters(self) -> dict[str, str]:
        """``{column: value}`` for the read models' customer queries."""
        return {k: v for k, v in (("manager_id", self.manager_id), ("branch", self.branch)) if v is not None}


def scope_of(principal: Principal) -> CustomerScope | None:
    """The principal's customer scope, or None for bank-wide roles."""
    if principal.role == CUSTOMER_MANAGER:
        return CustomerScope(manager_id=principal.name)
    if principal.role == BRANCH_HEAD:
        # a branch head always has a branch (domain.user); "" admits nothing should one be missing
        return CustomerScope(branch=principal.branch or "")
    return None


KINDS: dict[str, type[Any]] = {
    "customer": Customer, "visit": Visit, "proposal": Proposal, "contract": Contract, "risk_case": RiskCase,
}
"""Aggregates that belong to a customer, by the name used in messages."""


def customer_of(app: TuohuApplication, kind: str, aggregate_id: UUID) -> Customer:
    """The customer the ``kind`` aggregate ``aggregate_id`` belongs to. Raises :class:`NotFound`.

    What it loads is handed over to the use case of the same request (``TuohuApplication.load``).
    """
    aggregate = app.load(KINDS[kind], aggregate_id, hand_over=True)
    if isinstance(aggregate, Customer):
        return aggregate
    return app.load(Customer, aggregate.customer_id, hand_over=True)


def check_visible(app: TuohuApplication, principal: Principal, kind: str, aggregate_id: UUID) -> None:
    """Raise :class:`NotFound` (as for an unknown id) unless the principal may see the aggregate."""
    from application.app import NotFound

    scope = scope_of(principal)
    if scope is None:
        return
    if not scope.admits(customer_of(app, kind, aggregate_id)):
        raise NotFound(f"no {kind.replace('_', ' ')} with id {aggregate_id}")


def check_registration(principal: Principal, manager_id: Any, branch: Any) -> None:
    """A customer manager registers customers for themselves, in their branch if they have one.

    Raises :class:`OutsideYourScope`.
    """
    if principal.role != CUSTOMER_MANAGER:
        return
    if isinstance(manager_id, str) and manager_id.strip() != principal.name:
        raise OutsideYourScope(f"{principal.name!r} may register customers only for themselves, "
                               f"not for manager {manager_id!r}")
    if principal.branch and isinstance(branch, str) and branch.strip() != principal.branch:
        raise OutsideYourScope(f"{principal.name!r} works for branch {principal.branch!r}, not {branch!r}")


def check_unit(principal: Principal, unit_type: str, unit_id: str) -> None:
    """Evaluations by organisation unit: a customer manager reads their own (``person``),
    a branch head their branch's; other roles the matrix admits read any unit.

    Raises :class:`OutsideYourScope`.
    """
    if principal.role == CUSTOMER_MANAGER and (unit_type, unit_id) != ("person", principal.name):
        raise OutsideYourScope(f"{principal.name!r} may read only their own evaluation (person {principal.name})")
    if principal.role == BRANCH_HEAD and (unit_type, unit_id) != ("branch", principal.branch):
        raise OutsideYourScope(f"{principal.name!r} may read only the evaluation of branch {principal.branch}")
