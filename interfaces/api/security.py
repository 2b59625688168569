"""Authentication and authorization: the one dependency every route passes through.

:func:`authorize` runs before anything else a route needs (it is an app-wide
dependency). It

1. answers public routes (``/health``) without a token;
2. turns ``Authorization: Bearer <token>`` into a :class:`Principal`
   (401 ``unauthenticated`` otherwise; ``application.identity``);
3. refuses a role the permission matrix (``interfaces.api.permissions``) does
   not list for the route's operation (403 ``forbidden``), and any operation the
   matrix does not name at all;
4. applies row-level access to the customer the request is about (404, like an
   unknown id, when it is outside the caller's scope; 403 ``outside_your_scope``
   for a registration or an evaluation unit that is not the caller's).

List and report routes take :data:`ScopeDep`, the caller's customer scope, and
pass it to the read models.
"""

from __future__ import annotations

import json
import os
import threading
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from application import TuohuApplication
from application.app import handover_scope
from application.access import (
    AccessDenied,
    Principal,
    check_registration,
    check_unit,
    check_visible,
    scope_of,
)
from application.identity import Authenticator
from domain.user import BRANCH_HEAD
from interfaces.api.permissions import Rule, Subject, rule_for
from interfaces.api.schemas import CustomerCreate

BENCH_NOOP_ENV = "TUOHU_BENCH_NOOP"
"""Set to ``1`` to mount ``POST /bench/noop`` (benchmarks only; never in production)."""

bearer = HTTPBearer(
    auto_error=False, scheme_name="BearerToken",
    description="An API token from `tuohu users add NAME --role ROLE` (or `POST /users`): "
                "`tuohu_<user name>_<secret>`.",
)
_authenticators_lock = threading.Lock()


def application_of(request: Request) -> TuohuApplication:
    """The application the lifespan bootstrapped; 503 before it started."""
    application = getattr(request.app.state, "application", None)
    if application is None:
        raise HTTPException(status_code=503, detail="tuohu is not started")
    return application


def _authenticator(request: Request, application: TuohuApplication) -> Authenticator:
    """The app's authenticator (one per started application, with its verified-token cache)."""
    state = request.app.state
    with _authenticators_lock:
        authenticator = getattr(state, "authenticator", None)
        if authenticator is None or authenticator.app is not application:
            authenticator = Authenticator(application)
            state.authenticator = authenticator
    return authenticator


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return None


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _check_subject(application: TuohuApplication, principal: Principal, subject: Subject, request: Request,
                   body: Any) -> None:
    """Row-level access for the customer ``subject`` names. A value that does not parse is
    left to the route's validation (422)."""
    fields = body if isinstance(body, dict) else {}
    if subject.kind == "registration":
        try:
            customer = CustomerCreate.model_validate(fields)
        except ValidationError:
            return  # the route answers 422 naming the field
        check_registration(principal, customer.manager_id, customer.branch)
    elif subject.kind == "unit":
        unit_type = request.query_params.get("unit_type", "bank")
        unit_id = request.query_params.get("unit_id") or ("bank" if unit_type == "bank" else None)
        if unit_id is not None:  # a branch, team or person not named: the route answers 422 naming unit_id
            check_unit(principal, unit_type, unit_id)
    elif subject.kind == "risk_subject":
        kind, aggregate_id = fields.get("subject_type"), _uuid(fields.get("subject_id"))
        if kind in ("customer", "contract") and aggregate_id is not None:
            check_visible(application, principal, kind, aggregate_id)
    else:
        raw = request.path_params.get(subject.name) if subject.source == "path" else fields.get(subject.name)
        aggregate_id = _uuid(raw)
        if aggregate_id is not None:
            check_visible(application, principal, subject.kind, aggregate_id)


async def authorize(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal | None:
    """The authenticated caller, allowed by the matrix for this route; None on a public route.

    Raises ``Unauthenticated`` (401), ``AccessDenied`` (403) or ``NotFound`` (404).
    """
    operation_id = getattr(request.scope.get("route"), "operation_id", None)
    rule: Rule | None = rule_for(operation_id)
    if rule is not None and rule.public:
        return None
    application = application_of(request)
    authenticator = _authenticator(request, application)
    token = credentials.credentials if credentials else None
    if rule is not None and rule.subject is not None:
        handover_scope()  # what the check loads, the use case need not load again
    if rule is None or rule.subject is None or rule.subject.source != "body":
        principal = await run_in_threadpool(_admit, application, authenticator, token, rule, operation_id, request)
    else:  # the body is read only once the caller is known
        principal = await run_in_threadpool(authenticator.authenticate, token)
        _check_role(principal, rule, operation_id, request)
        if scope_of(principal) is not None:
            body = await _json_body(request)
            await run_in_threadpool(_check_subject, application, principal, rule.subject, request, body)
    request.state.principal = principal
    return principal


def _check_role(principal: Principal, rule: Rule | None, operation_id: str | None, request: Request) -> None:
    if rule is None or principal.role not in rule.roles:
        raise AccessDenied(f"the role {principal.role} may not call {operation_id or request.url.path}")


def _admit(application: TuohuApplication, authenticator: Authenticator, token: str | None, rule: Rule | None,
           operation_id: str | None, request: Request) -> Principal:
    """The caller (401), allowed by their role (403) and, for a customer named in the path or the
    query, by their scope (404): one trip to a worker thread for the whole check."""
    principal = authenticator.authenticate(token)
    _check_role(principal, rule, operation_id, request)
    if rule is not None and rule.subject is not None and scope_of(principal) is not None:
        _check_subject(application, principal, rule.subject, request, None)  # bank-wide roles see every customer
    return principal


async def current_principal(principal: Annotated[Principal | None, Depends(authorize)]) -> Principal:
    """The caller of a route that is not public."""
    if principal is None:  # pragma: no cover - only public routes get None, and they do not ask
        raise AccessDenied("this route needs an authenticated caller")
    return principal


async def customer_scope(principal: Annotated[Principal, Depends(current_principal)]) -> dict[str, str] | None:
    """The caller's customer scope as read-model filters; None for bank-wide roles."""
    scope = scope_of(principal)
    return scope.filters() if scope is not None else None


async def staff_branch(principal: Annotated[Principal, Depends(current_principal)]) -> str | None:
    """The branch whose people a branch head may see in staff reports; None for the bank."""
    return principal.branch if principal.role == BRANCH_HEAD else None


PrincipalDep = Annotated[Principal, Depends(current_principal)]
ScopeDep = Annotated[dict[str, str] | None, Depends(customer_scope)]
StaffBranchDep = Annotated[str | None, Depends(staff_branch)]

_ERROR = {"$ref": "#/components/schemas/ErrorPublic"}


def install(api: FastAPI) -> None:
    """Document the matrix in the OpenAPI document: per operation its roles, 401 and 403,
    and no security requirement on public routes."""
    generate = api.openapi

    def openapi() -> dict[str, Any]:
        if api.openapi_schema:
            return api.openapi_schema
        schema = generate()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                rule = rule_for(operation.get("operationId"))
                if rule is None:
                    continue
                if rule.public:
                    operation.pop("security", None)
                    continue
                note = f"**Roles:** {', '.join(rule.roles)}."
                if rule.subject is not None:
                    note += f" Row-level: {rule.subject.describe()}."
                elif rule.rows:
                    note += " Row-level: only the caller's customers (customer manager: own; branch head: branch)."
                operation["description"] = f"{operation.get('description', '').rstrip()}\n\n{note}".lstrip()
                responses = operation.setdefault("responses", {})
                responses.setdefault("401", {"description": "Missing, malformed, unknown, rotated or revoked "
                                                            "bearer token", "content": {"application/json": {
                                                                "schema": _ERROR}}})
                responses.setdefault("403", {"description": "The caller's role may not call this operation, or "
                                                            "it acts outside the caller's scope (see `code`)",
                                             "content": {"application/json": {"schema": _ERROR}}})
        return schema

    api.openapi = openapi  # type: ignore[method-assign]


def bench_noop_enabled() -> bool:
    """Whether the benchmark's no-op route is mounted (``TUOHU_BENCH_NOOP=1``)."""
    return os.environ.get(BENCH_NOOP_ENV) == "1"
