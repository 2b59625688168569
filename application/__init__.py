"""tuohu's use cases: load -> act -> save; no HTTP, no SQL.

The names below are imported on first use, so that a command needing one module
of this package (``tuohu audit verify`` needs :mod:`application.chain` alone)
does not load the domain model first.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Bound here, after the submodule of the same name: importing ``application.bootstrap`` binds the
# package's ``bootstrap`` to the module, and this binds it back to the function (the module is light).
from application.bootstrap import bootstrap
from application.settings import Settings

if TYPE_CHECKING:
    from application.app import (AlreadyExists, CommandResult, ConcurrentUpdate, NotFound, TuohuApplication,
                                 VersionMismatch)

_EXPORTS = {"AlreadyExists": "application.app", "CommandResult": "application.app",
            "ConcurrentUpdate": "application.app", "NotFound": "application.app",
            "TuohuApplication": "application.app", "VersionMismatch": "application.app"}

__all__ = ["AlreadyExists", "CommandResult", "ConcurrentUpdate", "NotFound", "Settings", "TuohuApplication",
           "VersionMismatch", "bootstrap"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'application' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
