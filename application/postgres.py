"""The event store's PostgreSQL recorder: the library's, writing without pipeline mode.

The library's :class:`eventsourcing.postgres.PostgresApplicationRecorder` sends
its three statements of a write (the table lock, the ``NOTIFY`` and the
``INSERT … RETURNING``) in one psycopg pipeline and waits in ``Pipeline.sync``.
A large write there (a Bank Marketing import batch: some thousands of events,
megabytes of parameters) was seen to hang for good, with psycopg 3.3.9: the
client waiting in ``Pipeline.sync``, the server waiting for the client
(``ClientRead``), no lock held - as in psycopg issue #685, whose fix (psycopg
3.1.18) is in that release; the cause was not found. :class:`PostgresEventRecorder`
sends the same statements one after the other in the same transaction, so each
is sent whole before its result is read, and pipeline mode is not used at all.
The statements, the lock, the notification, the ids returned and the errors
raised are the library's; one-event saves took the same time either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry


class PostgresEventRecorder(PostgresApplicationRecorder):
    """:class:`~eventsourcing.postgres.PostgresApplicationRecorder` whose :meth:`insert_events` runs
    its statements without psycopg's pipeline mode (see the module docstring)."""

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Record ``stored_events`` in one transaction, after taking the events table's lock;
        returns their notification ids, in order (None for no events). Raises the library's
        ``IntegrityError`` when an event's (originator id, version) is already recorded; nothing
        is recorded then. Retried as the library's is, on its interface and operational errors."""
        if self.datastore.enable_db_functions:  # the library's database function: no pipeline there
            unretried = PostgresApplicationRecorder.insert_events.__wrapped__  # type: ignore[attr-defined]
            return unretried(self, stored_events, **kwargs)
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return None
            self._insert_stored_events(curs, stored_events, **kwargs)
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
