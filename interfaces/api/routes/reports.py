"""Reports over the read models (measures §5) and the service's health."""

from __future__ import annotations

from fastapi import APIRouter

from interfaces.api.deps import AppDep, ReadModelsDep, pipeline_caught_up
from interfaces.api.schemas import HealthPublic

queries = APIRouter(tags=["reports"])


@queries.get("/reports/funnel", operation_id="funnel")
def funnel(read_models: ReadModelsDep) -> dict[str, int]:
    """Customers that reached each acquisition stage, in funnel order, caught up to the latest event (§5)."""
    pipeline_caught_up(read_models)
    return read_models.funnel()


@queries.get("/health", operation_id="health")
def health(app: AppDep) -> HealthPublic:
    """Liveness and the event log's newest position."""
    return HealthPublic(status="ok", position=app.position())
