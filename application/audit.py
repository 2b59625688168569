"""Answers for compliance auditors, read straight from the event history.

- :func:`history`: every event of an aggregate with its position, version,
  business and recorded times, actor and role, reason, channel, correlation and
  causation ids, its own fields, and the field-level changes it made
  (``before -> after``), found by replaying the aggregate event by event;
- :func:`state_as_of`: the aggregate exactly as it stood at a recorded time,
  after a version, or right after the latest event of a kind;
- :func:`explain`: each screening re-scored from its recorded inputs with the
  recorded model version (measures §2.2 step 2).

Events are read through the application's mapper, so personal fields read in
clear while the customer's key exists and as ``[erased]`` after erasure.
Times are UTC; values are rendered as JSON (UUIDs and datetimes as strings,
``Decimal`` as a string of its digits).
"""

from __future__ import annotations

import copy
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain import screening
from domain.base import InvalidValue
from domain.contract import Contract
from domain.customer import Customer
from domain.proposal import Proposal
from domain.risk import RiskCase
from domain.team import AppraisalScheme, Staff, Target
from domain.visit import Visit

if TYPE_CHECKING:
    from application.app import TuohuApplication

#: Names used in URLs and on the command line -> aggregate classes.
AGGREGATE_TYPES: dict[str, type] = {
    "customer": Customer, "visit": Visit, "proposal": Proposal, "contract": Contract, "risk_case": RiskCase,
    "staff": Staff, "appraisal_scheme": AppraisalScheme, "target": Target,
}
EVIDENCE = ("actor_id", "actor_role", "occurred_at", "reason", "channel", "correlation_id", "causation_id",
            "command_id")
_LIBRARY = ("originator_id", "originator_version", "timestamp", "originator_topic")
_ABSENT = object()


class AuditNotFound(LookupError):
    """No aggregate of the asked type has this id, or it did not exist yet at the asked moment."""


def plain(value: Any) -> Any:
    """``value`` as JSON: UUID and datetime (ISO 8601, UTC) as strings, Decimal as its digits."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).astimezone(timezone.utc).isoformat()
    if isinstance(value, (date, UUID)):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _state(aggregate: Any) -> dict[str, Any]:
    return {} if aggregate is None else {k: copy.deepcopy(v) for k, v in vars(aggregate).items()
                                         if not k.startswith("_")}


def _flatten(value: Any, path: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value and value != {"_erased": True}:
        for key, item in value.items():
            _flatten(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, dict) and value == {"_erased": True}:
        out[path] = "[erased]"
    elif not (isinstance(value, dict) and not value):
        out[path] = value


def _paths(value: Any, path: str, out: set[str]) -> None:
    """Every field path in ``value`` (a state or an event's fields) and every path above one, into ``out``:
    ``{"facts", "facts.basic", "facts.basic.age"}``; empty and ``None`` fields are fields too."""
    if path:
        out.add(path)
    if isinstance(value, dict) and value != {"_erased": True}:
        for key, item in value.items():
            _paths(item, f"{path}.{key}" if path else str(key), out)


def diff(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """Field-level changes between two states: ``[{"field": "facts.basic.age", "before": 41, "after": 42}]``."""
    flat_before: dict[str, Any] = {}
    flat_after: dict[str, Any] = {}
    _flatten(before, "", flat_before)
    _flatten(after, "", flat_after)
    changes = []
    for key in sorted(set(flat_before) | set(flat_after)):
        old, new = flat_before.get(key, _ABSENT), flat_after.get(key, _ABSENT)
        if old in (_ABSENT, None) and new in (_ABSENT, None):
            continue
        if old != new:
            changes.append({"field": key, "before": None if old is _ABSENT else plain(old),
                            "after": None if new is _ABSENT else plain(new)})
    return changes


def type_name(aggregate_class: type) -> str:
    """The URL name of an aggregate class (``risk_case`` for RiskCase)."""
    return next((name for name, cls in AGGREGATE_TYPES.items() if cls is aggregate_class),
                aggregate_class.__name__.lower())


def _events(app: TuohuApplication, aggregate_id: UUID, aggregate_type: str | None) -> tuple[str, list[Any]]:
    keys = getattr(app.mapper, "keys", None)
    if keys is not None:  # an erasure by another process is seen now, not when the cached key expires
        keys.refresh()
    events = list(app.events.get(aggregate_id if isinstance(aggregate_id, UUID) else UUID(str(aggregate_id))))
    if not events:
        raise AuditNotFound(f"no {aggregate_type or 'aggregate'} with id {aggregate_id}")
    owner = type(events[0]).__qualname__.split(".")[0]
    found = next((name for name, cls in AGGREGATE_TYPES.items() if cls.__name__ == owner), owner.lower())
    if aggregate_type is not None and found != aggregate_type:
        raise AuditNotFound(f"no {aggregate_type} with id {aggregate_id}")
    return found, events


def _positions(app: TuohuApplication, aggregate_id: UUID) -> dict[int, int]:
    aggregate_id = aggregate_id if isinstance(aggregate_id, UUID) else UUID(str(aggregate_id))
    return app.chain.storage.positions(aggregate_id)  # type: ignore[attr-defined]


def _evidence(event: Any, position: int | None) -> dict[str, Any]:
    return {
        "position": position, "version": event.originator_version, "event": type(event).__name__,
        "topic": getattr(type(event), "TOPIC", None), "occurred_at": plain(event.occurred_at),
        "recorded_at": plain(event.timestamp),
        **{name: plain(getattr(event, name, None)) for name in EVIDENCE if name != "occurred_at"},
    }


def _own_fields(event: Any) -> dict[str, Any]:
    return {k: plain(v) for k, v in vars(event).items() if k not in EVIDENCE and k not in _LIBRARY}


def history(app: TuohuApplication, aggregate_id: UUID, aggregate_type: str | None = None, *,
            field: str | None = None) -> dict[str, Any]:
    """Every event of the aggregate, oldest first, with its evidence and the changes it made.

    Returns ``{"aggregate_type", "aggregate_id", "version", "field", "events": [{position, version,
    event, topic, occurred_at, recorded_at, actor_id, actor_role, reason, channel, correlation_id,
    causation_id, command_id, "data", "changes": [{"field", "before", "after"}]}]}``.

    ``field`` keeps the events that changed that field or a field under it
    (``credit_standing``, ``facts.basic``): an empty list when it never changed. Raises
    :class:`AuditNotFound`, and :class:`~domain.base.InvalidValue` (field ``field``, listing the
    aggregate's top-level fields) when ``field`` names no field of the aggregate in any state of its
    history and none of its events' fields - a misspelt field must not read as one nobody changed.
    """
    found, events = _events(app, aggregate_id, aggregate_type)
    positions = _positions(app, aggregate_id)
    entries = []
    aggregate = None
    known: set[str] = set()
    top: set[str] = set()
    for event in events:
        before = _state(aggregate)
        aggregate = event.mutate(aggregate)
        after = _state(aggregate)
        changes = diff(before, after)
        data = _own_fields(event)
        if field is not None:
            _paths(after, "", known)
            _paths(data, "", known)
            top.update(after)
            if not any(c["field"] == field or c["field"].startswith(field + ".") for c in changes):
                continue
        entries.append({**_evidence(event, positions.get(event.originator_version)), "data": data,
                        "changes": changes})
    if field is not None and field not in known:
        raise InvalidValue("field", f"{field!r} is no field of {found} {aggregate_id} in any state of its history "
                                    f"nor of any of its events; its fields are {', '.join(sorted(top))} (or a "
                                    "dotted path under one of them)")
    return {"aggregate_type": found, "aggregate_id": str(aggregate_id), "version": events[-1].originator_version,
            "field": field, "events": entries}


def state_as_of(app: TuohuApplication, aggregate_id: UUID, aggregate_type: str | None = None, *,
                as_of: datetime | None = None, version: int | None = None,
                at_event: str | None = None) -> dict[str, Any]:
    """The aggregate as it stood at recorded time ``as_of`` (UTC), after ``version``, or right after
    its latest event named ``at_event`` (e.g. ``Screened``); the current state without any.

    Raises :class:`AuditNotFound` (also when it did not exist yet) and :class:`ValueError`.
    """
    if sum(x is not None for x in (as_of, version, at_event)) > 1:
        raise ValueError("give one of as_of, version or at_event")
    if as_of is not None and as_of.tzinfo is None:
        raise ValueError("as_of must carry a timezone (e.g. 2026-01-31T12:00:00Z)")
    found, events = _events(app, aggregate_id, aggregate_type)
    if at_event is not None:
        matching = [e for e in events if type(e).__name__ == at_event]
        if not matching:
            raise AuditNotFound(f"{found} {aggregate_id} has no {at_event} event")
        version = matching[-1].originator_version
    if version is not None and version > events[-1].originator_version:
        raise AuditNotFound(f"{found} {aggregate_id} has no version {version}; its latest is "
                            f"{events[-1].originator_version}")
    if as_of is not None:
        events = [e for e in events if e.timestamp <= as_of]
    elif version is not None:
        events = [e for e in events if e.originator_version <= version]
    if not events:
        raise AuditNotFound(f"{found} {aggregate_id} did not exist yet at that moment")
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    last = events[-1]
    positions = _positions(app, aggregate_id)
    return {"aggregate_type": found, "aggregate_id": str(aggregate_id), "version": last.originator_version,
            "as_of": plain(as_of), "at_event": at_event, "last_event": _evidence(last, positions.get(
                last.originator_version)), "state": plain(_state(aggregate))}


def explain(app: TuohuApplication, customer_id: UUID) -> dict[str, Any]:
    """Each screening of the customer re-scored from its recorded inputs with its recorded model.

    ``matches`` is True when score, outcome and every contribution agree, None
    when the inputs were erased or the model version is no longer known.
    """
    _found, events = _events(app, customer_id, "customer")
    positions = _positions(app, customer_id)
    screenings = []
    for event in events:
        if not isinstance(event, Customer.Screened):
            continue
        entry: dict[str, Any] = {
            **_evidence(event, positions.get(event.originator_version)),
            "model_name": event.model_name, "model_version": event.model_version, "inputs": plain(event.inputs),
            "recorded": {"score": event.score, "outcome": event.outcome, "contributions": dict(event.contributions)},
            "recomputed": None, "matches": None, "note": None,
        }
        if event.inputs == {"_erased": True}:
            entry["note"] = "the inputs were erased with the customer's personal data; the recorded result stands"
        else:
            try:
                result = screening.score(dict(event.inputs), event.model_name, event.model_version)
            except InvalidValue as exc:
                entry["note"] = exc.detail
            else:
                entry["recomputed"] = {"score": result.score, "outcome": result.outcome,
                                       "contributions": dict(result.contributions)}
                entry["matches"] = entry["recomputed"] == entry["recorded"]
        screenings.append(entry)
    verdicts = [s["matches"] for s in screenings]
    return {"customer_id": str(customer_id), "screenings": screenings,
            "all_match": None if not verdicts or None in verdicts else all(verdicts)}
