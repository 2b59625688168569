"""The runner decrypts only the personal fields the projections it fills read.

``PersonalDataMapper.to_domain_events(rows, fields=...)`` decrypts the personal fields
asked for and leaves each other one as a stand-in that refuses every use; each
projection names what it reads (``Projection.personal_fields_read``). The store holds
the demo workload, a slice of the Bank Marketing file (facts and screening inputs), a
restricted and an erased customer: every personal field that events carry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from application import privacy
from application.decoding import stored_rows
from application.privacy import KeyRing, PersonalDataMapper, PersonalFieldNotRead, Sealed
from domain.base import Context
from domain.customer import Customer
from projections import all_projections
from projections.db import make_engine
from projections.framework import Batch, Projection, ProjectionFailed, ProjectionRunner, ReadModelStore, TableSpec


@pytest.fixture
def stored(services, with_every_event) -> tuple[Any, Any, Any]:
    """``(application, read models, erased customer id)`` over a store with every personal field."""
    application, read_models = services
    erased, _ = with_every_event(200)
    return application, read_models, erased


def _personal_present(rows: list[Any], application: Any) -> set[tuple[str, str]]:
    """``(topic, field)`` of the personal fields stored encrypted in ``rows``."""
    found = set()
    for row in rows:
        state = application.mapper.transcoder.decode(row[4])
        for name in privacy.personal_fields(row[3]):
            if isinstance(state.get(name), dict) and "_enc" in state[name]:
                found.add((row[3], name))
    return found


def test_only_the_fields_asked_for_are_decrypted_and_the_others_are_sealed(stored) -> None:
    application, _, _ = stored
    rows = stored_rows(application.recorder, 1, 1_000_000)
    present = _personal_present(rows, application)
    assert {t for t, _ in present} >= set(privacy.PERSONAL_FIELDS)  # every kind of personal field is stored

    asked = {"tuohu:Customer.Registered": ("display_name",), "tuohu:Visit.Conducted": ("next_steps",),
             "tuohu:Customer.Reviewed": ("reason", "decision")}
    calls: list[str] = []

    def fields(topic: str) -> tuple[str, ...]:
        calls.append(topic)
        return asked.get(topic, ())

    plain = [application.mapper.to_domain_event(n)
             for n in application.recorder.select_notifications(start=1, limit=1_000_000)]
    default = application.mapper.to_domain_events(rows)
    some = application.mapper.to_domain_events(rows, fields=fields)
    assert sorted(calls) == sorted({row[3] for row in rows})  # once per topic
    sealed_seen = set()
    for row, slow, fast, selective in zip(rows, plain, default, some, strict=True):
        assert type(fast) is type(selective) is type(slow)
        assert fast.__dict__ == slow.__dict__  # without fields: as before, every field decrypted
        personal = privacy.personal_fields(row[3])
        for name, value in slow.__dict__.items():
            if name in personal and name not in asked.get(row[3], ()):
                assert selective.__dict__[name] is privacy.sealed(row[3], name)
                sealed_seen.add((row[3], name))
            else:
                assert selective.__dict__[name] == value, (row[3], name)
    assert present <= sealed_seen | {(t, n) for t, names in asked.items() for n in names}
    assert ("tuohu:Customer.FactsRecorded", "facts") in sealed_seen
    assert ("tuohu:Customer.Screened", "inputs") in sealed_seen


def test_a_sealed_field_refuses_every_use_but_repr() -> None:
    value = privacy.sealed("tuohu:Customer.FollowUpRecorded", "feedback")
    assert isinstance(value, Sealed) and value is privacy.sealed("tuohu:Customer.FollowUpRecorded", "feedback")
    assert "feedback" in repr(value)
    uses: list[Callable[[], Any]] = [
        lambda: str(value), lambda: f"{value}", lambda: format(value, ""), lambda: value == "x",
        lambda: value != "x", lambda: hash(value), lambda: bool(value), lambda: iter(value), lambda: len(value),
        lambda: value["name"], lambda: "a" in value, lambda: value.get("name"), lambda: value.upper(),
        lambda: value + "x", lambda: {value: 1}, lambda: sorted([value, value]),
        lambda: getattr(value, "anything", None),
    ]
    for use in uses:
        with pytest.raises(PersonalFieldNotRead) as refused:
            use()
        message = str(refused.value)
        assert "tuohu:Customer.FollowUpRecorded" in message and "feedback" in message
        assert "personal_fields_read" in message
    assert value is not None  # identity is no use of the data


def test_a_sealed_event_still_prints_and_notes_owners_and_forgets_erased_keys(stored) -> None:
    application, _, erased = stored
    rows = stored_rows(application.recorder, 1, 1_000_000)
    mapper = PersonalDataMapper(application.mapper.transcoder, keys=KeyRing(application.mapper.keys.store))
    events = mapper.to_domain_events(rows, fields=lambda topic: ())
    assert "<sealed display_name>" in repr(next(e for e in events if isinstance(e, Customer.Registered)))
    visits = [e for e in events if type(e).__qualname__ == "Visit.Planned"]
    assert visits and all(mapper._owners[str(v.originator_id)] == str(v.customer_id) for v in visits[-50:])
    assert str(erased) in mapper.keys._erased  # the erasure event was read: the key is never used again


def test_a_reader_that_notes_no_owners_still_forgets_erased_keys(stored) -> None:
    """The read models decode without noting owners (they write no events); an erasure they read still
    makes its key unusable."""
    application, _, erased = stored
    rows = stored_rows(application.recorder, 1, 1_000_000)
    mapper = PersonalDataMapper(application.mapper.transcoder, keys=KeyRing(application.mapper.keys.store))
    events = mapper.to_domain_events(rows, fields=lambda topic: (), note_owners=False)

    assert any(type(e).__qualname__ == "Visit.Planned" for e in events)
    assert mapper._owners == {}
    assert str(erased) in mapper.keys._erased


def test_a_fill_notes_no_owners(stored) -> None:
    _application, read_models, _erased = stored
    mapper = read_models.runner.mapper
    mapper._owners.clear()

    _fill(read_models.runner, "pipeline")

    assert mapper._owners == {}


def _fill(runner: ProjectionRunner, name: str) -> dict[str, str]:
    generation = runner.store.new_generation(name)
    try:
        runner.fill(name, generation)
        return runner.store.checksum(name, generation)
    finally:
        runner.store.drop_generation(name, generation)


class _EveryField:
    """The mapper, decoding in bulk without ``fields``: every personal field decrypted."""

    def __init__(self, mapper: PersonalDataMapper) -> None:
        self._mapper = mapper

    def to_domain_events(self, rows: Any) -> list[Any]:
        return self._mapper.to_domain_events(rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mapper, name)


def test_each_projection_filled_alone_writes_what_it_writes_with_every_field_decrypted(stored) -> None:
    """A projection that reads a field it does not name would fail here (the field is sealed), or, if it
    named a field wrongly and used it anyway, differ from the fill with every field decrypted."""
    application, read_models, _ = stored
    store = read_models.store
    selective = ProjectionRunner(application.recorder, application.mapper, store)
    everything = ProjectionRunner(application.recorder, _EveryField(application.mapper), store)
    for projection in all_projections():
        assert _fill(selective, projection.name) == _fill(everything, projection.name), projection.name
    read = selective._fields_read(frozenset(store.projections))
    assert read("tuohu:Customer.FactsRecorded") == read("tuohu:Customer.Screened") == ("reason",)  # the trail's
    assert read("tuohu:Customer.Registered") == ("display_name", "reason")
    assert read("tuohu:RiskCase.Identified") == ("description", "reason")


class _FieldsOnly:
    """The mapper, decoding in bulk with ``fields`` but no ``note_owners`` keyword; records what it was given."""

    def __init__(self, mapper: PersonalDataMapper) -> None:
        self._mapper = mapper
        self.given: list[Any] = []

    def to_domain_events(self, rows: Any, fields: Any = None) -> list[Any]:
        self.given.append(fields)
        return self._mapper.to_domain_events(rows, fields=fields)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._mapper, name)


def test_a_bulk_decoder_without_note_owners_still_decrypts_only_the_fields_read(stored) -> None:
    application, read_models, _ = stored
    mapper = _FieldsOnly(application.mapper)
    runner = ProjectionRunner(application.recorder, mapper, read_models.store)

    _fill(runner, "pipeline")

    assert mapper.given and all(fields is not None for fields in mapper.given)
    assert mapper.given[0]("tuohu:Customer.Registered") == ("display_name",)


class _ReadsReason(Projection):
    """Keeps why customers were marked key customers; names the reason as read only when told to."""

    name = "reason_reader"
    specs = (TableSpec("reasons_seen", lambda: __import__("projections.actors", fromlist=["x"])._reason_columns()),)
    declared: tuple[str, ...] = ()

    def personal_fields_read(self, event_class: type) -> tuple[str, ...]:
        return type(self).declared

    def handlers(self) -> dict[type, Any]:
        def marked(batch: Batch, event: Any) -> None:
            batch.add("reasons_seen", {"position": batch.position, "customer_id": None, "reason": event.reason})
        return {Customer.MarkedKeyCustomer: marked}


def test_a_handler_reading_a_field_it_did_not_name_stops_the_projection_at_that_event(services, settings) -> None:
    application, _ = services
    ctx = Context("mgr-wu", "customer_manager")
    customer = application.register_customer(ctx, kind="retail", acquisition_channel="branch", source_detail="x",
                                             segment="mass", manager_id="mgr-wu", branch="B1",
                                             display_name="Wu Lan").aggregate_id
    bad = application.mark_key_customer(ctx, customer, reason="Wu Lan's family deposits").position
    engine = make_engine(settings)
    store = ReadModelStore(engine, [_ReadsReason()])
    runner = ProjectionRunner(application.recorder, application.mapper, store)
    try:
        _ReadsReason.declared = ()
        for attempt in (runner.catch_up, lambda: runner.fill("reason_reader", store.new_generation("reason_reader"))):
            with pytest.raises(ProjectionFailed) as failure:
                attempt()
            assert failure.value.position == bad
            assert "PersonalFieldNotRead" in failure.value.error and "reason" in failure.value.error
            assert "personal_fields_read" in failure.value.error
        _ReadsReason.declared = ("reason",)
        ProjectionRunner(application.recorder, application.mapper, store).catch_up()  # a runner reads them once
        with engine.connect() as conn:
            rows = conn.execute(store.tables("reason_reader").reasons_seen.select()).mappings().all()
        assert [r["reason"] for r in rows] == ["Wu Lan's family deposits"]
    finally:
        engine.dispose()
