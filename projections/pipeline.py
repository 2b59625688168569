"""The pipeline read model: one row per customer, and one row per other aggregate.

Tables (SQLAlchemy Core, in the read-model database):

- ``rm_customers``: one row per customer with its stage, acquisition channel,
  manager, kind, and one flag per funnel step (measures §5 quantity indicators);
- ``rm_records``: one row per visit, proposal, contract and risk case, with
  its customer, status and version, for listings;
- ``rm_tracking``: per projection, the last notification id applied, and the
  error that stopped it, if any.

The projector reads the application's notification log from its tracked
position and writes its rows and the new position in one transaction, and the
position update is conditional on the old position, so two runners (threads or
processes) never apply the same event twice.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any, Callable, Iterable
from uuid import UUID

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from domain.contract import Contract
from domain.customer import Customer
from domain.proposal import Proposal
from domain.risk import RiskCase
from domain.visit import Visit

metadata = MetaData()

customers = Table(
    "rm_customers",
    metadata,
    Column("customer_id", String(36), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("segment", String(64), nullable=False),
    Column("manager_id", String(128), nullable=False, index=True),
    Column("branch", String(64), nullable=False, index=True),
    Column("stage", String(32), nullable=False, index=True),
    Column("is_key", Boolean, nullable=False),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("screened", Boolean, nullable=False),
    Column("screening_outcome", String(16)),
    Column("qualified", Boolean, nullable=False),
    Column("visited", Boolean, nullable=False),
    Column("proposed", Boolean, nullable=False),
    Column("contracted", Boolean, nullable=False),
    Column("account_opened", Boolean, nullable=False),
    Column("account_number", String(64)),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

records = Table(
    "rm_records",
    metadata,
    Column("aggregate_id", String(36), primary_key=True),
    Column("aggregate_type", String(16), nullable=False, index=True),
    Column("customer_id", String(36), nullable=False, index=True),
    Column("status", String(32), nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("version", Integer, nullable=False),
    Column("detail", Text, nullable=False, default=""),
)

tracking = Table(
    "rm_tracking",
    metadata,
    Column("projection", String(64), primary_key=True),
    Column("position", Integer, nullable=False),
    Column("error_position", Integer),
    Column("error", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

FUNNEL_STAGES = ("registered", "screened", "qualified", "visited", "proposed", "contracted", "account_opened")

NAME = "pipeline"


class ProjectionFailed(RuntimeError):
    """A projection could not apply the event at ``position``; it stopped there."""

    def __init__(self, projection: str, position: int, error: str) -> None:
        super().__init__(f"projection {projection} stopped at position {position}: {error}")
        self.projection, self.position, self.error = projection, position, error


class _Batch:
    """Rows touched by one batch of events, loaded lazily, written once."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.customers: dict[str, dict[str, Any] | None] = {}
        self.records: dict[str, dict[str, Any] | None] = {}

    def _get(self, cache: dict[str, dict[str, Any] | None], table: Table, key: str, ident: str) -> dict[str, Any] | None:
        if ident not in cache:
            row = self.conn.execute(select(table).where(table.c[key] == ident)).mappings().first()
            cache[ident] = dict(row) if row else None
        return cache[ident]

    def customer(self, ident: UUID) -> dict[str, Any] | None:
        return self._get(self.customers, customers, "customer_id", str(ident))

    def record(self, ident: UUID) -> dict[str, Any] | None:
        return self._get(self.records, records, "aggregate_id", str(ident))

    def prefetch(self, ids: Iterable[str]) -> None:
        """Load every existing row for ``ids`` in a few queries."""
        wanted = [i for i in set(ids) if i not in self.customers]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for table, key, cache in ((customers, "customer_id", self.customers), (records, "aggregate_id", self.records)):
                found = {r[key]: dict(r) for r in self.conn.execute(select(table).where(table.c[key].in_(chunk))).mappings()}
                for ident in chunk:
                    cache.setdefault(ident, found.get(ident))

    def flush(self) -> None:
        for table, key, cache in ((customers, "customer_id", self.customers), (records, "aggregate_id", self.records)):
            rows = [r for r in cache.values() if r is not None and r.get("_dirty")]
            if not rows:
                continue
            ids = [r[key] for r in rows]
            for start in range(0, len(ids), 500):
                self.conn.execute(delete(table).where(table.c[key].in_(ids[start:start + 500])))
            clean = [{k: v for k, v in r.items() if k != "_dirty"} for r in rows]
            for start in range(0, len(clean), 2000):
                self.conn.execute(insert(table), clean[start:start + 2000])


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def apply_event(batch: _Batch, event: Any) -> None:
    """Apply one domain event to the rows (pure mapping; no aggregate is loaded)."""
    handler = _HANDLERS.get(type(event))
    if handler is not None:
        handler(batch, event)


def _touch_customer(batch: _Batch, customer_id: UUID, **changes: Any) -> None:
    row = batch.customer(customer_id)
    if row is None:
        raise LookupError(f"customer {customer_id} has no row; its Registered event was not projected")
    row.update(changes)
    row["_dirty"] = True


def _customer_event(**changes: Any) -> Callable[[_Batch, Any], None]:
    def handle(batch: _Batch, e: Any) -> None:
        values = {k: (v(e) if callable(v) else v) for k, v in changes.items()}
        _touch_customer(batch, e.originator_id, version=e.originator_version, updated_at=_utc(e.timestamp), **values)
    return handle


def _registered(batch: _Batch, e: Customer.Registered) -> None:
    ident = str(e.originator_id)
    batch.customers[ident] = {
        "customer_id": ident, "kind": e.kind, "channel": e.acquisition_channel, "segment": e.segment,
        "manager_id": e.manager_id, "branch": e.branch, "stage": "registered", "is_key": False,
        "registered_at": _utc(e.occurred_at), "screened": False, "screening_outcome": None, "qualified": False,
        "visited": False, "proposed": False, "contracted": False, "account_opened": False, "account_number": None,
        "version": e.originator_version, "updated_at": _utc(e.timestamp), "_dirty": True,
    }


def _screened(batch: _Batch, e: Customer.Screened) -> None:
    row = batch.customer(e.originator_id)
    stage = "screened" if row is not None and row["stage"] in ("registered", "screened") else None
    changes: dict[str, Any] = {"screened": True, "screening_outcome": e.outcome}
    if stage:
        changes["stage"] = stage
    _touch_customer(batch, e.originator_id, version=e.originator_version, updated_at=_utc(e.timestamp), **changes)


def _record_created(kind: str, status: str, detail: Callable[[Any], str], funnel_flag: str | None = None) -> Callable[[_Batch, Any], None]:
    def handle(batch: _Batch, e: Any) -> None:
        ident = str(e.originator_id)
        batch.records[ident] = {
            "aggregate_id": ident, "aggregate_type": kind, "customer_id": str(e.customer_id), "status": status,
            "created_by": e.actor_id, "created_at": _utc(e.occurred_at), "updated_at": _utc(e.timestamp),
            "version": e.originator_version, "detail": detail(e), "_dirty": True,
        }
        if funnel_flag:
            _touch_customer(batch, e.customer_id, **{funnel_flag: True})
    return handle


def _record_event(status: str | None, funnel_flag: str | None = None) -> Callable[[_Batch, Any], None]:
    def handle(batch: _Batch, e: Any) -> None:
        row = batch.record(e.originator_id)
        if row is None:
            raise LookupError(f"{e.originator_id} has no record row; its first event was not projected")
        if status:
            row["status"] = status
        row["version"] = e.originator_version
        row["updated_at"] = _utc(e.timestamp)
        row["_dirty"] = True
        if funnel_flag:
            _touch_customer(batch, UUID(row["customer_id"]), **{funnel_flag: True})
    return handle


_HANDLERS: dict[type, Callable[[_Batch, Any], None]] = {
    Customer.Registered: _registered,
    Customer.FactsRecorded: _customer_event(),
    Customer.CreditStandingRecorded: _customer_event(),
    Customer.Screened: _screened,
    Customer.Reviewed: _customer_event(stage=lambda e: "qualified" if e.decision == "qualified" else "rejected",
                                       qualified=lambda e: e.decision == "qualified"),
    Customer.AccountOpeningApplied: _customer_event(stage="account_opening_applied"),
    Customer.DocumentsReviewed: _customer_event(stage=lambda e: "documents_accepted" if e.accepted else "documents_returned"),
    Customer.AccountOpened: _customer_event(stage="account_opened", account_opened=True,
                                            account_number=lambda e: e.account_number),
    Customer.ProductsSigned: _customer_event(),
    Customer.ManagerReassigned: _customer_event(manager_id=lambda e: e.manager_id),
    Customer.MarkedKeyCustomer: _customer_event(is_key=True),
    Customer.FollowUpRecorded: _customer_event(),
    Customer.BusinessFiguresReported: _customer_event(),
    Customer.RiskCaseLinked: _customer_event(),
    Customer.RiskCaseUnlinked: _customer_event(),
    Visit.Planned: _record_created("visit", "planned", lambda e: f"{e.method} {e.kind}: {e.purpose}"),
    Visit.Prepared: _record_event("prepared"),
    Visit.Conducted: _record_event("conducted", funnel_flag="visited"),
    Visit.FeedbackRouted: _record_event(None),
    Visit.Rescheduled: _record_event(None),
    Visit.Cancelled: _record_event("cancelled"),
    Proposal.Drafted: _record_created("proposal", "draft", lambda e: ", ".join(e.products), funnel_flag="proposed"),
    Proposal.Revised: _record_event("draft"),
    Proposal.Submitted: _record_event("submitted"),
    Proposal.Approved: _record_event("approved"),
    Proposal.Returned: _record_event("returned"),
    Proposal.Presented: _record_event("presented"),
    Proposal.AcceptedByCustomer: _record_event("accepted"),
    Proposal.DeclinedByCustomer: _record_event("declined"),
    Proposal.Withdrawn: _record_event("withdrawn"),
    Contract.Drafted: _record_created("contract", "drafted", lambda e: ", ".join(e.products)),
    Contract.ClausesReviewed: _record_event("under_review"),
    Contract.FindingResolved: _record_event(None),
    Contract.Approved: _record_event("approved"),
    Contract.Signed: _record_event("signed", funnel_flag="contracted"),
    Contract.Terminated: _record_event("terminated"),
    RiskCase.Identified: _record_created("risk_case", "identified", lambda e: f"{e.category}: {e.description}"),
    RiskCase.Assessed: _record_event("assessed"),
    RiskCase.ResponseDecided: _record_event("responding"),
    RiskCase.ReadingRecorded: _record_event(None),
    RiskCase.WarningRaised: _record_event(None),
    RiskCase.Disposed: _record_event("disposed"),
    RiskCase.Closed: _record_event("closed"),
}


def _customer_ids(event: Any) -> list[str]:
    ids = [str(event.originator_id)]
    customer_id = getattr(event, "customer_id", None)
    if customer_id is not None:
        ids.append(str(customer_id))
    return ids


class PipelineProjection:
    """Keeps the pipeline tables up to date with the application's event log.

    ``recorder`` is the application's recorder and ``mapper`` its mapper (to
    decode stored events); ``engine`` is the read-model database.
    """

    def __init__(self, recorder: Any, mapper: Any, engine: Engine, batch_size: int = 5000) -> None:
        self.recorder = recorder
        self.mapper = mapper
        self.engine = engine
        self.batch_size = batch_size
        self._lock = threading.Lock()
        metadata.create_all(engine)
        with engine.begin() as conn:
            exists = conn.execute(select(tracking.c.position).where(tracking.c.projection == NAME)).first()
            if exists is None:
                conn.execute(insert(tracking).values(projection=NAME, position=0, updated_at=datetime.now(timezone.utc)))

    def position(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(tracking.c.position).where(tracking.c.projection == NAME)).scalar_one())

    def catch_up(self, until: int | None = None) -> int:
        """Apply every new event (up to ``until``, when given); returns the new position.

        Raises :class:`ProjectionFailed` naming the first event it could not apply.
        """
        with self._lock:
            while True:
                position = self.position()
                if until is not None and position >= until:
                    return position
                notifications = self.recorder.select_notifications(start=position + 1, limit=self.batch_size)
                if not notifications:
                    return position
                self._apply_batch(position, notifications)

    def _apply_batch(self, position: int, notifications: list[Any]) -> None:
        events = [(n.id, self.mapper.to_domain_event(n)) for n in notifications]
        failure: tuple[int, str] | None = None
        new_position = position
        with self.engine.begin() as conn:
            batch = _Batch(conn)
            batch.prefetch(i for _, e in events for i in _customer_ids(e))
            for notification_id, event in events:
                try:
                    apply_event(batch, event)
                except Exception as exc:  # noqa: BLE001 - recorded and re-raised below, never skipped
                    failure = (notification_id, f"{type(exc).__name__}: {exc}")
                    break
                new_position = notification_id
            batch.flush()
            moved = conn.execute(
                update(tracking)
                .where(and_(tracking.c.projection == NAME, tracking.c.position == position))
                .values(position=new_position, updated_at=datetime.now(timezone.utc),
                        error_position=failure[0] if failure else None, error=failure[1] if failure else None)
            ).rowcount
            if moved != 1:
                conn.rollback()
                return
        if failure:
            raise ProjectionFailed(NAME, *failure)

    # ------------------------------------------------------------------ queries

    def funnel(self) -> dict[str, int]:
        """Customers that reached each stage: ``{stage: count}`` in funnel order."""
        c = customers.c
        cols = [func.count().label("registered")] + [
            func.coalesce(func.sum(c[flag].cast(Integer)), 0).label(flag) for flag in FUNNEL_STAGES[1:]
        ]
        with self.engine.connect() as conn:
            row = conn.execute(select(*cols)).mappings().one()
        return {stage: int(row[stage]) for stage in FUNNEL_STAGES}

    def customers(self, *, stage: str | None = None, manager_id: str | None = None, channel: str | None = None,
                  kind: str | None = None, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Pipeline rows, newest registration first, filtered by the given fields."""
        query = select(customers)
        for column, value in (("stage", stage), ("manager_id", manager_id), ("channel", channel), ("kind", kind)):
            if value is not None:
                query = query.where(customers.c[column] == value)
        query = query.order_by(customers.c.registered_at.desc(), customers.c.customer_id).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def records(self, aggregate_type: str, *, customer_id: str | None = None, status: str | None = None,
                limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Visits, proposals, contracts or risk cases, newest first."""
        query = select(records).where(records.c.aggregate_type == aggregate_type)
        if customer_id is not None:
            query = query.where(records.c.customer_id == customer_id)
        if status is not None:
            query = query.where(records.c.status == status)
        query = query.order_by(records.c.created_at.desc(), records.c.aggregate_id).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def status(self) -> dict[str, Any]:
        """Head position of the log, this projection's position and lag, and any error."""
        head = self.recorder.max_notification_id() or 0
        with self.engine.connect() as conn:
            row = conn.execute(select(tracking).where(tracking.c.projection == NAME)).mappings().one()
        return {"projection": NAME, "head": head, "position": row["position"], "lag": head - row["position"],
                "error_position": row["error_position"], "error": row["error"]}
