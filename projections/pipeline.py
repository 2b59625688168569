"""The pipeline projection: where every customer and every piece of work stands.

Tables (one generation each; see :mod:`projections.framework`):

- ``customers``: one row per customer — kind, acquisition channel, segment,
  manager, branch, stage and since when, key customer, highest open risk level,
  credit standing, screening outcome, one flag per funnel step, and a lowercase
  ``search_text`` (name, account number, id) for text search, indexed by
  trigrams under the row's ``search_key`` (:func:`search_key`; see
  :mod:`projections.textsearch`);
- ``records``: one row per visit, proposal, contract and risk case — customer,
  status and since when (``stage_entered_at``, business time), scheduled time
  (visits), category, level, response and warnings (risk cases);
- ``funnel``: counts per registration month, channel, segment, kind and funnel
  stage (measures §5 quantity indicators), so funnel reports read a few rows:
  ``customers`` who reached the stage, and ``with_previous``, those of them who
  had also reached the stage before it in :data:`FUNNEL_STAGES` (every customer
  is registered). Stages are not always reached in that order (an imported
  customer is called before being qualified), so a stage-to-stage conversion is
  ``with_previous`` of the stage over ``customers`` of the stage before: the
  share of those who reached one stage that also reached the next, never above
  100 %;
- ``record_counts``: per record type, status and risk level (``""`` for none),
  how many records and how many early warnings they raised, so pipeline
  summaries and the risk register count from a few rows.

Indexes follow the report orders: customers by each filter column then
registration time, and by the text index's key; records by type and time in status, by status, by scheduled
time, by kind and status (follow-ups), and by risk level and creation time.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Callable, Sequence
from uuid import UUID

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Index, Integer, String, Text

from domain.contract import Contract
from domain.customer import Customer
from domain.proposal import Proposal
from domain.risk import RiskCase
from domain.visit import Visit
from projections.framework import Batch, Projection, TableSpec, uuid_text
from projections.textsearch import TextSearch

FUNNEL_STAGES = ("registered", "screened", "qualified", "visited", "proposed", "contracted", "account_opened")
LEVEL_RANK = {"low": 1, "medium": 2, "high": 3}

def month_key(moment: datetime) -> str:
    """``YYYY-MM`` of ``moment`` (zero-padded for every year, unlike ``strftime("%Y")``)."""
    return f"{moment.year:04d}-{moment.month:02d}"


#: Record kinds whose ``detail`` is free text about a person (a risk case's description): hidden when
#: the customer's processing is restricted or their data erased.
_PERSONAL_DETAIL = frozenset({"risk_case"})
RECORD_TYPES = ("visit", "proposal", "contract", "risk_case")


def _customer_columns() -> list[Column[Any]]:
    return [
        Column("customer_id", String(), primary_key=True),
        Column("kind", String(), nullable=False),
        Column("channel", String(), nullable=False),
        Column("segment", String(), nullable=False),
        Column("manager_id", String(), nullable=False),
        Column("branch", String(), nullable=False),
        Column("stage", String(), nullable=False),
        Column("stage_entered_at", DateTime(timezone=True), nullable=False),
        Column("is_key", Boolean, nullable=False),
        Column("risk_level", String()),
        Column("open_risk", Text, nullable=False),
        Column("credit_result", String()),
        Column("credit_rating", String()),
        Column("screening_outcome", String()),
        Column("screening_score", Integer),
        Column("registered_at", DateTime(timezone=True), nullable=False, index=True),
        Column("registered_month", String(), nullable=False, index=True),
        Column("screened", Boolean, nullable=False),
        Column("qualified", Boolean, nullable=False),
        Column("visited", Boolean, nullable=False),
        Column("proposed", Boolean, nullable=False),
        Column("contracted", Boolean, nullable=False),
        Column("account_opened", Boolean, nullable=False),
        Column("account_number", String()),
        Column("display_name", String()),
        Column("privacy", String()),  # None, "restricted" or "erased" (PIPL Art. 44/47, GDPR Art. 17/18)
        Column("search_text", Text, nullable=False),
        Column("search_key", BigInteger, nullable=False),
        Column("version", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        *(Index(None, name, "registered_at") for name in CUSTOMER_INDEXED),
        Index(None, "search_key", unique=True),
    ]


SEARCH_KEY_POSITION_BITS = 41
"""Low bits of :func:`search_key` holding the registration's position (up to 2**41 - 1)."""


def search_key(registered_at: datetime, position: int) -> int:
    """A customer's key in the text index: the UTC day of registration (``date.toordinal()``) above
    :data:`SEARCH_KEY_POSITION_BITS` bits holding the position of the ``Registered`` event. Keys are
    unique (one registration per position), fit a signed 64-bit integer for every date to 9999-12-31,
    and sort by registration day, so the newest customers matching a search come first in the index.

    Raises ``ValueError`` for a position that does not fit the low bits."""
    if not 0 <= position < 1 << SEARCH_KEY_POSITION_BITS:
        raise ValueError(f"position {position} does not fit the text index key")
    return registered_at.date().toordinal() << SEARCH_KEY_POSITION_BITS | position


def search_key_day(key: int) -> int:
    """The registration day (``date.toordinal()``) a :func:`search_key` holds."""
    return key >> SEARCH_KEY_POSITION_BITS


#: Customer filter columns indexed together with ``registered_at`` (the customers report's order).
CUSTOMER_INDEXED = ("kind", "channel", "segment", "manager_id", "branch", "stage", "risk_level", "is_key")


def _record_columns() -> list[Column[Any]]:
    return [
        Column("aggregate_id", String(), primary_key=True),
        Column("aggregate_type", String(), nullable=False),
        Column("customer_id", String(), nullable=False, index=True),
        Column("status", String(), nullable=False),
        Column("stage_entered_at", DateTime(timezone=True), nullable=False),
        Column("created_by", String(), nullable=False, index=True),
        Column("created_at", DateTime(timezone=True), nullable=False, index=True),
        Column("scheduled_at", DateTime(timezone=True)),
        Column("kind", String()),
        Column("level", String()),
        Column("response", String()),
        Column("warnings", Integer, nullable=False),
        Column("detail", Text, nullable=False),
        Column("version", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Index(None, "aggregate_type", "stage_entered_at", "aggregate_id"),
        Index(None, "aggregate_type", "status", "stage_entered_at", "aggregate_id"),
        Index(None, "aggregate_type", "scheduled_at", "status"),
        Index(None, "aggregate_type", "kind", "status", "scheduled_at"),
        Index(None, "aggregate_type", "level", "created_at", "aggregate_id"),
    ]


def _record_count_columns() -> list[Column[Any]]:
    return [
        Column("aggregate_type", String(), primary_key=True),
        Column("status", String(), primary_key=True),
        Column("level", String(), primary_key=True),
        Column("records", Integer, nullable=False),
        Column("warnings", Integer, nullable=False),
    ]


#: Funnel stage -> (the stage before it, the stage after it), None at either end.
_NEIGHBOURS: dict[str, tuple[str | None, str | None]] = {
    stage: (FUNNEL_STAGES[i - 1] if i else None, FUNNEL_STAGES[i + 1] if i + 1 < len(FUNNEL_STAGES) else None)
    for i, stage in enumerate(FUNNEL_STAGES)}


def _funnel_columns() -> list[Column[Any]]:
    return [
        Column("month", String(), primary_key=True),
        Column("channel", String(), primary_key=True),
        Column("segment", String(), primary_key=True),
        Column("kind", String(), primary_key=True),
        Column("stage", String(), primary_key=True),
        Column("customers", Integer, nullable=False),
        Column("with_previous", Integer, nullable=False, default=0),
    ]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


_PERSONAL_READ: dict[type, tuple[str, ...]] = {Customer.Registered: ("display_name",),
                                                RiskCase.Identified: ("description",)}
"""Event class -> the personal fields the pipeline's handlers read (:meth:`PipelineProjection.personal_fields_read`)."""


def _search_text(row: dict[str, Any]) -> str:
    parts = [row.get("display_name") or "", row.get("account_number") or "", row["customer_id"]]
    return " ".join(p for p in parts if p).lower()


class PipelineProjection(Projection):
    """Customers by stage, work items by status, and the funnel rollup."""

    name = "pipeline"
    specs = (
        TableSpec("customers", _customer_columns, search=TextSearch("search_text", "search_key")),
        TableSpec("records", _record_columns),
        TableSpec("funnel", _funnel_columns),
        TableSpec("record_counts", _record_count_columns),
    )

    def personal_fields_read(self, event_class: type) -> tuple[str, ...]:
        """The customer's name (``Registered``, kept and searched) and a risk case's description (its record's
        detail); no other personal field."""
        return _PERSONAL_READ.get(event_class, ())

    def prefetch(self, batch: Batch, events: Sequence[Any]) -> None:
        ids = set()
        for event in events:
            ids.add(str(event.originator_id))
            customer_id = getattr(event, "customer_id", None)
            if customer_id is not None:
                ids.add(str(customer_id))
        batch.preload("customers", ids)
        batch.preload("records", ids)
        months = {month_key(_utc(e.occurred_at)) for e in events if isinstance(e, Customer.Registered)}
        for ident in ids:
            row = batch.get("customers", ident)
            if row is not None:
                months.add(row["registered_month"])
        batch.preload_where("funnel", "month", months)
        batch.preload_where("record_counts", "aggregate_type", RECORD_TYPES)

    # ------------------------------------------------------------------ helpers

    def _customer(self, batch: Batch, customer_id: UUID | str) -> dict[str, Any]:
        row = batch.get("customers", uuid_text(customer_id))
        if row is None:
            raise LookupError(f"customer {customer_id} has no row: its Registered event was not projected")
        return row

    def _flag(self, batch: Batch, row: dict[str, Any], flag: str) -> None:
        """Mark ``row`` as having reached stage ``flag`` (once), counted in the funnel with the pairs of
        consecutive stages it completes: this one after the one before it, and the one after it if
        already reached."""
        if not row[flag]:
            row[flag] = True
            group = (row["registered_month"], row["channel"], row["segment"], row["kind"])
            batch.increment("funnel", (*group, flag), "customers", 1)
            previous, following = _NEIGHBOURS[flag]
            if previous is not None and (previous == "registered" or row[previous]):
                batch.increment("funnel", (*group, flag), "with_previous", 1)
            if following is not None and row[following]:
                batch.increment("funnel", (*group, following), "with_previous", 1)

    def _touch(self, batch: Batch, row: dict[str, Any], event: Any, stage: str | None = None) -> None:
        if type(event).TOPIC.startswith("tuohu:Customer."):
            row["version"] = event.originator_version
        row["updated_at"] = _utc(event.timestamp)
        if stage is not None and stage != row["stage"]:
            row["stage"] = stage
            row["stage_entered_at"] = _utc(event.occurred_at)
        batch.put("customers", row)

    @staticmethod
    def _bucket(row: dict[str, Any]) -> tuple[str, str, str, int]:
        """``(aggregate_type, status, level or "", warnings)`` of a record row."""
        return row["aggregate_type"], row["status"], row["level"] or "", row["warnings"]

    @staticmethod
    def _count(batch: Batch, bucket: tuple[str, str, str, int], sign: int) -> None:
        """Add (``sign`` = 1) or take away (-1) one record and its warnings in ``record_counts``."""
        key, warnings = bucket[:3], bucket[3]
        batch.increment("record_counts", key, "records", sign)
        if warnings:
            batch.increment("record_counts", key, "warnings", sign * warnings)

    def _record(self, batch: Batch, aggregate_id: UUID) -> dict[str, Any]:
        row = batch.get("records", uuid_text(aggregate_id))
        if row is None:
            raise LookupError(f"{aggregate_id} has no record row: its first event was not projected")
        return row

    # ------------------------------------------------------------------ customer events

    def _registered(self, batch: Batch, e: Customer.Registered) -> None:
        when = _utc(e.occurred_at)
        row = {
            "customer_id": uuid_text(e.originator_id), "kind": e.kind, "channel": e.acquisition_channel,
            "segment": e.segment, "manager_id": e.manager_id, "branch": e.branch, "stage": "registered",
            "stage_entered_at": when, "is_key": False, "risk_level": None, "open_risk": "{}",
            "credit_result": None, "credit_rating": None, "screening_outcome": None, "screening_score": None,
            "registered_at": when, "registered_month": month_key(when), "screened": False,
            "qualified": False, "visited": False, "proposed": False, "contracted": False, "account_opened": False,
            "account_number": None, "display_name": e.display_name, "privacy": None, "search_text": "",
            "search_key": search_key(when, batch.position),
            "version": e.originator_version, "updated_at": _utc(e.timestamp),
        }
        row["search_text"] = _search_text(row)
        batch.put("customers", row)
        batch.increment("funnel", (row["registered_month"], row["channel"], row["segment"], row["kind"], "registered"),
                        "customers", 1)

    def _customer_event(self, **changes: Any) -> Callable[[Batch, Any], None]:
        def handle(batch: Batch, e: Any) -> None:
            row = self._customer(batch, e.originator_id)
            stage = None
            for column, value in changes.items():
                value = value(e) if callable(value) else value
                if column == "stage":
                    stage = value
                elif column in FUNNEL_STAGES:
                    if value:
                        self._flag(batch, row, column)
                else:
                    row[column] = value
            if "account_number" in changes:
                row["search_text"] = _search_text(row)
            self._touch(batch, row, e, stage)
        return handle

    def _screened(self, batch: Batch, e: Customer.Screened) -> None:
        row = self._customer(batch, e.originator_id)
        row["screening_outcome"], row["screening_score"] = e.outcome, e.score
        self._flag(batch, row, "screened")
        self._touch(batch, row, e, "screened" if row["stage"] in ("registered", "screened") else None)

    def _risk_link(self, batch: Batch, e: Any) -> None:
        row = self._customer(batch, e.originator_id)
        open_risk = json.loads(row["open_risk"])
        if isinstance(e, Customer.RiskCaseLinked):
            open_risk.setdefault(str(e.risk_case_id), None)
        else:
            open_risk.pop(str(e.risk_case_id), None)
        self._set_open_risk(row, open_risk)
        self._touch(batch, row, e)

    def _personal_data_hidden(self, batch: Batch, e: Any) -> None:
        """Restricted or erased (PIPL Art. 44/47, GDPR Art. 17/18): the name and risk-case texts leave the views."""
        row = self._customer(batch, e.originator_id)
        row["display_name"] = None
        row["privacy"] = "erased" if isinstance(e, Customer.PersonalDataErased) else "restricted"
        row["search_text"] = _search_text(row)
        batch.purge_text("customers")  # the name's trigrams leave the index's storage, not just its answers
        self._touch(batch, row, e)
        mark = f"[{row['privacy']}]"
        batch.update_where("records", "customer_id", row["customer_id"],
                           lambda r: r.update(detail=mark) if r["aggregate_type"] in _PERSONAL_DETAIL else None)

    @staticmethod
    def _set_open_risk(row: dict[str, Any], open_risk: dict[str, str | None]) -> None:
        row["open_risk"] = json.dumps(open_risk, sort_keys=True)
        levels = [lvl for lvl in open_risk.values() if lvl]
        row["risk_level"] = max(levels, key=LEVEL_RANK.__getitem__) if levels else None

    # ------------------------------------------------------------------ records

    def _created(self, kind: str, status: str, detail: Callable[[Any], str], flag: str | None = None,
                 extra: Callable[[Any], dict[str, Any]] | None = None) -> Callable[[Batch, Any], None]:
        def handle(batch: Batch, e: Any) -> None:
            when = _utc(e.occurred_at)
            row = {
                "aggregate_id": uuid_text(e.originator_id), "aggregate_type": kind, "customer_id": uuid_text(e.customer_id),
                "status": status, "stage_entered_at": when, "created_by": e.actor_id, "created_at": when,
                "scheduled_at": None, "kind": None, "level": None, "response": None, "warnings": 0,
                "detail": detail(e), "version": e.originator_version, "updated_at": _utc(e.timestamp),
            }
            row.update(extra(e) if extra else {})
            if kind in _PERSONAL_DETAIL:
                # a record opened after the customer's restriction or erasure hides its text from the start
                customer = batch.get("customers", row["customer_id"])
                if customer is not None and customer.get("privacy"):
                    row["detail"] = f"[{customer['privacy']}]"
            batch.put("records", row)
            self._count(batch, self._bucket(row), 1)
            if flag:
                customer = self._customer(batch, e.customer_id)
                self._flag(batch, customer, flag)
                self._touch(batch, customer, e)
        return handle

    def _updated(self, status: str | None, flag: str | None = None,
                 extra: Callable[[Any, dict[str, Any]], dict[str, Any]] | None = None) -> Callable[[Batch, Any], None]:
        def handle(batch: Batch, e: Any) -> None:
            row = self._record(batch, e.originator_id)
            before = self._bucket(row)
            if status is not None and status != row["status"]:
                row["status"] = status
                row["stage_entered_at"] = _utc(e.occurred_at)
            if extra:
                row.update(extra(e, row))
            row["version"] = e.originator_version
            row["updated_at"] = _utc(e.timestamp)
            batch.put("records", row)
            after = self._bucket(row)
            if after != before:
                self._count(batch, before, -1)
                self._count(batch, after, 1)
            if flag:
                customer = self._customer(batch, row["customer_id"])
                self._flag(batch, customer, flag)
                self._touch(batch, customer, e)
        return handle

    def _risk_level_changed(self, batch: Batch, e: RiskCase.Assessed) -> None:
        self._updated("assessed", extra=lambda ev, row: {"level": ev.level})(batch, e)
        self._update_customer_risk(batch, e.originator_id, e.level, e)

    def _risk_closed(self, batch: Batch, e: RiskCase.Closed) -> None:
        self._updated("closed")(batch, e)

    def _update_customer_risk(self, batch: Batch, case_id: UUID, level: str | None, e: Any) -> None:
        record = self._record(batch, case_id)
        customer = self._customer(batch, record["customer_id"])
        open_risk = json.loads(customer["open_risk"])
        if str(case_id) in open_risk:
            open_risk[str(case_id)] = level
            self._set_open_risk(customer, open_risk)
            self._touch(batch, customer, e)

    def handlers(self) -> dict[type, Callable[[Batch, Any], None]]:
        ce = self._customer_event
        return {
            Customer.Registered: self._registered,
            Customer.FactsRecorded: ce(),
            Customer.CreditStandingRecorded: ce(credit_result=lambda e: e.result, credit_rating=lambda e: e.rating),
            Customer.Screened: self._screened,
            Customer.Reviewed: ce(stage=lambda e: "qualified" if e.decision == "qualified" else "rejected",
                                  qualified=lambda e: e.decision == "qualified"),
            Customer.AccountOpeningApplied: ce(stage="account_opening_applied"),
            Customer.DocumentsReviewed: ce(stage=lambda e: "documents_accepted" if e.accepted else "documents_returned"),
            Customer.AccountOpened: ce(stage="account_opened", account_opened=True,
                                       account_number=lambda e: e.account_number),
            Customer.ProductsSigned: ce(),
            Customer.ManagerReassigned: ce(manager_id=lambda e: e.manager_id),
            Customer.MarkedKeyCustomer: ce(is_key=True),
            Customer.FollowUpRecorded: ce(),
            Customer.BusinessFiguresReported: ce(),
            Customer.RiskCaseLinked: self._risk_link,
            Customer.RiskCaseUnlinked: self._risk_link,
            Customer.ProcessingRestricted: self._personal_data_hidden,
            Customer.PersonalDataErased: self._personal_data_hidden,
            Visit.Planned: self._created("visit", "planned", lambda e: e.purpose, extra=lambda e: {
                "scheduled_at": _utc(e.scheduled_at), "kind": e.kind}),
            Visit.Prepared: self._updated("prepared"),
            Visit.Conducted: self._updated("conducted", flag="visited"),
            Visit.FeedbackRouted: self._updated(None),
            Visit.Rescheduled: self._updated(None, extra=lambda e, row: {"scheduled_at": _utc(e.scheduled_at)}),
            Visit.Cancelled: self._updated("cancelled"),
            Proposal.Drafted: self._created("proposal", "draft", lambda e: ", ".join(e.products), flag="proposed"),
            Proposal.Revised: self._updated("draft"),
            Proposal.Submitted: self._updated("submitted"),
            Proposal.Approved: self._updated("approved"),
            Proposal.Returned: self._updated("returned"),
            Proposal.Presented: self._updated("presented"),
            Proposal.AcceptedByCustomer: self._updated("accepted"),
            Proposal.DeclinedByCustomer: self._updated("declined"),
            Proposal.Withdrawn: self._updated("withdrawn"),
            Contract.Drafted: self._created("contract", "drafted", lambda e: ", ".join(e.products)),
            Contract.ClausesReviewed: self._updated("under_review"),
            Contract.FindingResolved: self._updated(None),
            Contract.Approved: self._updated("approved"),
            Contract.Signed: self._updated("signed", flag="contracted"),
            Contract.Terminated: self._updated("terminated"),
            RiskCase.Identified: self._created("risk_case", "identified", lambda e: e.description,
                                               extra=lambda e: {"kind": e.category}),
            RiskCase.Assessed: self._risk_level_changed,
            RiskCase.ResponseDecided: self._updated("responding", extra=lambda e, row: {"response": e.response}),
            RiskCase.ReadingRecorded: self._updated(None),
            RiskCase.WarningRaised: self._updated(None, extra=lambda e, row: {"warnings": row["warnings"] + 1}),
            RiskCase.Disposed: self._updated("disposed"),
            RiskCase.Closed: self._risk_closed,
        }
