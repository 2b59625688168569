"""API users for the end-to-end tests (imported by them): created on first use, one per name, with a real token.

The staff below are the people the tests act as; ``bearer(client, name)`` adds
the user to the client's application the first time (as the CLI operator
would) and returns the ``Authorization`` header.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from domain.base import Context

BRANCH = "shanghai-pudong"
OTHER_BRANCH = "beijing-chaoyang"

STAFF: dict[str, tuple[str, str | None]] = {
    "mgr-li": ("customer_manager", BRANCH),
    "mgr-qian": ("customer_manager", BRANCH),
    "mgr-zhou": ("customer_manager", OTHER_BRANCH),
    "rev-wang": ("reviewer", None),
    "legal-chen": ("reviewer", None),
    "pm-zhao": ("product_manager", None),
    "head-sun": ("branch_head", BRANCH),
    "head-ma": ("branch_head", OTHER_BRANCH),
    "ops-liu": ("operations", None),
    "risk-zhou": ("risk_officer", None),
    "audit-he": ("compliance_auditor", None),
    "admin-root": ("admin", None),
}
"""Name -> (role, branch) of everyone the tests act as."""

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)
OPERATOR = Context(actor_id="cli:test-operator", actor_role="operator", channel="cli")


def token(client: Any, name: str) -> str:
    """The API token of ``name`` (a key of :data:`STAFF`), adding the user on first use."""
    tokens = client.__dict__.setdefault("tokens", {})
    if name not in tokens:
        role, branch = STAFF[name]
        tokens[name] = client.app.state.application.add_user(OPERATOR, name=name, role=role, branch=branch).token
    return tokens[name]


def add_staff(client: Any) -> int:
    """Add every user of :data:`STAFF`; returns the log position after them."""
    for name in STAFF:
        token(client, name)
    return client.app.state.application.position()


def bearer(client: Any, name: str) -> dict[str, str]:
    """``{"Authorization": "Bearer <token of name>"}``."""
    return {"Authorization": f"Bearer {token(client, name)}"}


def as_(name: str) -> Context:
    """The context of user ``name`` acting at :data:`T0`."""
    return Context(name, STAFF[name][0], occurred_at=T0)


def customer_world(application: Any, manager: str, branch: str) -> dict[str, Any]:
    """A screened customer of ``manager`` with a visit, a draft and an accepted proposal, a contract, a risk case."""
    m = as_(manager)
    customer = application.register_customer(m, kind="corporate", acquisition_channel="branch", source_detail="d",
                                             segment="sme", manager_id=manager, branch=branch,
                                             display_name=f"{manager}'s customer").aggregate_id
    application.record_facts(m, customer, group="basic", facts={"age": 40, "job": "management"})
    application.screen_customer(m, customer)
    visit = application.plan_visit(m, customer_id=customer, purpose="intro", scheduled_at=T0, staff=[manager],
                                   method="phone", kind="acquisition").aggregate_id
    proposal = application.draft_proposal(m, customer_id=customer, products=["payroll"], pricing_terms={},
                                          rights_and_obligations="standard").aggregate_id
    accepted = application.draft_proposal(m, customer_id=customer, products=["payroll"], pricing_terms={},
                                          rights_and_obligations="standard").aggregate_id
    application.submit_proposal(m, accepted)
    application.approve_proposal(as_("pm-zhao"), accepted)
    application.present_proposal(m, accepted)
    application.accept_proposal(m, accepted)
    contract = application.draft_contract(m, proposal_id=accepted).aggregate_id
    application.review_contract_clauses(as_("legal-chen"), contract, findings=[{"clause": "1", "finding": "typo"}])
    risk_case = application.identify_risk(as_("risk-zhou"), subject_type="customer", subject_id=customer,
                                          category="credit", description="overdue elsewhere").aggregate_id
    return {"customer_id": customer, "visit_id": visit, "proposal_id": proposal, "accepted_proposal_id": accepted,
            "contract_id": contract, "risk_case_id": risk_case}
