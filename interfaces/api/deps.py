"""Dependencies of the routes (``Annotated`` aliases) and the replies they send.

- ``AppDep``: the :class:`TuohuApplication` started by the lifespan;
- ``ReadModelsDep``: the read models (:class:`projections.ReadModels`);
- ``ActorDep``: the command :class:`Context` — who acts (the authenticated
  user, ``interfaces.api.security``), the request's correlation id
  (``X-Request-ID``), the client's command id (``Idempotency-Key``) and the
  digest of the request it came with (method, path and JSON body), so that a
  key reused for another request is refused;
- ``IfMatchDep``: the version named by ``If-Match`` (``"3"`` or ``3``; ``*`` or
  absent means any), passed to the use case as ``expected_version``.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Header, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from application import CommandResult, TuohuApplication
from domain.base import Context
from interfaces.api.schemas import CommandPublic, ErrorPublic, RecordsPublic
# the routes take these from here too
from interfaces.api.security import PrincipalDep, ScopeDep, StaffBranchDep, application_of  # noqa: F401
from projections import ReadModels
from projections.pipeline import PipelineProjection

CHANNEL = "api"
_IF_MATCH = re.compile(r'^(?:"(\d{1,18})"|(\d{1,18}))$', re.ASCII)


async def get_application(request: Request) -> TuohuApplication:
    """The application the lifespan bootstrapped (no I/O: resolved on the event loop)."""
    return application_of(request)


class ReadModelBehind(Exception):
    """The read models did not reach the asked position in time (answered 503 with ``Retry-After``)."""

    def __init__(self, position: int, reached: dict[str, int], timeout: float, stopped: list[str]) -> None:
        behind = ", ".join(f"{name} at {pos}" for name, pos in reached.items() if pos < position)
        detail = f"the read models have not reached position {position} within {timeout:g} s ({behind})"
        if stopped:
            detail += f"; stopped: {'; '.join(stopped)}"
        super().__init__(detail)
        self.detail = detail
        self.code = "read_model_stopped" if stopped else "read_model_behind"


async def get_read_models(
    request: Request,
    consistent_with: Annotated[int | None, Query(
        ge=0, le=2**62, description="a position from a command's response: wait (up to the consistency "
        "timeout, 5 s by default) until the read models include it; 503 with Retry-After if they do not; "
        "422 for a position beyond the newest event")] = None,
) -> ReadModels:
    """The read models the lifespan built, once they include ``consistent_with`` (read-your-writes).
    (Resolved on the event loop; only the wait for a position runs in a worker thread.)"""
    read_models = getattr(request.app.state, "read_models", None)
    if read_models is None:
        raise HTTPException(status_code=503, detail="tuohu is not started")
    if consistent_with is not None:
        await run_in_threadpool(_wait_until_consistent, request, read_models, consistent_with)
    return read_models


def _by_value(value: Any) -> Any:
    """``value`` with every whole number written alike: JSON has one kind of number, so ``1``, ``1.0`` and
    ``1e0`` are the same value (as they are to the routes, which read them with the same result)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _by_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_by_value(item) for item in value]
    return value


def _wait_until_consistent(request: Request, read_models: ReadModels, position: int) -> None:
    """Block until the read models include ``position``; 422 past the newest event, 503 on timeout."""
    head = application_of(request).position()
    if position > head:  # no command has answered with it: it can never be reached
        raise RequestValidationError([{
            "type": "less_than_equal", "loc": ("query", "consistent_with"), "input": position,
            "msg": f"Input should be a position a command answered with; the newest event is at {head}",
            "ctx": {"le": head},
        }])
    timeout = request.app.state.consistency_timeout
    if not read_models.wait_for(position, timeout):
        status = read_models.status()
        raise ReadModelBehind(position, {r["projection"]: r["position"] for r in status}, timeout,
                              [f"{r['projection']} at event {r['error_position']}: {r['error']}"
                               for r in status if r["error"]])


def request_digest(method: str, path: str, body: bytes) -> str:
    """SHA-256 of the method, the path and the body, JSON compared by value: not by layout, key order,
    escapes or the way a number is written (``1`` and ``1.0`` are equal, ``1.5`` and ``1.50`` too)."""
    try:  # "surrogatepass": a lone surrogate is refused by validation, not by the digest
        canonical = json.dumps(_by_value(json.loads(body)), sort_keys=True, separators=(",", ":"),
                               ensure_ascii=False).encode("utf-8", "surrogatepass")
    except (ValueError, UnicodeDecodeError):
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


async def command_context(
    request: Request,
    principal: PrincipalDep,
    idempotency_key: Annotated[str | None, Header(
        min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
        description="the client's id for this command (visible ASCII): the same key with the same request "
                    "returns the first response and has no second effect; with another request it is a 422",
    )] = None,
    x_request_id: Annotated[str | None, Header(  # noqa: ARG001 - documented here, read by the middleware
        description="correlation id of the request; echoed back, generated when absent",
    )] = None,
) -> Context:
    """The command's :class:`Context`: the authenticated actor, channel ``api``, correlation id,
    command id and request digest.

    ``x_request_id`` is declared for the documentation; its value was checked
    (or generated) by the request-id middleware and is read from the request state.
    """
    digest = request_digest(request.method, request.url.path, await request.body()) if idempotency_key else None
    return principal.context(channel=CHANNEL, correlation_id=request.state.request_id, command_id=idempotency_key,
                             request_hash=digest)


async def expected_version(
    if_match: Annotated[str | None, Header(description='the version the client last saw, as its ETag: "3"')] = None,
) -> int | None:
    """The version in ``If-Match``, or None for ``*`` or no header. A malformed header is a 422.
    (No I/O: resolved on the event loop.)"""
    if if_match is None or if_match.strip() == "*":
        return None
    match = _IF_MATCH.match(if_match.strip())
    if match is None:
        raise RequestValidationError([{
            "type": "value_error", "loc": ("header", "if-match"), "input": if_match,
            "msg": 'Value error, must be one version as an ETag, e.g. "3"',
        }])
    return int(match.group(1) or match.group(2))


AppDep = Annotated[TuohuApplication, Depends(get_application)]
ReadModelsDep = Annotated[ReadModels, Depends(get_read_models)]
ActorDep = Annotated[Context, Depends(command_context)]
IfMatchDep = Annotated[int | None, Depends(expected_version)]


def etag(version: int) -> str:
    """The strong ETag of an aggregate version: ``"3"``."""
    return f'"{version}"'


def reply(response: Response, result: CommandResult) -> CommandPublic:
    """The command's outcome, with ``ETag`` set to the aggregate's new version."""
    response.headers["ETag"] = etag(result.version)
    return CommandPublic.model_validate(result)


def created(response: Response, result: CommandResult, collection: str) -> CommandPublic:
    """As :func:`reply`, plus ``Location`` of the new aggregate under ``collection``."""
    response.headers["Location"] = f"{collection}/{result.aggregate_id}"
    return reply(response, result)


COMMAND_RESPONSES: dict[int | str, dict[str, object]] = {
    404: {"model": ErrorPublic, "description": "No aggregate of this type has the id (or none the caller may see)"},
    409: {"model": ErrorPublic, "description": "A rule of the measures refused the command (see `code`)"},
    412: {"model": ErrorPublic, "description": "`If-Match` names another version than the current one"},
    422: {"description": "Invalid request; a value refused by the domain answers `code: invalid_value` and "
                         "`field`; an `Idempotency-Key` reused for another request `code: idempotency_key_reused`"},
}
"""Error responses every command route documents."""

Limit = Annotated[int, Query(ge=1, le=500, description="rows per page, at most 500")]
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="rows to skip")]


CreatedBy = Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00]*$", description="actor who created it")]


def pipeline_caught_up(read_models: ReadModels) -> int:
    """The pipeline read model's position: the log position its answers include."""
    return read_models.store.position(PipelineProjection.name)


def records_page(read_models: ReadModels, aggregate_type: str, *, customer_id: UUID | None, status: str | None,
                 created_by: str | None, limit: int, offset: int, scope: dict[str, str] | None) -> RecordsPublic:
    """A page of ``aggregate_type`` rows of the pipeline read model, caught up to the latest event,
    of the customers in ``scope`` (row-level access)."""
    position = pipeline_caught_up(read_models)
    rows = read_models.records(aggregate_type, customer_id=str(customer_id) if customer_id else None,
                               status=status, created_by=created_by, limit=limit, offset=offset, scope=scope)
    return RecordsPublic(data=rows, limit=limit, offset=offset, position=position)
