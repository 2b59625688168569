"""The event store's PostgreSQL recorder: the library's, writing without pipeline mode.

The library's :class:`eventsourcing.postgres.PostgresApplicationRecorder` sends
its three statements of a write (the table lock, the ``NOTIFY`` and the
``INSERT … RETURNING``) in one psycopg pipeline and waits in ``Pipeline.sync``.
With a large write (an import batch of some thousands of events, megabytes of
parameters) that wait was seen to hang for good, the server waiting for the
client (``ClientRead``) and the client for the server: the pipeline-mode
deadlock reported as psycopg issue #685. :class:`PostgresRecorder` sends the
same statements one after the other in the same transaction, so each is sent
whole before its result is read. The statements, the lock, the notification,
the ids returned and the errors raised are the library's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry


class PostgresRecorder(PostgresApplicationRecorder):
    """:class:`~eventsourcing.postgres.PostgresApplicationRecorder` whose :meth:`insert_events` runs
    its statements without psycopg's pipeline mode (see the module docstring)."""

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        """Record ``stored_events`` in one transaction, after taking the events table's lock;
        returns their notification ids, in order. Raises the library's ``IntegrityError`` when an
        event's (originator id, version) is already recorded; nothing is recorded then."""
        if self.datastore.enable_db_functions:
            return super().insert_events(stored_events, **kwargs)
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return None
            self._insert_stored_events(curs, stored_events, **kwargs)
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
