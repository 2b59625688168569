"""Map the application's and the domain's errors to HTTP statuses.

=================================  ======  ==============================================
error                              status  body
=================================  ======  ==============================================
request validation (pydantic)      422     FastAPI's ``{"detail": [{"loc", "msg", ...}]}``
``domain.base.InvalidValue``       422     ``{"code": "invalid_value", "detail", "field"}``
``IdempotencyKeyReused``           422     ``{"code": "idempotency_key_reused", "detail", "field"}``
``access.Unauthenticated``         401     ``{"code": "unauthenticated", "detail"}`` + ``WWW-Authenticate``
``access.AccessDenied``            403     ``{"code": "forbidden" | "outside_your_scope", "detail"}``
``application.NotFound``           404     ``{"code": "not_found", "detail"}`` (also: outside the caller's scope)
``application.VersionMismatch``    412     ``{"code": "version_mismatch", "detail"}`` + current ETag
``application.ConcurrentUpdate``   409     ``{"code": "concurrent_update", "detail"}``
other ``domain.base.DomainError``  409     ``{"code": <the rule's code>, "detail"}``
``projections.ProjectionFailed``   503     ``{"code": "read_model_stopped", "detail"}``
=================================  ======  ==============================================
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from application import ConcurrentUpdate, NotFound, VersionMismatch
from application.access import AccessDenied, Unauthenticated
from domain.base import DomainError, InvalidValue
from interfaces.api.deps import etag
from projections import ProjectionFailed

logger = logging.getLogger("tuohu.api")


def _body(error: DomainError, status: int, **extra: object) -> JSONResponse:
    return JSONResponse(status_code=status, content={"code": error.code, "detail": error.detail, **extra})


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities written as strings (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def request_invalid(_: Request, error: RequestValidationError) -> JSONResponse:
    """422: FastAPI's own answer, safe to encode when the client sent NaN or Infinity."""
    return JSONResponse(status_code=422, content={"detail": _finite(jsonable_encoder(error.errors()))})


def invalid_value(_: Request, error: InvalidValue) -> JSONResponse:
    """422: a value the domain refused, naming its field."""
    return _body(error, 422, field=error.field)


def unauthenticated(_: Request, error: Unauthenticated) -> JSONResponse:
    """401: no valid bearer token."""
    response = _body(error, 401)
    response.headers["WWW-Authenticate"] = 'Bearer realm="tuohu"'
    return response


def access_denied(_: Request, error: AccessDenied) -> JSONResponse:
    """403: the caller's role may not call the operation, or acts outside their scope."""
    return _body(error, 403)


def not_found(_: Request, error: NotFound) -> JSONResponse:
    """404: no aggregate of that type has the id."""
    return _body(error, 404)


def version_mismatch(_: Request, error: VersionMismatch) -> JSONResponse:
    """412: ``If-Match`` named another version; the current one is in ``ETag``."""
    response = _body(error, 412)
    response.headers["ETag"] = etag(error.actual)
    return response


def concurrent_update(_: Request, error: ConcurrentUpdate) -> JSONResponse:
    """409: another command saved first; reload and retry."""
    return _body(error, 409)


def domain_error(_: Request, error: DomainError) -> JSONResponse:
    """409: a rule of the measures refused the command."""
    return _body(error, 409)


def projection_failed(_: Request, error: ProjectionFailed) -> JSONResponse:
    """503: the read model stopped at an event it could not apply; details are in the server log."""
    logger.error("read model unavailable: %s", error)
    return JSONResponse(status_code=503, content={
        "code": "read_model_stopped",
        "detail": f"the read model {error.projection} stopped at event position {error.position}; try again later",
    })


def read_model_behind(_: Request, error: Exception) -> JSONResponse:
    return JSONResponse(status_code=503, headers={"Retry-After": "1"},
                        content={"code": getattr(error, "code", "read_model_behind"),
                                 "detail": getattr(error, "detail", str(error))})


def install(app: FastAPI) -> None:
    """Register the handlers (the most specific error class wins)."""
    app.add_exception_handler(RequestValidationError, request_invalid)  # type: ignore[arg-type]
    app.add_exception_handler(InvalidValue, invalid_value)  # type: ignore[arg-type]
    app.add_exception_handler(Unauthenticated, unauthenticated)  # type: ignore[arg-type]
    app.add_exception_handler(AccessDenied, access_denied)  # type: ignore[arg-type]
    app.add_exception_handler(NotFound, not_found)  # type: ignore[arg-type]
    app.add_exception_handler(VersionMismatch, version_mismatch)  # type: ignore[arg-type]
    app.add_exception_handler(ConcurrentUpdate, concurrent_update)  # type: ignore[arg-type]
    app.add_exception_handler(DomainError, domain_error)  # type: ignore[arg-type]
    app.add_exception_handler(ProjectionFailed, projection_failed)  # type: ignore[arg-type]
    from interfaces.api.deps import ReadModelBehind

    app.add_exception_handler(ReadModelBehind, read_model_behind)  # type: ignore[arg-type]
