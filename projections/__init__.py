"""Read models built from the event log, with tracked positions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from projections.db import make_engine
from projections.pipeline import FUNNEL_STAGES, PipelineProjection, ProjectionFailed

if TYPE_CHECKING:
    from application.app import TuohuApplication
    from application.settings import Settings


def build_pipeline(app: TuohuApplication, settings: Settings) -> PipelineProjection:
    """The pipeline projection over ``app``'s event log, in the settings' read-model database."""
    return PipelineProjection(app.recorder, app.mapper, make_engine(settings))


__all__ = ["FUNNEL_STAGES", "PipelineProjection", "ProjectionFailed", "build_pipeline", "make_engine"]
