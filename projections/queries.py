"""Queries over the pipeline read model (no aggregate is loaded to answer a query).

Each function takes the ``Tables`` of a generation (normally the active one)
and an open connection, and returns plain dicts ready for JSON, CSV or XLSX.
Times are UTC; "days" are whole days of 24 h between a business time and ``now``.

Lists are read a page at a time: ``limit`` rows after ``after``, the sort key
of the last row of the previous page (see each function's ``*_KEY``), so a
page costs the same however far into the list it is. ``count_*`` give the
total of the same list; where a rollup holds it, it is read from there.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Mapping, Optional, Sequence

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.engine import Connection

from projections.framework import Tables, utc
from projections.pipeline import FUNNEL_STAGES, SEARCH_KEY_POSITION_BITS, search_key_day

FUNNEL_GROUPS = ("channel", "segment", "month", "kind")


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (utc(v) if isinstance(v, datetime) else v) for k, v in row.items()}


def funnel(conn: Connection, t: Tables, scope: Scope = None, month_from: str | None = None,
           month_to: str | None = None) -> dict[str, int]:
    """Customers that reached each stage: ``{stage: count}`` in funnel order; with ``month_from`` /
    ``month_to`` (``YYYY-MM``, inclusive), of the customers registered in those months.

    Unscoped it reads the funnel rollup; with a ``scope`` it counts the scope's
    customer rows, whose per-stage flags are the ones the rollup sums.
    """
    if scope:
        [counts] = _scoped_funnel(conn, t, scope, None, month_from, month_to).values()
        return {stage: counts[stage] for stage in FUNNEL_STAGES}
    f = t.funnel.c
    query = select(f.stage, func.sum(f.customers)).group_by(f.stage)
    if month_from:
        query = query.where(f.month >= month_from)
    if month_to:
        query = query.where(f.month <= month_to)
    rows = conn.execute(query).all()
    counts = {stage: int(total or 0) for stage, total in rows}
    return {stage: counts.get(stage, 0) for stage in FUNNEL_STAGES}


_PAIRS = tuple(zip(FUNNEL_STAGES, FUNNEL_STAGES[1:]))
_PREVIOUS = {stage: previous for previous, stage in _PAIRS}


def _scoped_funnel(conn: Connection, t: Tables, scope: Scope, by: str | None, month_from: str | None = None,
                   month_to: str | None = None) -> dict[Any, dict[str, int]]:
    """``{group: {stage: count}}`` counted from the scope's customer rows (one group, None, without ``by``),
    with ``(previous stage, stage)`` keys for those who reached both (see :func:`funnel_by`)."""
    c = t.customers.c
    flags = [func.count()] + [func.sum(case((c[stage], 1), else_=0)) for stage in FUNNEL_STAGES[1:]]
    # every customer is registered: the first pair is those screened
    flags += [func.sum(case((c[stage] if previous == FUNNEL_STAGES[0] else and_(c[previous], c[stage]), 1), else_=0))
              for previous, stage in _PAIRS]
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
        groups[group] = {stage: int(value or 0) for stage, value in zip(FUNNEL_STAGES + _PAIRS, values)}
    return groups if (groups or key is not None) else {None: {stage: 0 for stage in FUNNEL_STAGES}}


def funnel_by(conn: Connection, t: Tables, by: str, month_from: str | None = None,
              month_to: str | None = None, scope: Scope = None) -> list[dict[str, Any]]:
    """The funnel per ``by`` (channel, segment, month or kind), with stage-to-stage
    conversion rates in percent (``None`` where the previous stage is 0).

    The conversion from one stage to the next is the share of the customers who reached the
    first that also reached the second: stages are not always reached in funnel order (an
    imported customer is called before being qualified), so it is not the ratio of the two
    counts and never exceeds 100 %. ``overall`` is account_opened over registered.

    Months are registration months ``YYYY-MM``; ``month_from`` / ``month_to`` are inclusive.
    """
    if by not in FUNNEL_GROUPS:
        raise ValueError(f"by must be one of {', '.join(FUNNEL_GROUPS)}")
    groups: dict[str, dict[str, int]] = {}
    if scope:
        groups = _scoped_funnel(conn, t, scope, by, month_from, month_to)
    else:
        f = t.funnel.c
        query = select(f[by], f.stage, func.sum(f.customers), func.sum(f.with_previous)).group_by(f[by], f.stage)
        if month_from:
            query = query.where(f.month >= month_from)
        if month_to:
            query = query.where(f.month <= month_to)
        for key, stage, total, with_previous in conn.execute(query):
            group = groups.setdefault(key, {})
            group[stage] = int(total or 0)
            if stage in _PREVIOUS:
                group[(_PREVIOUS[stage], stage)] = int(with_previous or 0)
    result = []
    for key in sorted(groups):
        counts = {stage: groups[key].get(stage, 0) for stage in FUNNEL_STAGES}
        rates: dict[str, float | None] = {}
        for pair in _PAIRS:
            previous, stage = pair
            rates[f"{previous}_to_{stage}"] = (
                round(100 * groups[key].get(pair, 0) / counts[previous], 2) if counts[previous] else None)
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


def _after(ascending: Any, tie: Any, after: Sequence[Any] | None, descending: bool = False) -> list[Any]:
    """``where`` clauses keeping rows past the key ``after`` = (``ascending`` value, ``tie`` value)
    in the order (``ascending`` [desc when ``descending``], ``tie``)."""
    if after is None:
        return []
    value, tie_value = after
    if descending:
        return [ascending <= value, or_(ascending < value, tie > tie_value)]
    return [ascending >= value, or_(ascending > value, tie > tie_value)]


def _pattern(q: str | None) -> str:
    """The text searched for: ``q`` trimmed and in lowercase, as ``search_text`` is stored ("" for none)."""
    return (q or "").strip().lower()


def _customer_where(t: Tables, q: str | None, scope: Scope, filters: Mapping[str, Any]) -> list[Any]:
    c = t.customers.c
    where = _scope_clauses(t, scope)
    for name, value in filters.items():
        if name not in CUSTOMER_FILTERS:
            raise ValueError(f"unknown filter {name}")
        if value is not None:
            where.append(c[name] == value)
    if _pattern(q):
        where.extend(t.contains("customers", _pattern(q)))
    return where


CUSTOMERS_KEY = ("registered_at", "customer_id")
"""The customers list's sort key: newest registration first, then customer id."""


def customers(conn: Connection, t: Tables, *, q: str | None = None, limit: int = 100, offset: int = 0,
              after: Sequence[Any] | None = None, scope: Scope = None, **filters: Any) -> list[dict[str, Any]]:
    """Customers, newest registration first; filters are exact matches on
    :data:`CUSTOMER_FILTERS`; ``q`` searches name, account number and id (case-insensitive);
    ``scope`` keeps only the customers a principal may see; ``after`` is a :data:`CUSTOMERS_KEY`."""
    c = t.customers.c
    found = _searched_customers(conn, t, _pattern(q), limit + offset, after, scope, filters)
    if found is None:
        query = (select(t.customers).where(*_customer_where(t, q, scope, filters),
                                           *_after(c.registered_at, c.customer_id, after, descending=True))
                 .order_by(c.registered_at.desc(), c.customer_id).limit(limit).offset(offset))
        found = [dict(row) for row in conn.execute(query).mappings()]
    else:
        found = found[offset:]
    rows = []
    for row in found:
        data = _clean(row)
        for column in ("search_text", "search_key", "open_risk"):
            data.pop(column, None)
        rows.append(data)
    return rows


def _searched_customers(conn: Connection, t: Tables, pattern: str, limit: int, after: Sequence[Any] | None,
                        scope: Scope, filters: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """The first ``limit`` customers containing ``pattern`` in :data:`CUSTOMERS_KEY` order, read from
    the text index newest registration day first (None when the index cannot hand out keys).

    Keys come in descending order of registration day (:func:`projections.pipeline.search_key`), a
    chunk at a time; the rows of each chunk that pass the filters are kept. Once ``limit`` rows are
    kept, the rest of the last kept row's day is read too: every row not read is registered on an
    earlier day, so the first ``limit`` of the kept rows in the report's order are the answer.
    """
    if not pattern or t.text is None:
        return None
    c = t.customers.c
    where = [*_customer_where(t, None, scope, filters),
             *_after(c.registered_at, c.customer_id, after, descending=True)]
    below = None if after is None else (utc(after[0]).date().toordinal() + 1) << SEARCH_KEY_POSITION_BITS
    kept: list[dict[str, Any]] = []
    last_day = None
    chunk = max(limit + 1, 64)
    while True:
        keys = t.text.keys_below(conn, t.customers, pattern, below, chunk)
        if keys is None:
            return None
        wanted = keys if last_day is None else [k for k in keys if search_key_day(k) == last_day]
        if wanted:
            rows = {row["search_key"]: dict(row)
                    for row in conn.execute(select(t.customers).where(c.search_key.in_(wanted), *where)).mappings()}
            for key in wanted:
                if key in rows:
                    kept.append(rows[key])
                    if last_day is None and len(kept) >= limit:
                        last_day = search_key_day(key)
        if len(keys) < chunk or (last_day is not None and search_key_day(keys[-1]) < last_day):
            break  # no more keys, or the last kept row's day is read to its end
        below, chunk = keys[-1], min(chunk * 4, 4096)
    kept.sort(key=lambda row: row["customer_id"])
    kept.sort(key=lambda row: row["registered_at"], reverse=True)
    return kept[:limit]


def count_customers(conn: Connection, t: Tables, *, q: str | None = None, scope: Scope = None,
                    **filters: Any) -> int:
    """How many customers :func:`customers` lists in all (every customer: the funnel rollup's registrations)."""
    where = _customer_where(t, q, scope, filters)
    if not where:
        f = t.funnel.c
        return int(conn.execute(select(func.sum(f.customers)).where(f.stage == "registered")).scalar() or 0)
    if _pattern(q) and t.text is not None and not scope and all(v is None for v in filters.values()):
        counted = t.text.count(conn, t.customers, _pattern(q))  # q alone: the index counts its rows
        if counted is not None:
            return counted
    return int(conn.execute(select(func.count()).select_from(t.customers).where(*where)).scalar_one())


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


SCHEDULE_KEY = ("scheduled_at", "aggregate_id")
"""The sort key of the visit calendar and the overdue follow-ups: scheduled time, then visit id."""


def _calendar_where(t: Tables, start: datetime, end: datetime, staff: str | None, scope: Scope) -> list[Any]:
    r = t.records.c
    where = [r.scheduled_at >= start, r.scheduled_at < end, r.status != "cancelled", r.aggregate_type == "visit",
             *_in_scope(t, r.customer_id, scope)]
    if staff:
        where.append(r.created_by == staff)
    return where


def visit_calendar(conn: Connection, t: Tables, start: datetime, end: datetime, *, staff: str | None = None,
                   limit: int = 500, after: Sequence[Any] | None = None, scope: Scope = None) -> list[dict[str, Any]]:
    """Visits scheduled in ``[start, end)`` that are not cancelled, in time order;
    ``after`` is a :data:`SCHEDULE_KEY`."""
    r = t.records.c
    query = (select(t.records).where(*_calendar_where(t, start, end, staff, scope),
                                     *_after(r.scheduled_at, r.aggregate_id, after))
             .order_by(r.scheduled_at, r.aggregate_id).limit(limit))
    return [_clean(dict(row)) for row in conn.execute(query).mappings()]


def count_visit_calendar(conn: Connection, t: Tables, start: datetime, end: datetime, *, staff: str | None = None,
                         scope: Scope = None) -> int:
    """How many visits :func:`visit_calendar` lists in all."""
    return int(conn.execute(select(func.count()).select_from(t.records)
                            .where(*_calendar_where(t, start, end, staff, scope))).scalar_one())


OVERDUE_STATUSES = ("planned", "prepared")


def _overdue_where(t: Tables, status: str, now: datetime, scope: Scope) -> list[Any]:
    r = t.records.c
    return [r.kind == "follow_up", r.status == status, r.aggregate_type == "visit", r.scheduled_at < now,
            *_in_scope(t, r.customer_id, scope)]


def overdue_follow_ups(conn: Connection, t: Tables, now: datetime | None = None, limit: int = 500,
                       after: Sequence[Any] | None = None, scope: Scope = None) -> list[dict[str, Any]]:
    """Follow-up visits (measures §2.5 return visits) whose time has passed while still
    planned or prepared, oldest first, with ``days_overdue``; ``after`` is a :data:`SCHEDULE_KEY`."""
    now = now or datetime.now(timezone.utc)
    r = t.records.c
    found = []
    for status in OVERDUE_STATUSES:  # one ordered index range per status, merged
        query = (select(t.records).where(*_overdue_where(t, status, now, scope),
                                         *_after(r.scheduled_at, r.aggregate_id, after))
                 .order_by(r.scheduled_at, r.aggregate_id).limit(limit))
        found.extend(_clean(dict(row)) for row in conn.execute(query).mappings())
    found.sort(key=lambda row: (row["scheduled_at"], row["aggregate_id"]))
    rows = found[:limit]
    for data in rows:
        data["days_overdue"] = (now - data["scheduled_at"]).days
    return rows


def count_overdue_follow_ups(conn: Connection, t: Tables, now: datetime | None = None, scope: Scope = None) -> int:
    """How many follow-ups :func:`overdue_follow_ups` lists in all."""
    now = now or datetime.now(timezone.utc)
    return sum(int(conn.execute(select(func.count()).select_from(t.records)
                                .where(*_overdue_where(t, status, now, scope))).scalar_one())
               for status in OVERDUE_STATUSES)


STAGE_KEY = ("stage_entered_at", "aggregate_id")
"""The sort key of proposals and contracts by time in status: longest first (earliest entry), then id."""


def work_in_stage(conn: Connection, t: Tables, aggregate_type: str, *, status: str | None = None,
                  now: datetime | None = None, limit: int = 500, after: Sequence[Any] | None = None,
                  scope: Scope = None) -> list[dict[str, Any]]:
    """Proposals or contracts with ``days_in_stage`` (since they entered their status), longest first;
    ``after`` is a :data:`STAGE_KEY`."""
    now = now or datetime.now(timezone.utc)
    r = t.records.c
    query = select(t.records).where(r.aggregate_type == aggregate_type, *_in_scope(t, r.customer_id, scope),
                                    *_after(r.stage_entered_at, r.aggregate_id, after))
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
    """Per status: how many, and the longest days in that status (business time), by status name.

    Unscoped, the counts come from the ``record_counts`` rollup and each status's
    earliest entry from one index lookup, in one statement; with a ``scope`` they are
    counted from the scope's rows.
    """
    now = datetime.now(timezone.utc)
    r = t.records.c
    if scope:
        rows = conn.execute(select(r.status, func.count(), func.min(r.stage_entered_at))
                            .where(r.aggregate_type == aggregate_type, *_in_scope(t, r.customer_id, scope))
                            .group_by(r.status)).all()
    else:
        k = t.record_counts.c
        counts = (select(k.status, func.sum(k.records).label("records")).where(k.aggregate_type == aggregate_type)
                  .group_by(k.status).subquery())
        oldest = (select(r.stage_entered_at).where(r.aggregate_type == aggregate_type, r.status == counts.c.status)
                  .order_by(r.stage_entered_at).limit(1).scalar_subquery())
        rows = conn.execute(select(counts.c.status, counts.c.records, oldest).where(counts.c.records != 0)).all()
    result = []
    for status, count, oldest in rows:
        result.append({"status": status, "count": int(count),
                       "longest_days": (now - utc(oldest)).days if oldest else None})
    return sorted(result, key=lambda x: x["status"])


RISK_LEVELS = ("high", "medium", "low", None)
"""Risk levels in the register's order; None is a case not yet assessed."""

RISK_KEY = ("level", "created_at", "aggregate_id")
"""The risk register's sort key: level from high to unassessed, then oldest first, then case id."""


def _open_cases_where(t: Tables, level: str | None, scope: Scope) -> list[Any]:
    r = t.records.c
    return [r.level.is_(None) if level is None else r.level == level, r.aggregate_type == "risk_case",
            r.status != "closed", *_in_scope(t, r.customer_id, scope)]


def open_risk_cases(conn: Connection, t: Tables, *, limit: int = 500, after: Sequence[Any] | None = None,
                    scope: Scope = None) -> list[dict[str, Any]]:
    """Risk cases not closed, in :data:`RISK_KEY` order (one index range per level);
    ``after`` is a :data:`RISK_KEY` (level None for unassessed)."""
    r = t.records.c
    levels = list(RISK_LEVELS)
    if after is not None:
        levels = levels[levels.index(after[0]):]
    rows: list[dict[str, Any]] = []
    for level in levels:
        if len(rows) >= limit:
            break
        position = after[1:] if after is not None and level == after[0] else None
        query = (select(t.records).where(*_open_cases_where(t, level, scope),
                                         *_after(r.created_at, r.aggregate_id, position))
                 .order_by(r.created_at, r.aggregate_id).limit(limit - len(rows)))
        rows.extend(_clean(dict(row)) for row in conn.execute(query).mappings())
    return rows


def risk_counts(conn: Connection, t: Tables, scope: Scope = None) -> dict[str, Any]:
    """Open risk cases (not closed) by level (``unassessed`` for none) and their open warnings:
    ``{"open_by_level": {level: cases}, "open_warnings": n}``; unscoped from the ``record_counts`` rollup."""
    by_level = {level: 0 for level in ("high", "medium", "low", "unassessed")}
    if scope:
        r = t.records.c
        found = conn.execute(select(r.level, func.count(), func.sum(r.warnings))
                             .where(r.aggregate_type == "risk_case", r.status != "closed",
                                    *_in_scope(t, r.customer_id, scope)).group_by(r.level)).all()
    else:
        k = t.record_counts.c
        found = conn.execute(select(k.level, func.sum(k.records), func.sum(k.warnings))
                             .where(k.aggregate_type == "risk_case", k.status != "closed")
                             .group_by(k.level)).all()
    warnings = 0
    for level, cases, raised in found:
        by_level[level or "unassessed"] += int(cases or 0)
        warnings += int(raised or 0)
    return {"open_by_level": by_level, "open_warnings": warnings}


def risk_register(conn: Connection, t: Tables, scope: Scope = None, limit: int = 500,
                  after: Sequence[Any] | None = None) -> dict[str, Any]:
    """Open risk cases (not closed) by level, their open warnings, and a page of the cases themselves."""
    return {**risk_counts(conn, t, scope), "cases": open_risk_cases(conn, t, limit=limit, after=after, scope=scope)}
