"""The bulk decoding of stored events (application.decoding, PersonalDataMapper.to_domain_events)
gives the events the library's mapper gives, on real stores, for every event type.

The stores hold the demo workload (every business aggregate), a slice of the Bank
Marketing file, a customer whose data were erased (their fields read as erased), a
restricted one, and command receipts (a class version above 1, upcast when read).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import (DatetimeAsISO, DecimalAsStr, JSONTranscoder, TranscodingNotRegisteredError,
                                      UUIDAsHex)

from application.app import DateAsISO
from application.decoding import StateDecoder, UUIDs, stored_rows


def _same(fast: Any, slow: Any) -> None:
    assert type(fast) is type(slow)
    assert list(fast.__dict__) == list(slow.__dict__)
    for name, value in slow.__dict__.items():
        assert type(fast.__dict__[name]) is type(value), name
        assert fast.__dict__[name] == value, name


def _every_event_both_ways(application: Any) -> set[str]:
    rows = stored_rows(application.recorder, 1, 1_000_000)
    notifications = application.recorder.select_notifications(start=1, limit=1_000_000)
    assert [(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows] == [
        (n.id, n.originator_id, n.originator_version, n.topic, bytes(n.state)) for n in notifications]
    fast = application.mapper.to_domain_events(rows)
    slow = [application.mapper.to_domain_event(n) for n in notifications]
    assert len(fast) == len(slow) == len(rows)
    for one, other in zip(fast, slow):
        _same(one, other)
    # pages: from any start, at most the limit
    assert [r[0] for r in stored_rows(application.recorder, 5, 7)] == [n.id for n in notifications[4:11]]
    return {n.topic for n in notifications}


def test_bulk_decoding_equals_the_mappers_for_every_event_type(services, with_every_event) -> None:
    application, _ = services
    with_every_event(400)

    topics = _every_event_both_ways(application)

    assert "tuohu:Customer.PersonalDataErased" in topics and "tuohu:Customer.ProcessingRestricted" in topics
    assert "tuohu:Customer.FactsRecorded" in topics and "tuohu:Visit.Conducted" in topics


def test_a_state_the_fast_parser_rejects_is_decoded_by_the_transcoder() -> None:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), DateAsISO()):
        transcoder.register(transcoding)
    decoder = StateDecoder(transcoder)
    samples = [
        {"a": 1, "big": 2 ** 70, "half": 1.5, "neg": -(2 ** 65), "none": None, "yes": True},
        {"when": {"_type_": "date_iso", "_data_": "2024-02-29"}, "amounts": [Decimal("1.10"), [Decimal("-0")]],
         "ids": [UUID(int=7), {"inner": UUID(int=8)}], "deep": {"x": {"y": [date(2020, 1, 1)]}}},
        [1, {"_type_": "decimal_str", "_data_": "2.50"}],
        {"_type_": "uuid_hex", "_data_": UUID(int=9).hex},
        {"three": {"_type_": "decimal_str", "_data_": "1", "more": 1}, "one": {"_type_": "x"}},
        {"text": "\u00e9\u4e2d\U0001f600", "empty": {}, "list": [], "at": datetime(2009, 5, 5, 9, 30, 1, 250),
         "zoned": datetime(1999, 1, 2, 3, 4, 5, 999999, tzinfo=timezone(timedelta(hours=8))),
         "utc": datetime(2009, 12, 31, 23, 59, 59, tzinfo=timezone.utc)},
        "just text",
    ]
    for sample in samples:
        data = transcoder.encode(sample)
        assert repr(decoder.decode(data)) == repr(transcoder.decode(data))
    for raw in (b'{"n": NaN, "i": Infinity}', b'{"s": "\\ud800"}', b'{"big": 123456789012345678901234567890}',
                b'[18446744073709551616, -9223372036854775809]', b'18446744073709551616', b'{"f": [1.0, 2.5e-3]}'):
        expected = transcoder.decode(raw)
        got = decoder.decode(raw)
        assert repr(got) == repr(expected)
    unknown = b'{"v": {"_type_": "nothing_like_it", "_data_": "1"}}'
    with pytest.raises(TranscodingNotRegisteredError):
        decoder.decode(unknown)
    with pytest.raises(ValueError):
        decoder.decode(b'{"v": 1')


def test_the_standard_json_module_gives_the_same_when_orjson_is_missing(monkeypatch) -> None:
    from application import decoding

    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
        transcoder.register(transcoding)
    monkeypatch.setattr(decoding, "_loads", decoding.json.loads)
    data = transcoder.encode({"at": datetime(2009, 5, 5, tzinfo=timezone.utc), "n": [2 ** 70, Decimal("1.5")]})
    assert repr(StateDecoder(transcoder).decode(data)) == repr(transcoder.decode(data))


def test_uuids_reuses_the_uuid_of_a_text_and_forgets_when_full() -> None:
    uuids = UUIDs(size=2)
    first = uuids("ff74c5757ff95a93b515572dbd6c6bd2")
    assert first == UUID("ff74c5757ff95a93b515572dbd6c6bd2") and uuids("ff74c5757ff95a93b515572dbd6c6bd2") is first
    uuids(UUID(int=1).hex)
    uuids(UUID(int=2).hex)  # full: starts again
    assert uuids("ff74c5757ff95a93b515572dbd6c6bd2") == first
