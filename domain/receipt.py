"""CommandReceipt: proof that a client's command id was applied once.

The receipt is saved in the same transaction as the events the command
caused, under an id derived from the actor and the client's command id, so
two clients' ids never collide. A second command with the same id collides
with the receipt and so has no second effect; if it is another command, or the
same command with another request (``Context.request_hash``), it is refused
with :class:`IdempotencyKeyReused` rather than answered with the first result.
"""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from domain.base import Context, InvalidValue, TuohuAggregate

_NAMESPACE = uuid.UUID("5b0e7c1e-1f0a-4d44-9d8e-74756f687500")


def receipt_id(actor_id: str, command_id: str) -> UUID:
    """The receipt's aggregate id for an actor's command id (UUID v5 of both)."""
    return uuid.uuid5(_NAMESPACE, f"{actor_id}\n{command_id}")


class IdempotencyKeyReused(InvalidValue):
    """A command id already applied to another command, or to the same command with another request."""

    code = "idempotency_key_reused"

    def __init__(self, command_id: str, reason: str) -> None:
        super().__init__("idempotency_key", f"{command_id!r} {reason}; use a new key for a new command")


class CommandReceipt(TuohuAggregate):
    """One applied client command: its name, the aggregate it acted on, the request's digest."""

    TOPIC = "tuohu:CommandReceipt"

    class Accepted(TuohuAggregate.Created):
        """The command with this client command id was applied."""

        class_version = 2

        command_name: str
        aggregate_id: UUID
        request_hash: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Receipts recorded before request digests were kept have none."""
            state["request_hash"] = None

        def apply(self, receipt: CommandReceipt) -> None:
            receipt.command_name = self.command_name
            receipt.aggregate_id = self.aggregate_id
            receipt.request_hash = self.request_hash

    @classmethod
    def accept(cls, ctx: Context, *, command_name: str, aggregate_id: UUID) -> CommandReceipt:
        """The receipt of ``ctx.command_id``. Raises :class:`InvalidValue` without a command id."""
        if not ctx.command_id:
            raise InvalidValue("command_id", "a receipt needs the client command id")
        return cls._start(cls.Accepted, ctx, id=receipt_id(ctx.actor_id, ctx.command_id), command_name=command_name,
                          aggregate_id=aggregate_id, request_hash=ctx.request_hash)

    def check_repeat(self, ctx: Context, command_name: str) -> None:
        """Refuse a repeat that is not the same command with the same request.

        Digests are compared when both the receipt and ``ctx`` have one (a caller
        without a request, such as the CLI, is compared by command name only).
        Raises :class:`IdempotencyKeyReused`.
        """
        key = ctx.command_id or ""
        if command_name != self.command_name:
            raise IdempotencyKeyReused(key, f"was used for {self.command_name}, not {command_name}")
        if self.request_hash and ctx.request_hash and self.request_hash != ctx.request_hash:
            raise IdempotencyKeyReused(key, f"was used for {command_name} with another request")
