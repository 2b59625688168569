"""The permission matrix: which roles may call which route, and how row-level access finds the customer.

This table is the one place the matrix is written; ``interfaces.api.security.authorize``
enforces it on every route, and the README's copy is generated from it
(:func:`matrix_markdown`, printed by ``tuohu users matrix``; a test keeps the two in step).

Row-level access (``application.access``): a customer manager sees and acts on
their own customers only, a branch head on their branch's; a request about a
customer outside the caller's scope is answered 404 exactly like an unknown id.
``subject`` says where the dependency finds that customer; ``rows`` marks list
and report routes whose rows are filtered to the caller's customers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from domain.user import (
    ADMIN,
    BRANCH_HEAD,
    COMPLIANCE_AUDITOR,
    CUSTOMER_MANAGER,
    OPERATIONS,
    PRODUCT_MANAGER,
    REVIEWER,
    RISK_OFFICER,
    ROLES,
)

CM, PM, OPS, REV, RISK, AUD, BH = (CUSTOMER_MANAGER, PRODUCT_MANAGER, OPERATIONS, REVIEWER, RISK_OFFICER,
                                   COMPLIANCE_AUDITOR, BRANCH_HEAD)
BUSINESS = (CM, PM, OPS, REV, RISK, AUD, BH)
"""Every role but the administrator, who manages users only."""


@dataclass(frozen=True)
class Subject:
    """Where a request names the customer it is about.

    ``kind`` is ``customer``, ``visit``, ``proposal``, ``contract`` or ``risk_case`` (the
    customer is found through the aggregate); ``risk_subject`` (``subject_type`` and
    ``subject_id`` of the body); ``registration`` (``manager_id`` and ``branch`` of a new
    customer); ``unit`` (``unit_type`` and ``unit_id`` of an evaluation query).
    """

    source: Literal["path", "body", "query"]
    kind: str
    name: str = ""

    def describe(self) -> str:
        if self.kind == "registration":
            return "a customer manager registers for themselves"
        if self.kind == "unit":
            return "customer manager: own person; branch head: own branch"
        if self.kind == "risk_subject":
            return "customer or contract's customer (`subject_id` in the body)"
        where = f"`{self.name}` in the {self.source}"
        owner = "customer" if self.kind == "customer" else f"{self.kind.replace('_', ' ')}'s customer"
        return f"{owner} ({where})"


@dataclass(frozen=True)
class Rule:
    """Who may call an operation. ``public`` routes need no token."""

    roles: tuple[str, ...] = ()
    subject: Subject | None = None
    rows: bool = False
    public: bool = False
    bench_only: bool = False


def _path(kind: str) -> Subject:
    return Subject("path", kind, f"{kind}_id")


def _body(kind: str) -> Subject:
    return Subject("body", kind, f"{kind}_id")


CUSTOMER, VISIT, PROPOSAL, CONTRACT, RISK_CASE = (_path(k) for k in ("customer", "visit", "proposal", "contract",
                                                                     "risk_case"))


def _commands(roles: tuple[str, ...], subject: Subject | None, *operations: str) -> dict[str, Rule]:
    return {operation: Rule(roles, subject) for operation in operations}


PERMISSIONS: dict[str, Rule] = {
    # customers (§2.1, §2.2, §2.5)
    "register_customer": Rule((CM,), Subject("body", "registration")),
    **_commands((CM,), CUSTOMER, "record_facts", "record_credit_standing", "screen_customer", "apply_for_account"),
    "review_customer": Rule((REV,), CUSTOMER),
    **_commands((OPS,), CUSTOMER, "review_documents", "open_account", "sign_products", "report_business_figures"),
    "reassign_manager": Rule((BH,), CUSTOMER),
    "mark_key_customer": Rule((CM, BH), CUSTOMER),
    "record_follow_up": Rule((CM, OPS), CUSTOMER),
    "get_customer": Rule(BUSINESS, CUSTOMER),
    "list_customers": Rule(BUSINESS, rows=True),
    # visits (§2.3)
    "plan_visit": Rule((CM,), _body("customer")),
    **_commands((CM,), VISIT, "prepare_visit", "conduct_visit", "route_visit_feedback", "reschedule_visit",
                "cancel_visit"),
    "get_visit": Rule(BUSINESS, VISIT),
    "list_visits": Rule(BUSINESS, rows=True),
    # proposals (§2.4)
    "draft_proposal": Rule((CM, PM), _body("customer")),
    **_commands((CM, PM), PROPOSAL, "revise_proposal", "submit_proposal", "withdraw_proposal"),
    **_commands((PM,), PROPOSAL, "approve_proposal", "return_proposal"),
    **_commands((CM,), PROPOSAL, "present_proposal", "accept_proposal", "decline_proposal"),
    "get_proposal": Rule(BUSINESS, PROPOSAL),
    "list_proposals": Rule(BUSINESS, rows=True),
    # contracts (§2.4 step 3)
    "draft_contract": Rule((CM,), _body("proposal")),
    **_commands((REV,), CONTRACT, "review_contract_clauses", "resolve_contract_finding"),
    **_commands((BH,), CONTRACT, "approve_contract", "sign_contract", "terminate_contract"),
    "get_contract": Rule(BUSINESS, CONTRACT),
    "list_contracts": Rule(BUSINESS, rows=True),
    # risk cases (§4)
    "identify_risk": Rule((RISK,), Subject("body", "risk_subject")),
    **_commands((RISK,), RISK_CASE, "assess_risk", "decide_risk_response", "record_risk_reading", "dispose_risk",
                "close_risk"),
    "get_risk_case": Rule(BUSINESS, RISK_CASE),
    "list_risk_cases": Rule(BUSINESS, rows=True),
    # team, appraisal and targets (§1, §3)
    **_commands((BH,), None, "join_team", "record_training", "grant_award", "leave_team", "define_appraisal_scheme",
                "redefine_appraisal_scheme", "set_target", "revise_target"),
    "get_staff": Rule((AUD, BH)),
    "get_appraisal_scheme": Rule(BUSINESS),
    "get_target": Rule(BUSINESS),
    # reports (§1, §3, §4, §5)
    "funnel": Rule(BUSINESS, rows=True),
    "customers_report": Rule(BUSINESS, rows=True),
    "visit_calendar": Rule((CM, PM, OPS, AUD, BH), rows=True),
    "overdue_follow_ups": Rule((CM, OPS, AUD, BH), rows=True),
    "proposals_pipeline": Rule((CM, PM, AUD, BH), rows=True),
    "contracts_pipeline": Rule((CM, PM, REV, AUD, BH), rows=True),
    "risk_register": Rule((CM, RISK, AUD, BH), rows=True),
    "evaluation": Rule((CM, AUD, BH), Subject("query", "unit")),
    "staff_performance": Rule((AUD, BH), rows=True),
    # users: the administrator manages them; the compliance auditor reads them
    **_commands((ADMIN,), None, "add_user", "rotate_user_token", "revoke_user"),
    "list_users": Rule((ADMIN, AUD)),
    "get_user": Rule((ADMIN, AUD)),
    # audit: history, state as of a moment, actor trail, explanations, hash chain (compliance auditors only)
    **_commands((AUD,), None, "audit_verify", "audit_actor_trail", "audit_explain", "audit_history", "audit_state"),
    # no token
    "health": Rule(public=True),
    "bench_noop": Rule(BUSINESS, bench_only=True),
}


def rule_for(operation_id: str | None) -> Rule | None:
    """The rule of an operation; None for an operation the table does not name (refused)."""
    return PERMISSIONS.get(operation_id or "")


ROLE_LABELS = {CM: "CM", PM: "PM", OPS: "OPS", REV: "REV", RISK: "RISK", AUD: "AUD", BH: "BH", ADMIN: "ADMIN"}


def operations(openapi: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(operation_id, METHOD, path)`` of every operation of an OpenAPI document, in its order."""
    return [(operation["operationId"], method.upper(), path)
            for path, methods in openapi.get("paths", {}).items() for method, operation in methods.items()]


def matrix_markdown(openapi: dict[str, Any]) -> str:
    """The matrix as a Markdown table, one row per operation of the app's OpenAPI document."""
    lines = [
        "Roles: " + ", ".join(f"**{label}** {role}" for role, label in ROLE_LABELS.items()) + ".",
        "",
        "| route | operation | " + " | ".join(ROLE_LABELS.values()) + " | row-level |",
        "|---|---|" + "---|" * len(ROLE_LABELS) + "---|",
    ]
    for operation_id, method, path in operations(openapi):
        rule = PERMISSIONS[operation_id]
        if rule.bench_only:
            continue
        if rule.public:
            cells = ["no token"] + [""] * (len(ROLES) - 1)
        else:
            cells = ["✓" if role in rule.roles else "" for role in ROLES]
        row_level = rule.subject.describe() if rule.subject else ("rows of the caller's customers" if rule.rows else "")
        lines.append(f"| `{method} {path}` | {operation_id} | " + " | ".join(cells) + f" | {row_level} |")
    return "\n".join(lines) + "\n"
