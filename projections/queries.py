"""Queries over the pipeline read model (no aggregate is loaded to answer a query).

Each function takes the ``Tables`` of a generation (normally the active one)
and an open connection, and returns plain dicts ready for JSON, CSV or XLSX.
Times are UTC; "days" are whole days of 24 h between a business time and ``now``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping, Optional

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection

from projections.framework import Tables, utc
from projections.pipeline import FUNNEL_STAGES

FUNNEL_GROUPS = ("channel", "segment", "month", "kind")


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (utc(v) if isinstance(v, datetime) else v) for k, v in row.items()}


def funnel(conn: Connection, t: Tables, scope: Scope = None) -> dict[str, int]:
    """Customers that reached each stage: ``{stage: count}`` in funnel order.

    Unscoped it reads the funnel rollup; with a ``scope`` it counts the scope's
    customer rows, whose per-stage flags are the ones the rollup sums.
    """
    if scope:
        [counts] = _scoped_funnel(conn, t, scope, None).values()
        return counts
    rows = conn.execute(select(t.funnel.c.stage, func.sum(t.funnel.c.customers)).group_by(t.funnel.c.stage)).all()
    counts = {stage: int(total or 0) for stage, total in rows}
    return {stage: counts.get(stage, 0) for stage in FUNNEL_STAGES}


def _scoped_funnel(conn: Connection, t: Tables, scope: Scope, by: str | None, month_from: str | None = None,
                   month_to: str | None = None) -> dict[Any, dict[str, int]]:
    """``{group: {stage: count}}`` counted from the scope's customer rows (one group, None, without ``by``)."""
    c = t.customers.c
    flags = [func.count()] + [func.sum(case((c[stage], 1), else_=0)) for stage in FUNNEL_STAGES[1:]]
    key = c.registered_month if by == "month" else (c[by] if by else None)
    query = select(*([key] if key is not None else []), *flags).where(*_scope_clauses(t, scope))
    if month_from:
        query = query.where(c.registered_month >= month_from)
    if month_to:
        query = query.where(c.registered_month <= month_to)
    if key is not None:
        query = query.group_by(key)
    groups: dict[Any, dict[str, int]] = {}
    for row in conn.execute(query):
        values = list(row)
        group = values.pop(0) if key is not None else None
        groups[group] = {stage: int(value or 0) for stage, value in zip(FUNNEL_STAGES, values)}
    return groups if (groups or key is not None) else {None: {stage: 0 for stage in FUNNEL_STAGES}}


def funnel_by(conn: Connection, t: Tables, by: str, month_from: str | None = None,
              month_to: str | None = None, scope: Scope = None) -> list[dict[str, Any]]:
    """The funnel per ``by`` (channel, segment, month or kind), with stage-to-stage
    conversion rates in percent (``None`` where the previous stage is 0).

    Months are registration months ``YYYY-MM``; ``month_from`` / ``month_to`` are inclusive.
    """
    if by not in FUNNEL_GROUPS:
        raise ValueError(f"by must be one of {', '.join(FUNNEL_GROUPS)}")
    groups: dict[str, dict[str, int]] = {}
    if scope:
        groups = _scoped_funnel(conn, t, scope, by, month_from, month_to)
    else:
        f = t.funnel.c
        query = select(f[by], f.stage, func.sum(f.customers)).group_by(f[by], f.stage)
        if month_from:
            query = query.where(f.month >= month_from)
        if month_to:
            query = query.where(f.month <= month_to)
        for key, stage, total in conn.execute(query):
            groups.setdefault(key, {})[stage] = int(total or 0)
    result = []
    for key in sorted(groups):
        counts = {stage: groups[key].get(stage, 0) for stage in FUNNEL_STAGES}
        rates: dict[str, float | None] = {}
        for previous, stage in zip(FUNNEL_STAGES, FUNNEL_STAGES[1:]):
            rates[f"{previous}_to_{stage}"] = (
                round(100 * counts[stage] / counts[previous], 2) if counts[previous] else None)
        rates["overall"] = (round(100 * counts["account_opened"] / counts["registered"], 2)
                            if counts["registered"] else None)
        result.append({by: key, **counts, "conversion_pct": rates})
    return result


CUSTOMER_FILTERS = ("stage", "manager_id", "branch", "channel", "segment", "kind", "is_key", "risk_level")


Scope = Optional[Mapping[str, str]]
"""Row-level scope: exact matches on the customers' ``manager_id`` and / or ``branch``
(``application.access.CustomerScope.filters()``); None for every customer."""

SCOPE_COLUMNS = ("manager_id", "branch")


def _scope_clauses(t: Tables, scope: Scope) -> list[Any]:
    """``where`` clauses on the customers table that keep the scope's customers."""
    clauses = []
    for name, value in (scope or {}).items():
        if name not in SCOPE_COLUMNS:
            raise ValueError(f"unknown scope column {name}")
        clauses.append(t.customers.c[name] == value)
    return clauses


def _in_scope(t: Tables, column: Any, scope: Scope) -> list[Any]:
    """``where`` clauses keeping rows whose customer id ``column`` is in the scope."""
    clauses = _scope_clauses(t, scope)
    if not clauses:
        return []
    return [column.in_(select(t.customers.c.customer_id).where(*clauses))]


def customers(conn: Connection, t: Tables, *, q: str | None = None, limit: int = 100, offset: int = 0,
              scope: Scope = None, **filters: Any) -> list[dict[str, Any]]:
    """Customers, newest registration first; filters are exact matches on
    :data:`CUSTOMER_FILTERS`; ``q`` searches name, account number and id (case-insensitive);
    ``scope`` keeps only the customers a principal may see."""
    c = t.customers.c
    query = select(t.customers).where(*_scope_clauses(t, scope))
    for name, value in filters.items():
        if name not in CUSTOMER_FILTERS:
            raise ValueError(f"unknown filter {name}")
        if value is not None:
            query = query.where(c[name] == value)
    if q:
        query = query.where(c.search_text.contains(q.strip().lower(), autoescape=True))
    query = query.order_by(c.registered_at.desc(), c.customer_id).limit(limit).offset(offset)
    rows = []
    for row in conn.execute(query).mappings():
        data = _clean(dict(row))
        data.pop("search_text", None)
        data.pop("open_risk", None)
        rows.append(data)
    return rows


def records(conn: Connection, t: Tables, aggregate_type: str, *, customer_id: str | None = None,
            status: str | None = None, created_by: str | None = None, limit: int = 100,
            offset: int = 0, scope: Scope = None) -> list[dict[str, Any]]:
    """Visits, proposals, contracts or risk cases, newest first (of the scope's customers)."""
    r = t.records.c
    query = select(t.records).where(r.aggregate_type == aggregate_type, *_in_scope(t, r.customer_id, scope))
    for column, value in (("customer_id", customer_id), ("status", status), ("created_by", created_by)):
        if value is not None:
            query = query.where(r[column] == value)
    query = query.order_by(r.created_at.desc(), r.aggregate_id).limit(limit).offset(offset)
    return [_clean(dict(row)) for row in conn.execute(query).mappings()]


def visit_calendar(conn: Connection, t: Tables, start: datetime, end: datetime, *, staff: str | None = None,
                   limit: int = 500, scope: Scope = None) -> list[dict[str, Any]]:
    """Visits scheduled in ``[start, end)`` that are not cancelled, in time order."""
    r = t.records.c
    query = (select(t.records).where(and_(r.aggregate_type == "visit", r.scheduled_at >= start, r.scheduled_at < end,
                                          r.status != "cancelled"), *_in_scope(t, r.customer_id, scope))
             .order_by(r.scheduled_at, r.aggregate_id).limit(limit))
    if staff:
        query = query.where(r.created_by == staff)
    return [_clean(dict(row)) for row in conn.execute(query).mappings()]


def overdue_follow_ups(conn: Connection, t: Tables, now: datetime | None = None,
                       limit: int = 500, scope: Scope = None) -> list[dict[str, Any]]:
    """Follow-up visits (measures §2.5 return visits) whose time has passed while still
    planned or prepared, oldest first, with ``days_overdue``."""
    now = now or datetime.now(timezone.utc)
    r = t.records.c
    query = (select(t.records).where(and_(r.aggregate_type == "visit", r.kind == "follow_up",
                                          r.status.in_(("planned", "prepared")), r.scheduled_at < now),
                                     *_in_scope(t, r.customer_id, scope))
             .order_by(r.scheduled_at, r.aggregate_id).limit(limit))
    rows = []
    for row in conn.execute(query).mappings():
        data = _clean(dict(row))
        data["days_overdue"] = (now - data["scheduled_at"]).days
        rows.append(data)
    return rows


def work_in_stage(conn: Connection, t: Tables, aggregate_type: str, *, status: str | None = None,
                  now: datetime | None = None, limit: int = 500, scope: Scope = None) -> list[dict[str, Any]]:
    """Proposals or contracts with ``days_in_stage`` (since they entered their status), longest first."""
    now = now or datetime.now(timezone.utc)
    r = t.records.c
    query = select(t.records).where(r.aggregate_type == aggregate_type, *_in_scope(t, r.customer_id, scope))
    if status:
        query = query.where(r.status == status)
    query = query.order_by(r.stage_entered_at, r.aggregate_id).limit(limit)
    rows = []
    for row in conn.execute(query).mappings():
        data = _clean(dict(row))
        data["days_in_stage"] = (now - data["stage_entered_at"]).days
        rows.append(data)
    return rows


def pipeline_summary(conn: Connection, t: Tables, aggregate_type: str, scope: Scope = None) -> list[dict[str, Any]]:
    """Per status: how many, and the mean and longest days in that status (business time)."""
    now = datetime.now(timezone.utc)
    r = t.records.c
    rows = conn.execute(select(r.status, func.count(), func.min(r.stage_entered_at))
                        .where(r.aggregate_type == aggregate_type, *_in_scope(t, r.customer_id, scope))
                        .group_by(r.status)).all()
    result = []
    for status, count, oldest in rows:
        result.append({"status": status, "count": int(count),
                       "longest_days": (now - utc(oldest)).days if oldest else None})
    return sorted(result, key=lambda x: x["status"])


def risk_register(conn: Connection, t: Tables, scope: Scope = None) -> dict[str, Any]:
    """Open risk cases (not closed) by level, their open warnings, and the cases themselves."""
    r = t.records.c
    open_cases = [_clean(dict(row)) for row in conn.execute(
        select(t.records).where(and_(r.aggregate_type == "risk_case", r.status != "closed"),
                                *_in_scope(t, r.customer_id, scope))
        .order_by(r.level.desc(), r.created_at)).mappings()]
    by_level = {level: 0 for level in ("high", "medium", "low", "unassessed")}
    for case in open_cases:
        by_level[case["level"] or "unassessed"] += 1
    return {
        "open_by_level": by_level,
        "open_warnings": sum(case["warnings"] for case in open_cases),
        "cases": open_cases,
    }

