"""Assemble the FastAPI app: lifespan, request ids, error mapping, routers.

Nothing is bootstrapped at import time or in :func:`create_app`: the lifespan
builds the application (``application.bootstrap``) and the read models
(``projections.build_read_models``) when the server starts, keeps them on
``app.state`` (``application``, ``read_models``), and runs a daemon thread that
catches the read models up every 0.5 s until shutdown.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from application import Settings, bootstrap
from interfaces.api import errors, security
from interfaces.api.routes import (audit, bench, contracts, customers, proposals, reports, risk_cases, team, users,
                                   visits)
from projections import ReadModels, build_read_models

logger = logging.getLogger("tuohu.api")

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
CATCH_UP_INTERVAL = 0.5


class ReadModelFollower:
    """A daemon thread that keeps the read models up to date until :meth:`stop`.

    It runs the projections' own runner (``ProjectionRunner.follow``): catch up
    on the events that arrived, at most every ``interval`` seconds (over SQLite
    it polls; over PostgreSQL it waits for the log's notifications), and at once
    when a query waits for a position (``consistent_with``). A stopped projection
    or a lost connection is logged and retried, never the end of the thread.
    """

    def __init__(self, read_models: ReadModels, interval: float = CATCH_UP_INTERVAL) -> None:
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=read_models.runner.follow, args=(self._stopping, interval),
                                       name="tuohu-read-model-follower", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def is_alive(self) -> bool:
        return self.thread.is_alive()

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the thread to stop and wait for the batch in progress to finish."""
        self._stopping.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            logger.warning("read model follower still busy after %.0f s; leaving it to exit with the process", timeout)


class RequestIdMiddleware:
    """Take ``X-Request-ID`` (1-128 visible ASCII characters) or generate one, keep it as the
    request's ``state.request_id``, and echo it back; a malformed one is a 422.

    A plain ASGI middleware: it sets the header on the response as it is sent, without
    wrapping the response in a stream of its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get(REQUEST_ID_HEADER)
        if given is not None and not _REQUEST_ID.match(given):
            await JSONResponse(status_code=422, content={"detail": [{
                "type": "string_pattern_mismatch", "loc": ["header", "x-request-id"],
                "msg": "must be 1 to 128 visible ASCII characters",
            }]})(scope, receive, send)
            return
        request_id = given or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


def _prepare(api: FastAPI) -> None:
    """Do at start-up what would otherwise slow the first requests a fresh server answers.

    - Recent FastAPI releases prepare the routes of an included router (their parameters and
      dependencies) on the first request that reaches it: about 0.4 s here. Releases without
      that step have nothing to prepare.
    - The OpenAPI document, which the check of query parameters reads
      (:func:`interfaces.api.errors.known_query_parameters`), is built once: about 0.3 s.

    Together they made an auditor's first ``GET /audit/verify`` on bank-full take 1.0-1.9 s
    instead of 0.6 s."""
    for route in api.router.routes:
        prepare = getattr(route, "effective_candidates", None)
        if callable(prepare):
            prepare()
    api.openapi()


def create_app(settings: Settings | None = None, *, run_projections: bool = True) -> FastAPI:
    """The tuohu API. ``settings`` default to ``Settings()`` (``TUOHU_*`` variables), read at startup.

    With ``run_projections`` (the default) the read models are kept up to date by a
    thread in this process; without it, separate workers (``tuohu projections run``) do it.
    """

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        config = settings or Settings()
        application = bootstrap(config)
        read_models = build_read_models(application, config)
        follower = ReadModelFollower(read_models) if run_projections else None
        api.state.application = application
        api.state.read_models = read_models
        api.state.read_model_follower = follower
        api.state.consistency_timeout = config.consistency_timeout
        if follower is not None:
            follower.start()
        _prepare(api)
        try:
            yield
        finally:
            if follower is not None:
                follower.stop()
            read_models.close()
            application.close()

    api = FastAPI(
        title="tuohu",
        summary="Customer acquisition (拓戶) as an event-sourced core: commands and queries.",
        description=(
            "Commands are `POST` routes, one per use case; each answers with the aggregate's new version "
            "(also as `ETag`) and the event log position. Every route but `/health` needs "
            "`Authorization: Bearer <token>` (`tuohu users add NAME --role ROLE`); the user is the actor on "
            "every event, and each operation lists the roles that may call it (401 without a valid token, "
            "403 for another role; a customer outside the caller's scope is a 404). Send `If-Match` to refuse "
            "a command on a changed aggregate (412), and `Idempotency-Key` to make a retry harmless (the same "
            "key with another body is a 422). `X-Request-ID` is recorded as the correlation id of the events "
            "and echoed back. Rules of the measures that refuse a command answer 409 with a stable `code`."
        ),
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(security.authorize), Depends(errors.known_query_parameters)],
    )

    api.add_middleware(RequestIdMiddleware)
    errors.install(api)
    for module in (customers, visits, proposals, contracts, risk_cases, team, users):
        api.include_router(module.commands)
        api.include_router(module.queries)
    api.include_router(reports.queries)
    api.include_router(audit.queries)
    if security.bench_noop_enabled():
        api.include_router(bench.commands)
    security.install(api)
    return api
