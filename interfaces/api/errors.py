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
no such route / method             404     ``{"code": "not_found", "detail"}``; 405 ``method_not_allowed`` + ``Allow``
any other error                    500     ``{"code": "internal_error", "detail"}`` (the cause goes to the log)
=================================  ======  ==============================================

Every body is JSON, whatever the client sent: text that cannot be written as
UTF-8 (a lone UTF-16 surrogate, ``\\ud800``) is echoed with the surrogate
escaped, and NaN or infinity as a string.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import Match

from application import ConcurrentUpdate, NotFound, VersionMismatch
from application.access import AccessDenied, Unauthenticated
from domain.base import DomainError, InvalidValue
from interfaces.api.deps import etag
from projections import ProjectionFailed

logger = logging.getLogger("tuohu.api")


HTTP_CODES = {400: "bad_request", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              413: "request_too_large", 415: "unsupported_media_type", 503: "unavailable"}
"""The ``code`` of an HTTP error raised without one (by the framework, or a route's guard)."""
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _json_safe(value: Any) -> Any:
    """``value`` as JSON can carry it: NaN and infinities as strings (JSON has no such numbers), lone
    UTF-16 surrogates in text (and in keys) escaped as ``\\udXXX`` (UTF-8 cannot encode them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_json_safe(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def _json(status: int, content: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(status_code=status, content=_json_safe(content), headers=headers)


def _body(error: DomainError, status: int, **extra: object) -> JSONResponse:
    return _json(status, {"code": error.code, "detail": error.detail, **extra})


def request_invalid(_: Request, error: RequestValidationError) -> JSONResponse:
    """422: FastAPI's own answer, safe to encode whatever input it echoes (NaN, lone surrogates)."""
    return _json(422, {"detail": jsonable_encoder(error.errors())})


_QUERY_NAMES: dict[tuple[str, str], tuple[frozenset[str], frozenset[str]] | None] = {}
_EVERY_QUERY = frozenset({"consistent_with"})


def _is_list(schema: dict[str, Any]) -> bool:
    """Whether a parameter's OpenAPI schema takes several values (an array, alone or in ``anyOf``)."""
    return schema.get("type") == "array" or any(_is_list(option) for option in schema.get("anyOf", ()))


def _query_names(request: Request, path: str) -> tuple[frozenset[str], frozenset[str]] | None:
    """``(every query parameter, those taking several values)`` of the operation, as its OpenAPI document
    lists them (read once per operation); ``None`` for an operation the document leaves out."""
    key = (path, request.method)
    if key not in _QUERY_NAMES:
        operation = request.app.openapi().get("paths", {}).get(path, {}).get(request.method.lower())
        query = [] if operation is None else [p for p in operation.get("parameters", []) if p.get("in") == "query"]
        _QUERY_NAMES[key] = None if operation is None else (
            frozenset(p["name"] for p in query), frozenset(p["name"] for p in query if _is_list(p.get("schema", {}))))
    return _QUERY_NAMES[key]


async def known_query_parameters(request: Request) -> None:
    """422 for a query parameter the operation does not take (as its OpenAPI document lists them), ``type``
    ``extra_forbidden``: a misspelt or unsupported filter would otherwise be ignored, and the answer look
    filtered. 422 too for one that takes a single value (its schema is no array) given more than once,
    ``type`` ``multiple_argument_values`` with every value given as ``input``: the framework would
    silently read the last one (``by=channel&by=month`` as ``by=month``). One error per parameter,
    ``{"loc": ["query", name], "msg", "input", "type"}``, in the order of their names."""
    if not request.query_params:
        return
    path = getattr(request.scope.get("route"), "path_format", None)
    if path is None or path == "/health":  # monitors may add a cache-busting parameter
        return
    known = _query_names(request, path)
    if known is None:
        return
    names, lists = known
    # Every query takes consistent_with; one that reads the event store is always consistent with it.
    errors = []
    for name in sorted(set(request.query_params)):
        values = request.query_params.getlist(name)
        if name not in names | _EVERY_QUERY:
            errors.append({"type": "extra_forbidden", "loc": ["query", name], "input": values[-1],
                           "msg": f"not a parameter of this operation; it takes {', '.join(sorted(names)) or 'none'}"})
        elif len(values) > 1 and name not in lists:
            errors.append({"type": "multiple_argument_values", "loc": ["query", name], "input": values,
                           "msg": f"given {len(values)} times; it takes one value"})
    if errors:
        raise RequestValidationError(errors)


def _allowed_methods(request: Request) -> str | None:
    """Every method some route takes at the request's path (the framework names only the first route's)."""
    methods = [method for method in _METHODS
               if any(route.matches({**request.scope, "method": method})[0] == Match.FULL
                      for route in request.app.router.routes)]
    return ", ".join(methods) if methods else None


def http_error(request: Request, error: HTTPException) -> JSONResponse:
    """The framework's HTTP errors (no such route, method not allowed, ...) with a ``code`` like every other
    error; a list of field errors keeps FastAPI's 422 shape, a body with its own ``code`` is sent as it is."""
    detail = error.detail
    if isinstance(detail, dict) and "code" in detail:
        content: Any = detail
    elif isinstance(detail, list):
        content = {"detail": detail}
    else:
        content = {"code": HTTP_CODES.get(error.status_code, "http_error"), "detail": str(detail)}
    headers = dict(getattr(error, "headers", None) or {})
    if error.status_code == 405 and (allowed := _allowed_methods(request)):
        headers["Allow"] = allowed
    return _json(error.status_code, content, headers=headers or None)


def internal_error(_: Request, error: Exception) -> JSONResponse:
    """500: a fault of tuohu's, never the client's; the cause goes to the server log, not to the client."""
    logger.error("unhandled error", exc_info=error)
    return _json(500, {"code": "internal_error", "detail": "tuohu failed to answer this request; the fault is "
                                                            "logged on the server"})


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
    return _json(503, {
        "code": "read_model_stopped",
        "detail": f"the read model {error.projection} stopped at event position {error.position}; try again later",
    })


def read_model_behind(_: Request, error: Exception) -> JSONResponse:
    return _json(503, {"code": getattr(error, "code", "read_model_behind"),
                       "detail": getattr(error, "detail", str(error))}, headers={"Retry-After": "1"})


def install(app: FastAPI) -> None:
    """Register the handlers (the most specific error class wins)."""
    app.add_exception_handler(RequestValidationError, request_invalid)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, internal_error)
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
