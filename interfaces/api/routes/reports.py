"""Reports over the read models (measures §1, §3, §4, §5) and the service's health.

Every report accepts ``consistent_with`` (see ``ReadModelsDep``) and
``format=json|csv|xlsx``; CSV and XLSX carry the same rows as the JSON.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from interfaces import reports
from application import NotFound
from interfaces.api.deps import AppDep, ReadModelsDep, ScopeDep, StaffBranchDep
from interfaces.api.schemas import HealthPublic

queries = APIRouter(tags=["reports"])

Format = Annotated[Literal["json", "csv", "xlsx"], Query(description="json (default), csv or xlsx")]
Period = Annotated[str, Query(pattern=r"^\d{4}(-(0[1-9]|1[0-2]|Q[1-4]|H[12]))?$",
                              description="2009-05 (month), 2009-Q3, 2009-H1 or 2009", examples=["2009-Q3"])]
Month = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM")]
Text = Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$")]


def _render(data: Any, fmt: str, title: str) -> Response:
    if fmt == "csv":
        return Response(reports.to_csv(data), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{title}.csv"'})
    if fmt == "xlsx":
        return Response(reports.to_xlsx(data, title),
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{title}.xlsx"'})
    return JSONResponse(jsonable_encoder(data, custom_encoder={Decimal: str}))


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
    limit: Annotated[int, Query(ge=1, le=10000)] = 100, offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    format: Format = "json",
) -> Response:
    """Customers filtered by stage, manager, branch, channel, segment, kind, key customer, risk level; text search ``q``."""
    data = reports.customers(read_models, q=q, limit=limit, offset=offset, stage=stage, manager_id=manager_id,
                             branch=branch, channel=channel, segment=segment, kind=kind, is_key=is_key,
                             risk_level=risk_level, scope=scope)
    return _render(data, format, "customers")


@queries.get("/reports/visits/calendar", operation_id="visit_calendar")
def visit_calendar(read_models: ReadModelsDep, scope: ScopeDep, start: Annotated[datetime, Query(alias="from")],
                   end: Annotated[datetime, Query(alias="to")], staff: Text = None,
                   format: Format = "json") -> Response:
    """Visits scheduled between ``from`` (inclusive) and ``to`` (exclusive), UTC, in time order (§2.3)."""
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise HTTPException(status_code=422, detail=[{"type": "value_error", "loc": ["query", name],
                                                          "msg": "must carry a timezone, e.g. Z"}])
    return _render(_run(lambda: reports.visit_calendar(read_models, start, end, staff, scope=scope)), format, "visits")


@queries.get("/reports/visits/overdue-follow-ups", operation_id="overdue_follow_ups")
def overdue_follow_ups(read_models: ReadModelsDep, scope: ScopeDep, format: Format = "json") -> Response:
    """Follow-up visits past their time and not yet conducted, with days overdue (§2.5)."""
    return _render(reports.overdue_follow_ups(read_models, scope=scope), format, "overdue-follow-ups")


@queries.get("/reports/proposals", operation_id="proposals_pipeline")
def proposals_pipeline(read_models: ReadModelsDep, scope: ScopeDep, status: Text = None,
                       format: Format = "json") -> Response:
    """Proposals per status with days in stage (§2.4)."""
    return _render(reports.work_pipeline(read_models, "proposal", status, scope=scope), format, "proposals")


@queries.get("/reports/contracts", operation_id="contracts_pipeline")
def contracts_pipeline(read_models: ReadModelsDep, scope: ScopeDep, status: Text = None,
                       format: Format = "json") -> Response:
    """Contracts per status with days in stage (§2.4)."""
    return _render(reports.work_pipeline(read_models, "contract", status, scope=scope), format, "contracts")


@queries.get("/reports/risk-register", operation_id="risk_register")
def risk_register(read_models: ReadModelsDep, scope: ScopeDep, format: Format = "json") -> Response:
    """Open risk cases by level, open warnings, and the cases (§4)."""
    return _render(reports.risk_register(read_models, scope=scope), format, "risk-register")


@queries.get("/reports/evaluation", operation_id="evaluation")
def evaluation(
    read_models: ReadModelsDep, period: Period,
    unit_type: Literal["bank", "branch", "team", "person"] = "bank", unit_id: Text = "bank",
    as_of: Annotated[datetime | None, Query(description="build from events recorded up to this time")] = None,
    effective_as_of: Annotated[datetime | None, Query(description="build from events that occurred up to this time")] = None,
    format: Format = "json",
) -> Response:
    """The period's evaluation of an organisation unit against its targets (§5); as of a past moment on request."""
    data = _run(lambda: reports.evaluation(read_models, period, unit_type, unit_id or "bank", as_of=as_of,
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
