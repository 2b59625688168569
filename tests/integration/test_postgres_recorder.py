"""The event store's PostgreSQL recorder writes without psycopg's pipeline mode (a large write was
seen to hang in ``Pipeline.sync``), with the library's outcomes: the events in one transaction, their
notification ids in order, a conflict refused whole."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder

from application import Settings, bootstrap
from application.postgres import PostgresEventRecorder
from domain.base import Context

pytestmark = pytest.mark.parametrize("settings", ["postgres"], indirect=True)


@pytest.fixture
def postgres_app(settings: Settings) -> Iterator:
    application = bootstrap(settings)
    try:
        yield application
    finally:
        application.close()


@pytest.fixture
def no_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("pipeline mode was used")

    monkeypatch.setattr(psycopg.Connection, "pipeline", refused)


def _events(count: int, size: int = 2_000) -> list[StoredEvent]:
    return [StoredEvent(uuid.uuid4(), 1, "tests:Noted", b"x" * size) for _ in range(count)]


def test_the_store_records_with_tuohus_recorder(postgres_app) -> None:
    assert type(postgres_app.recorder) is PostgresEventRecorder
    assert isinstance(postgres_app.recorder, PostgresApplicationRecorder)


def test_a_large_write_is_recorded_without_pipeline_mode(postgres_app, no_pipeline) -> None:
    recorder = postgres_app.recorder
    before = recorder.max_notification_id() or 0
    events = _events(3_000)  # about 6 MB of states in one INSERT

    ids = recorder.insert_events(events)

    assert ids == list(range(before + 1, before + 3_001))
    stored = recorder.select_notifications(start=before + 1, limit=5_000)
    assert [(n.originator_id, n.state) for n in stored] == [(e.originator_id, e.state) for e in events]


def test_a_conflicting_write_is_refused_whole(postgres_app, no_pipeline) -> None:
    recorder = postgres_app.recorder
    first = _events(3)
    recorder.insert_events(first)
    head = recorder.max_notification_id()
    clash = [*_events(2), StoredEvent(first[1].originator_id, 1, "tests:Noted", b"again")]

    with pytest.raises(IntegrityError):
        recorder.insert_events(clash)

    assert recorder.max_notification_id() == head
    assert not recorder.select_events(clash[0].originator_id)
    after = recorder.insert_events(_events(1))  # usable after the refusal (its ids may have been used up)
    assert recorder.max_notification_id() == after[0] > head


def test_commands_record_their_events(postgres_app, no_pipeline) -> None:
    ctx = Context("mgr-wu", "customer_manager")
    result = postgres_app.register_customer(ctx, kind="retail", acquisition_channel="branch",
                                            source_detail="counter", segment="mass", manager_id="mgr-wu",
                                            branch="B1")
    assert result.position == postgres_app.recorder.max_notification_id()
    events = postgres_app.recorder.select_notifications(start=result.position, limit=1)
    assert events[0].topic.endswith("Customer.Registered")
