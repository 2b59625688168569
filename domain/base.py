"""Shared building blocks of tuohu's aggregates.

Every event of every aggregate carries who did it, when it happened in the
business (``occurred_at``, UTC), when it was recorded (``recorded_at``, UTC,
the library's ``timestamp``), why (``reason``, where a decision is taken),
through which channel the command arrived, and the correlation / causation
ids that tie a chain of work together. These fields are the evidence that
measures §0 ("lawful and compliant": every decision leaves evidence) asks for.

Event topics are stable strings ``"tuohu:<Aggregate>.<Event>"`` that do not
depend on the Python module, so moving a module never breaks stored history.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

TOPIC_PREFIX = "tuohu:"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class DomainError(Exception):
    """A rule of the measures refused a command.

    ``code`` is a stable machine-readable snake_case name; ``detail`` says
    what was refused and why.
    """

    code: ClassVar[str] = "domain_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidValue(DomainError):
    """A command argument is out of its allowed range; names the field."""

    code = "invalid_value"

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


class IllegalTransition(DomainError):
    """The aggregate is not in a state that allows the command."""

    code = "illegal_transition"

    def __init__(self, aggregate: str, action: str, state: str, allowed: tuple[str, ...]) -> None:
        super().__init__(
            f"{aggregate} cannot be {action} while {state}; "
            f"allowed only when {' or '.join(allowed)}"
        )
        self.state = state


class ReasonRequired(DomainError):
    """A decision was taken without the reason the measures require."""

    code = "reason_required"

    def __init__(self, action: str) -> None:
        super().__init__(f"a reason is required to {action}")


class MakerCheckerViolation(DomainError):
    """The same person tried to act as both maker and checker (four-eyes rule)."""

    code = "maker_checker_violation"


# --------------------------------------------------------------------------
# Command context: who / when / why / through what
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """Who issues a command, when it took effect in the business, and how.

    - ``actor_id``, ``actor_role``: the person or system acting.
    - ``occurred_at``: business time (timezone-aware, stored as UTC); defaults to now.
    - ``channel``: how the command reached tuohu (``api``, ``cli``, ``import``, ...).
    - ``correlation_id``: ties together all events of one request or import run.
    - ``causation_id``: the event or command that caused this one, if any.
    - ``command_id``: the client's id for the command; a repeated id has no second effect.
    - ``request_hash``: a digest of the request that carried the command (for the HTTP API,
      method, path and body); a repeated ``command_id`` with another digest is refused.
      It is kept on the command's receipt, not on its events.

    Raises :class:`InvalidValue` for an empty actor or a naive ``occurred_at``.
    """

    actor_id: str
    actor_role: str
    occurred_at: datetime = field(default_factory=utcnow)
    channel: str = "api"
    correlation_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    causation_id: str | None = None
    command_id: str | None = None
    request_hash: str | None = None

    def __post_init__(self) -> None:
        if not self.actor_id or not self.actor_id.strip():
            raise InvalidValue("actor_id", "must not be empty")
        if not self.actor_role or not self.actor_role.strip():
            raise InvalidValue("actor_role", "must not be empty")
        if self.occurred_at.tzinfo is None:
            raise InvalidValue("occurred_at", "must carry a timezone (UTC is stored)")
        if self.occurred_at.tzinfo is not timezone.utc:
            object.__setattr__(self, "occurred_at", self.occurred_at.astimezone(timezone.utc))

    def event_fields(self, reason: str | None = None) -> dict[str, Any]:
        """The evidence fields every event carries, as keyword arguments."""
        return {
            "actor_id": self.actor_id,
            "actor_role": self.actor_role,
            "occurred_at": self.occurred_at,
            "reason": reason,
            "channel": self.channel,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "command_id": self.command_id,
        }


# --------------------------------------------------------------------------
# Aggregate base
# --------------------------------------------------------------------------


class TuohuAggregate(Aggregate):
    """Base class of tuohu's aggregates.

    Subclasses set ``TOPIC = "tuohu:<Name>"``; their event classes get the
    topic ``"tuohu:<Name>.<Event>"`` automatically (or set their own).
    """

    class Event(Aggregate.Event):
        actor_id: str
        actor_role: str
        occurred_at: datetime
        reason: str | None
        channel: str | None
        correlation_id: str
        causation_id: str | None
        command_id: str | None

        def __init_subclass__(cls, **kwargs: Any) -> None:
            if "TOPIC" not in cls.__dict__ and "." in cls.__qualname__:
                owner = cls.__qualname__.split(".")[0]
                if owner != "TuohuAggregate":
                    cls.TOPIC = TOPIC_PREFIX + cls.__qualname__
            super().__init_subclass__(**kwargs)

        @property
        def recorded_at(self) -> datetime:
            """When tuohu recorded the event (UTC); the library's timestamp."""
            return self.timestamp

    class Created(Event, Aggregate.Created):
        pass

    def _record(self, event_class: type, ctx: Context, reason: str | None = None, **fields: Any) -> None:
        """Trigger ``event_class`` with the context's evidence fields."""
        self.trigger_event(event_class, **ctx.event_fields(reason), **fields)

    @classmethod
    def _start(
        cls, event_class: type, ctx: Context, id: uuid.UUID | None = None,  # noqa: A002
        reason: str | None = None, **fields: Any,
    ) -> Any:
        """Create a new aggregate with its first event."""
        return cls._create(event_class, id=id or uuid.uuid4(), **ctx.event_fields(reason), **fields)


def require_reason(reason: str | None, action: str) -> str:
    """Return the stripped reason, or raise :class:`ReasonRequired`."""
    if reason is None or not str(reason).strip():
        raise ReasonRequired(action)
    return str(reason).strip()


def require_text(value: str | None, field_name: str) -> str:
    """Return the stripped text, or raise :class:`InvalidValue` naming the field."""
    if value is None or not str(value).strip():
        raise InvalidValue(field_name, "must not be empty")
    return str(value).strip()


def require_choice(value: str, field_name: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise :class:`InvalidValue`."""
    if value not in choices:
        raise InvalidValue(field_name, f"must be one of {', '.join(choices)}; got {value!r}")
    return value
