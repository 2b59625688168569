"""tuohu's use cases: load -> act -> save; no HTTP, no SQL."""

from application.app import AlreadyExists, CommandResult, ConcurrentUpdate, NotFound, TuohuApplication, VersionMismatch
from application.bootstrap import bootstrap
from application.settings import Settings

__all__ = ["AlreadyExists", "CommandResult", "ConcurrentUpdate", "NotFound", "Settings", "TuohuApplication", "VersionMismatch", "bootstrap"]
