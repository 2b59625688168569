"""The event catalogue: every stored event, its fields, and the rule it serves.

Generated from the domain classes themselves, so it cannot drift from the
code: ``tuohu events catalogue`` prints it, and the README carries a copy that
a test keeps in step.
"""

from __future__ import annotations

import dataclasses
import inspect

from domain import AGGREGATES
from domain.base import TuohuAggregate

COMMON = {f.name for f in dataclasses.fields(TuohuAggregate.Created)}


def events_of(aggregate: type) -> list[type]:
    """The concrete event classes declared on ``aggregate``, in declaration order."""
    found = []
    for name, value in vars(aggregate).items():
        if isinstance(value, type) and dataclasses.is_dataclass(value) and hasattr(value, "TOPIC") \
                and name not in ("Event", "Created"):
            found.append(value)
    return found


def rule_of(event_class: type) -> str:
    """The event's own docstring (the library redefines event classes; the written one is in the MRO)."""
    for cls in event_class.__mro__:
        doc = cls.__dict__.get("__doc__")
        if cls.__name__ == event_class.__name__ and doc and not doc.startswith(f"{cls.__name__}("):
            return inspect.cleandoc(doc).replace("\n", " ").replace("|", "/")
    return ""


def _type_name(annotation: object) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return str(text).replace("typing.", "").replace(" | ", " or ")


def catalogue_markdown() -> str:
    """The catalogue as a Markdown table per aggregate."""
    lines = [
        "Every event also carries the evidence fields `actor_id`, `actor_role`, `occurred_at` (business time, UTC), "
        "`recorded_at` (the library's `timestamp`, UTC), `reason`, `channel`, `correlation_id`, `causation_id` and "
        "`command_id`, plus the library's `originator_id` and `originator_version`.",
        "",
    ]
    for aggregate in AGGREGATES:
        lines += [f"### {aggregate.__name__} (`{aggregate.TOPIC}`)", "",
                  "| event | topic | fields | rule |", "|---|---|---|---|"]
        for event_class in events_of(aggregate):
            own = [f for f in dataclasses.fields(event_class) if f.name not in COMMON]
            fields = ", ".join(f"`{f.name}`: {_type_name(f.type)}" for f in own) or "—"
            lines.append(f"| {event_class.__name__} | `{event_class.TOPIC}` | {fields} | {rule_of(event_class)} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
