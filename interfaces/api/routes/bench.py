"""A no-op command route for ``bench/http.py``: mounted only with ``TUOHU_BENCH_NOOP=1``.

It goes through everything a command route does before its use case (request
id, authentication, the permission matrix, body parsing, the command context)
and then writes nothing, so the benchmark can compare a real command with it.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from application import CommandResult
from interfaces.api.deps import ActorDep, reply
from interfaces.api.schemas import CommandPublic, FactsCreate

commands = APIRouter(prefix="/bench", tags=["benchmark"])


@commands.post("/noop", operation_id="bench_noop")
def bench_noop(body: FactsCreate, ctx: ActorDep, response: Response) -> CommandPublic:  # noqa: ARG001
    """Parse and authorize like a command, then do nothing (benchmarks only)."""
    return reply(response, CommandResult(UUID(int=0), 0, 0))
