"""CommandReceipt: proof that a client's command id was applied once.

The receipt is saved in the same transaction as the events the command
caused, under an id derived from the client's command id. A second command
with the same id collides with the receipt and so has no second effect.
"""

from __future__ import annotations

import uuid
from uuid import UUID

from domain.base import Context, InvalidValue, TuohuAggregate

_NAMESPACE = uuid.UUID("5b0e7c1e-1f0a-4d44-9d8e-74756f687500")


def receipt_id(command_id: str) -> UUID:
    """The receipt's aggregate id for a client command id (UUID v5)."""
    return uuid.uuid5(_NAMESPACE, command_id)


class CommandReceipt(TuohuAggregate):
    """One applied client command: its name and the aggregate it acted on."""

    TOPIC = "tuohu:CommandReceipt"

    class Accepted(TuohuAggregate.Created):
        """The command with this client command id was applied."""

        command_name: str
        aggregate_id: UUID

        def apply(self, receipt: CommandReceipt) -> None:
            receipt.command_name = self.command_name
            receipt.aggregate_id = self.aggregate_id

    @classmethod
    def accept(cls, ctx: Context, *, command_name: str, aggregate_id: UUID) -> CommandReceipt:
        if not ctx.command_id:
            raise InvalidValue("command_id", "a receipt needs the client command id")
        return cls._start(cls.Accepted, ctx, id=receipt_id(ctx.command_id), command_name=command_name,
                          aggregate_id=aggregate_id)
