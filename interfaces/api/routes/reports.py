"""Reports over the read models (measures §1, §3, §4, §5) and the service's health.

Every report accepts ``consistent_with`` (see ``ReadModelsDep``) and
``format=json|csv|xlsx``; CSV and XLSX carry the same rows as the JSON.
List reports answer a page: ``limit`` rows (50 by default, at most 500) and
``next``, the ``cursor`` of the following page (null on the last), with the
``total`` of rows in all.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Response

from interfaces import reports
from application import NotFound
from interfaces.api.deps import AppDep, ReadModelsDep, ScopeDep, StaffBranchDep
from interfaces.api.schemas import HealthPublic

queries = APIRouter(tags=["reports"])

Format = Annotated[Literal["json", "csv", "xlsx"], Query(description="json (default), csv or xlsx")]
Period = Annotated[str, Query(pattern=r"^\d{4}(-(0[1-9]|1[0-2]|Q[1-4]|H[12]))?$",
                              description="2009-05 (month), 2009-Q3, 2009-H1 or 2009", examples=["2009-Q3"])]
Month = Annotated[str | None, Query(pattern=f"^{reports.MONTH_PATTERN}$", description="YYYY-MM")]
Text = Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$")]
Limit = Annotated[int, Query(ge=1, le=reports.MAX_LIMIT,
                             description=f"rows per page ({reports.DEFAULT_LIMIT} by default, "
                                         f"at most {reports.MAX_LIMIT})")]
Cursor = Annotated[str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]+$",
                                     description="`next` of the previous page; absent for the first page")]


def _render(data: Any, fmt: str, title: str) -> Response:
    if fmt == "csv":
        return Response(reports.to_csv(data), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{title}.csv"'})
    if fmt == "xlsx":
        return Response(reports.to_xlsx(data, title),
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{title}.xlsx"'})
    return Response(json.dumps(data, default=_json_value, ensure_ascii=False, allow_nan=False,
                               separators=(",", ":")).encode(), media_type="application/json")


def _json_value(value: Any) -> Any:
    """JSON for the values reports hold besides JSON's own: times and dates as ISO 8601, money
    (``Decimal``) and ids as text, sets as lists."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (Decimal, UUID)):
        return str(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def _run(build: Any) -> Any:
    try:
        return build()
    except reports.ReportError as exc:
        raise HTTPException(status_code=422, detail=[{"type": "value_error", "loc": ["query", exc.field],
                                                      "msg": exc.reason}]) from None
    except LookupError as exc:  # e.g. no appraisal scheme for the period's year
        raise NotFound(str(exc)) from None


@queries.get("/reports/funnel", operation_id="funnel")
def funnel(read_models: ReadModelsDep, scope: ScopeDep,
           by: Literal["channel", "segment", "month", "kind"] | None = None,
           month_from: Month = None, month_to: Month = None, format: Format = "json") -> Response:
    """Customers per acquisition stage (stage -> count); with ``by``, per group with conversion rates (§5)."""
    data = _run(lambda: reports.funnel(read_models, by, month_from, month_to, scope=scope))
    return _render(data, format, "funnel")


@queries.get("/reports/customers", operation_id="customers_report")
def customers_report(
    read_models: ReadModelsDep, scope: ScopeDep, q: Text = None, stage: Text = None, manager_id: Text = None,
    branch: Text = None,
    channel: Text = None, segment: Text = None, kind: Literal["corporate", "retail"] | None = None,
    is_key: bool | None = None, risk_level: Literal["high", "medium", "low"] | None = None,
    limit: Limit = reports.DEFAULT_LIMIT, cursor: Cursor = None,
    offset: Annotated[int, Query(ge=0, le=10**9, description="rows to skip (after `cursor`)")] = 0,
    format: Format = "json",
) -> Response:
    """Customers filtered by stage, manager, branch, channel, segment, kind, key customer, risk level;
    text search ``q``; newest registration first.
    A page: `total` rows in all, `limit`, `next` (the `cursor` of the following page; null on the last)."""
    data = _run(lambda: reports.customers(read_models, q=q, limit=limit, offset=offset, cursor=cursor, stage=stage,
                                          manager_id=manager_id, branch=branch, channel=channel, segment=segment,
                                          kind=kind, is_key=is_key, risk_level=risk_level, scope=scope))
    return _render(data, format, "customers")


@queries.get("/reports/visits/calendar", operation_id="visit_calendar")
def visit_calendar(read_models: ReadModelsDep, scope: ScopeDep, start: Annotated[datetime, Query(alias="from")],
                   end: Annotated[datetime, Query(alias="to")], staff: Text = None,
                   limit: Limit = reports.DEFAULT_LIMIT, cursor: Cursor = None, format: Format = "json") -> Response:
    """Visits scheduled between ``from`` (inclusive) and ``to`` (exclusive), UTC, in time order (§2.3).
    A page: `total` rows in all, `limit`, `next` (the `cursor` of the following page; null on the last)."""
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise HTTPException(status_code=422, detail=[{"type": "value_error", "loc": ["query", name],
                                                          "msg": "must carry a timezone, e.g. Z"}])
    return _render(_run(lambda: reports.visit_calendar(read_models, start, end, staff, scope=scope, limit=limit,
                                                       cursor=cursor)), format, "visits")


@queries.get("/reports/visits/overdue-follow-ups", operation_id="overdue_follow_ups")
def overdue_follow_ups(read_models: ReadModelsDep, scope: ScopeDep, limit: Limit = reports.DEFAULT_LIMIT,
                       cursor: Cursor = None, format: Format = "json") -> Response:
    """Follow-up visits past their time and not yet conducted, with days overdue, oldest first (§2.5).
    A page: `total` rows in all, `limit`, `next` (the `cursor` of the following page; null on the last)."""
    return _render(_run(lambda: reports.overdue_follow_ups(read_models, scope=scope, limit=limit, cursor=cursor)),
                   format, "overdue-follow-ups")


@queries.get("/reports/proposals", operation_id="proposals_pipeline")
def proposals_pipeline(read_models: ReadModelsDep, scope: ScopeDep, status: Text = None,
                       limit: Limit = reports.DEFAULT_LIMIT, cursor: Cursor = None,
                       format: Format = "json") -> Response:
    """Proposals per status (``summary``: count, longest days in status) and the proposals (of ``status``,
    or all) with days in stage, longest first (§2.4).
    A page: `total` rows in all, `limit`, `next` (the `cursor` of the following page; null on the last)."""
    return _render(_run(lambda: reports.work_pipeline(read_models, "proposal", status, scope=scope, limit=limit,
                                                      cursor=cursor)), format, "proposals")


@queries.get("/reports/contracts", operation_id="contracts_pipeline")
def contracts_pipeline(read_models: ReadModelsDep, scope: ScopeDep, status: Text = None,
                       limit: Limit = reports.DEFAULT_LIMIT, cursor: Cursor = None,
                       format: Format = "json") -> Response:
    """Contracts per status (``summary``: count, longest days in status) and the contracts (of ``status``,
    or all) with days in stage, longest first (§2.4).
    A page: `total` rows in all, `limit`, `next` (the `cursor` of the following page; null on the last)."""
    return _render(_run(lambda: reports.work_pipeline(read_models, "contract", status, scope=scope, limit=limit,
                                                      cursor=cursor)), format, "contracts")


@queries.get("/reports/risk-register", operation_id="risk_register")
def risk_register(read_models: ReadModelsDep, scope: ScopeDep, limit: Limit = reports.DEFAULT_LIMIT,
                  cursor: Cursor = None, format: Format = "json") -> Response:
    """Open risk cases by level, open warnings, and the open cases (``cases``), high level first, then
    unassessed, oldest first within a level (§4).
    A page: `total` rows in all, `limit`, `next` (the `cursor` of the following page; null on the last)."""
    return _render(_run(lambda: reports.risk_register(read_models, scope=scope, limit=limit, cursor=cursor)),
                   format, "risk-register")


@queries.get("/reports/evaluation", operation_id="evaluation")
def evaluation(
    read_models: ReadModelsDep, period: Period,
    unit_type: Literal["bank", "branch", "team", "person"] = "bank",
    unit_id: Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$", description=(
        "the branch, team or person (user name); required unless unit_type is bank"))] = None,
    as_of: Annotated[datetime | None, Query(description="build from events recorded up to this time")] = None,
    effective_as_of: Annotated[datetime | None, Query(description="build from events that occurred up to this time")] = None,
    format: Format = "json",
) -> Response:
    """The period's evaluation of an organisation unit against its targets (§5); as of a past moment on request.
    A branch, team or person needs its ``unit_id`` (422 without); a unit with no activity answers zeros."""
    data = _run(lambda: reports.evaluation(read_models, period, unit_type, unit_id, as_of=as_of,
                                           effective_as_of=effective_as_of))
    return _render(data, format, f"evaluation-{period}")


@queries.get("/reports/staff-performance", operation_id="staff_performance")
def staff_performance(read_models: ReadModelsDep, branch: StaffBranchDep, period: Period,
                      format: Format = "json") -> Response:
    """Each person's weighted composite score and rank from the year's appraisal scheme (§3);
    a branch head sees the people of their branch."""
    return _render(_run(lambda: reports.staff_performance(read_models, period, branch)), format, f"staff-{period}")


@queries.get("/health", operation_id="health")
def health(app: AppDep) -> HealthPublic:
    """Liveness and the event log's newest position."""
    return HealthPublic(status="ok", position=app.position())
