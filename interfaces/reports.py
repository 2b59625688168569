"""The reports, built once for both the HTTP routes and the ``tuohu report`` commands.

Each builder returns plain data: a list of row dicts (``rows``) or a nested
dict, from the read models only. List reports come a page at a time:
``{"total": rows in all, "limit": page size, "next": cursor of the next page
or None, "items": rows}`` (the risk register's rows are ``cases``); pass
``next`` back as ``cursor``. :func:`every_row` gathers every page for exports.
:func:`tabulate` flattens any of them into rows for CSV and XLSX output. Times are UTC; money is ``Decimal`` in the
reported currency; percentages are numbers from 0 to 100.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
from contextlib import contextmanager
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterator, Sequence

from projections import ReadModels, queries
from projections.framework import Tables
from projections.queries import Scope


class ReportError(ValueError):
    """A report parameter is invalid; ``field`` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


DEFAULT_LIMIT = 50
"""Rows per page of a list report when the caller names no ``limit``."""
MAX_LIMIT = 500
"""The most rows one page of a list report holds."""


def encode_cursor(key: Sequence[Any]) -> str:
    """The opaque ``next`` cursor for a sort key (URL-safe base64 of its JSON; times as ISO 8601 UTC)."""
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, kinds: Sequence[str]) -> tuple[Any, ...] | None:
    """The sort key in ``cursor`` (None for none), checked against ``kinds`` (``time``, ``text``,
    ``position``: an event's, ``level``: a risk level or null); a malformed one raises
    :class:`ReportError` for ``cursor``."""
    if cursor is None:
        return None
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError("wrong length")
        key = []
        for kind, value in zip(kinds, values):
            if kind == "time":
                when = datetime.fromisoformat(value)
                if when.tzinfo is None:
                    raise ValueError("time without zone")
                key.append(when)
            elif kind == "position":
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise ValueError("not a position")
                key.append(value)
            elif kind == "level":
                if value not in queries.RISK_LEVELS:
                    raise ValueError("not a risk level")
                key.append(value)
            elif isinstance(value, str):
                key.append(value)
            else:
                raise ValueError("not text")
    except (ValueError, TypeError, UnicodeDecodeError, binascii.Error):
        raise ReportError("cursor", "not a cursor this report gave out (pass `next` from the previous page)") from None
    return tuple(key)


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ReportError("limit", f"must be from 1 to {MAX_LIMIT}")
    return limit


def _page(rows: list[dict[str, Any]], limit: int, key: Sequence[str], total: int,
          items: str = "items") -> dict[str, Any]:
    """``{"total", "limit", "next", items: rows}`` from up to ``limit + 1`` rows; ``next`` is the cursor
    of the page after (None on the last page), from the ``key`` columns of the last row shown."""
    shown = rows[:limit]
    more = len(rows) > limit and bool(shown)
    return {"total": total, "limit": limit,
            "next": encode_cursor([shown[-1][k] for k in key]) if more else None, items: shown}


def every_row(build: Callable[[str | None], dict[str, Any]], items: str = "items") -> dict[str, Any]:
    """A paged report with the rows of every page (``build(cursor)`` gives one page), for exports."""
    page = build(None)
    rows = list(page[items])
    while page["next"] is not None:
        page = build(page["next"])
        rows.extend(page[items])
    return {**page, "limit": len(rows), "next": None, items: rows}


def customers(rm: ReadModels, *, q: str | None = None, limit: int = DEFAULT_LIMIT, offset: int = 0,
              cursor: str | None = None, scope: Scope = None, **filters: Any) -> dict[str, Any]:
    """Customers by stage, manager, branch, channel, segment, kind, key customer, risk level; text search ``q``;
    newest registration first, a page at a time: ``{"total", "limit", "next", "items"}``.

    Every report takes ``scope``: only the customers (and their work) a principal may see.
    """
    after = decode_cursor(cursor, ("time", "text"))
    with rm.reading() as (conn, t):
        rows = queries.customers(conn, t, q=q, limit=_limit(limit) + 1, offset=offset, after=after, scope=scope,
                                 **filters)
        total = queries.count_customers(conn, t, q=q, scope=scope, **filters)
    return _page(rows, limit, queries.CUSTOMERS_KEY, total)


def visit_calendar(rm: ReadModels, start: datetime, end: datetime, staff: str | None = None,
                   scope: Scope = None, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> dict[str, Any]:
    """Visits scheduled in ``[start, end)`` (UTC), not cancelled, in time order, a page at a time."""
    if end <= start:
        raise ReportError("to", "must be after from")
    after = decode_cursor(cursor, ("time", "text"))
    with rm.reading() as (conn, t):
        rows = queries.visit_calendar(conn, t, start, end, staff=staff, limit=_limit(limit) + 1, after=after,
                                      scope=scope)
        total = queries.count_visit_calendar(conn, t, start, end, staff=staff, scope=scope)
    return _page(rows, limit, queries.SCHEDULE_KEY, total)


def overdue_follow_ups(rm: ReadModels, scope: Scope = None, limit: int = DEFAULT_LIMIT,
                       cursor: str | None = None) -> dict[str, Any]:
    """Follow-up visits past their time and still not conducted (measures §2.5), oldest first, a page at a time."""
    after = decode_cursor(cursor, ("time", "text"))
    now = datetime.now(timezone.utc)
    with rm.reading() as (conn, t):
        rows = queries.overdue_follow_ups(conn, t, now, limit=_limit(limit) + 1, after=after, scope=scope)
        total = queries.count_overdue_follow_ups(conn, t, now, scope=scope)
    return _page(rows, limit, queries.SCHEDULE_KEY, total)


def work_pipeline(rm: ReadModels, aggregate_type: str, status: str | None = None, scope: Scope = None,
                  limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> dict[str, Any]:
    """Proposals or contracts: per status counts and longest wait (``summary``), and a page of the items
    (of ``status``, or all) with days in stage, longest first."""
    after = decode_cursor(cursor, ("time", "text"))
    with rm.reading() as (conn, t):
        summary = queries.pipeline_summary(conn, t, aggregate_type, scope=scope)
        rows = queries.work_in_stage(conn, t, aggregate_type, status=status, limit=_limit(limit) + 1, after=after,
                                     scope=scope)
    total = sum(s["count"] for s in summary if status is None or s["status"] == status)
    return {"summary": summary, **_page(rows, limit, queries.STAGE_KEY, total)}


def risk_register(rm: ReadModels, scope: Scope = None, limit: int = DEFAULT_LIMIT,
                  cursor: str | None = None) -> dict[str, Any]:
    """Open risk cases by level, open warnings, and a page of the cases, high level first (measures §4)."""
    after = decode_cursor(cursor, ("level", "time", "text"))
    with rm.reading() as (conn, t):
        counts = queries.risk_counts(conn, t, scope=scope)
        rows = queries.open_risk_cases(conn, t, limit=_limit(limit) + 1, after=after, scope=scope)
    total = sum(counts["open_by_level"].values())
    return {**counts, **_page(rows, limit, queries.RISK_KEY, total, items="cases")}


MONTH_PATTERN = r"\d{4}-(0[1-9]|1[0-2])"
"""A month ``YYYY-MM`` (01 to 12): the funnel's ``month_from`` / ``month_to``, here and on the route."""
_MONTH = re.compile(MONTH_PATTERN)


def funnel(rm: ReadModels, by: str | None = None, month_from: str | None = None,
           month_to: str | None = None, scope: Scope = None) -> Any:
    """The funnel: totals, or per channel / segment / month / kind with conversion rates; of the
    customers registered from ``month_from`` to ``month_to`` (``YYYY-MM``, inclusive) when given.

    Raises :class:`ReportError` naming ``month_from`` or ``month_to`` for a malformed month or a
    range that ends before it starts, and ``by`` for an unknown grouping."""
    for field, month in (("month_from", month_from), ("month_to", month_to)):
        if month is not None and not _MONTH.fullmatch(month):
            raise ReportError(field, f"must be a month YYYY-MM (01 to 12); got {month!r}")
    if month_from is not None and month_to is not None and month_to < month_from:
        raise ReportError("month_to", f"must not be before month_from ({month_from}); got {month_to}")
    with rm.reading() as (conn, t):
        if by is None:
            return queries.funnel(conn, t, scope=scope, month_from=month_from, month_to=month_to)
        try:
            return queries.funnel_by(conn, t, by, month_from, month_to, scope=scope)
        except ValueError as exc:
            raise ReportError("by", str(exc)) from None


@contextmanager
def _evaluation_tables(rm: ReadModels, as_of: datetime | None,
                       effective_as_of: datetime | None) -> Iterator[tuple[Any, Tables, Tables]]:
    """The evaluation and team tables: live, or scratch ones built from the events up to a moment."""
    if as_of is not None and effective_as_of is not None:
        raise ReportError("as_of", "give either as-of (recorded time) or effective-as-of (business time), not both")
    cut = as_of or effective_as_of
    if cut is None:
        with rm.engine.connect() as conn:
            yield conn, rm.store.tables("evaluation"), rm.store.tables("team")
        return
    if cut.tzinfo is None:
        raise ReportError("as_of" if as_of is not None else "effective_as_of",
                          "must carry a timezone (e.g. 2009-10-01T00:00:00Z)")
    until = None
    if as_of is not None:
        # What tuohu knew at the cut: the log up to the last event recorded by then (recorded
        # times rise with the position). When nothing was recorded after it, the live tables are it;
        # otherwise the tables' row versions at the checkpoint before it, plus the events since.
        head = rm.runner.recorder.max_notification_id() or 0
        until = _last_recorded_by(rm, cut, head)
        if until >= head and all(rm.store.position(name) == head for name in ("evaluation", "team")):
            with rm.engine.connect() as conn:
                yield conn, rm.store.tables("evaluation"), rm.store.tables("team")
            return
        with rm.runner.as_of(("evaluation", "team"), until) as then:
            if then is not None:
                with rm.engine.connect() as conn:
                    yield conn, then["evaluation"], then["team"]
                return

        keep = None  # the replay of the log up to ``until``: every event
    else:
        def keep(event: Any) -> bool:
            return getattr(event, "occurred_at", event.timestamp) <= cut
    targets = {name: rm.store.new_generation(name) for name in ("evaluation", "team")}
    try:
        rm.runner.fill_many(targets, until=until, keep=keep)
        with rm.engine.connect() as conn:
            yield conn, rm.store.tables("evaluation", targets["evaluation"]), rm.store.tables("team", targets["team"])
    finally:
        for name, generation in targets.items():
            rm.store.drop_generation(name, generation)


def _last_recorded_by(rm: ReadModels, moment: datetime, head: int) -> int:
    """The last position recorded at or before ``moment`` (0 if none), by bisection over recorded times."""
    decode, select = rm.runner.mapper.transcoder.decode, rm.runner.recorder.select_notifications
    lo, hi, found = 1, head, 0
    while lo <= hi:
        mid = (lo + hi) // 2
        page = select(start=mid, limit=1)
        if not page:
            hi = mid - 1
        elif decode(page[0].state)["timestamp"] <= moment:
            found, lo = page[0].id, page[0].id + 1
        else:
            hi = mid - 1
    return found


def evaluation_unit(unit_type: str, unit_id: str | None) -> str:
    """The unit id of the evaluation asked for: ``bank`` for the bank (the only id it takes); a branch, team
    or person must be named. Raises :class:`ReportError` for ``unit_id``."""
    if unit_type == "bank":
        if unit_id not in (None, "", "bank"):
            raise ReportError("unit_id", f"the bank is one unit, with the id bank; got {unit_id!r}")
        return "bank"
    if unit_id is None or not unit_id.strip():
        raise ReportError("unit_id", f"name the {unit_type} to evaluate (unit_type={unit_type} needs its unit_id)")
    return unit_id


def evaluation(rm: ReadModels, period: str, unit_type: str = "bank", unit_id: str | None = None, *,
               as_of: datetime | None = None, effective_as_of: datetime | None = None) -> dict[str, Any]:
    """The evaluation of one period and organisation unit against its targets (measures §5).

    ``unit_id`` names the branch, team or person (see :func:`evaluation_unit`); a unit
    that recorded nothing in the period answers zeros and no targets, whether or not
    anyone knows it. ``as_of`` rebuilds from the events recorded up to that time (what
    tuohu knew then); ``effective_as_of`` from the events that occurred (business
    time) up to it. Both use scratch tables and leave the live ones untouched.
    """
    from projections import evaluation as ev

    unit_id = evaluation_unit(unit_type, unit_id)

    try:
        ev.parse_period(period)
    except ValueError as exc:
        raise ReportError("period", str(exc)) from None
    with _evaluation_tables(rm, as_of, effective_as_of) as (conn, eval_tables, team_tables):
        try:
            report = ev.evaluation(conn, eval_tables, team_tables, period, unit_type, unit_id)
        except ValueError as exc:  # the unit: a type not known, or a bank id other than "bank"
            raise ReportError("unit_type" if str(exc).startswith("unit_type") else "unit_id", str(exc)) from None
    report["as_of"] = as_of
    report["effective_as_of"] = effective_as_of
    return report


def staff_performance(rm: ReadModels, period: str, branch: str | None = None) -> list[dict[str, Any]]:
    """Each person's weighted composite score and rank for the period (measures §3 appraisal);
    with ``branch``, the rows of that branch's people only (ranks stay bank-wide)."""
    from projections import evaluation as ev

    try:
        ev.parse_period(period)
    except ValueError as exc:
        raise ReportError("period", str(exc)) from None
    with rm.engine.connect() as conn:
        rows = ev.staff_performance(conn, rm.store.tables("evaluation"), rm.store.tables("team"), period)
    return rows if branch is None else [row for row in rows if row.get("branch") == branch]


# ---------------------------------------------------------------------- output


def _scalar(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()
    return value


def tabulate(data: Any) -> list[dict[str, Any]]:
    """Flatten a report into rows of scalars (nested dicts become ``a.b`` columns;
    a report with ``items``/``cases``/``indicators`` becomes one row per item)."""
    if isinstance(data, dict):
        for key in ("items", "cases"):
            if isinstance(data.get(key), list):
                return tabulate(data[key])
        if isinstance(data.get("indicators"), dict):
            return [{"indicator": name, **_flat(values)} for name, values in data["indicators"].items()]
        if all(not isinstance(v, (dict, list)) for v in data.values()):
            return [{"name": k, "value": _scalar(v)} for k, v in data.items()]
        return [_flat(data)]
    return [_flat(row) if isinstance(row, dict) else {"value": _scalar(row)} for row in data]


def _flat(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flat(value, f"{name}."))
        elif isinstance(value, list):
            out[name] = "; ".join(str(_scalar(v)) for v in value)
        else:
            out[name] = _scalar(value)
    return out


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    return columns


def to_csv(data: Any) -> str:
    """The report as CSV text (UTF-8, header row, ``,``-separated)."""
    rows = tabulate(data)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(rows), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()


def to_xlsx(data: Any, title: str) -> bytes:
    """The report as an XLSX workbook (one sheet named ``title``), via openpyxl."""
    from openpyxl import Workbook

    rows = tabulate(data)
    columns = _columns(rows)
    book = Workbook()
    sheet = book.active
    sheet.title = title[:31]
    sheet.append(columns)
    for row in rows:
        sheet.append([_xlsx_value(row.get(c)) for c in columns])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _xlsx_value(value: Any) -> Any:
    """A cell value: decimals as numbers; in text, control characters a worksheet cannot hold
    (every C0 control but tab, newline and carriage return) become U+FFFD."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    return value

