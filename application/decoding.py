"""Decoding stored events in bulk, with the same results as the library's mapper, faster.

A rebuild of the read models decodes every stored event once. The library's
:class:`eventsourcing.persistence.JSONTranscoder` parses the state with the
standard ``json`` module and calls a Python hook for every JSON object; its
:class:`~eventsourcing.persistence.Mapper` then resolves the topic and converts
the originator id for each event. :class:`StateDecoder` parses with ``orjson``
(the standard ``json`` when it is not installed) and then applies the
transcoder's registered transcodings in one walk over the parsed state, bottom
up, as the hook would: every object of exactly two keys ``_type_`` and
``_data_`` becomes ``transcoder.names[_type_].decode(_data_)``. The library's
own transcodings of UUIDs (``uuid_hex``) and datetimes (``datetime_iso``) are
applied without their per-call checks, and the UUIDs seen last are reused (a
``UUID`` is immutable, and an aggregate's events come close together).

Whatever the fast path cannot decode - a state ``orjson`` rejects (``NaN``, lone
surrogates), an unknown transcoding, a failing one - is decoded again by the
transcoder itself, so errors are the library's. So is a state with a number
``orjson`` parses as a float: an integer beyond 64 bits becomes a float there,
an ``int`` in ``json`` (floats are rare in tuohu's events: decimals are text).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, UUIDAsHex
from eventsourcing.sqlite import SQLiteApplicationRecorder

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; json gives the same values, slower
    orjson = None  # type: ignore[assignment]

_loads: Callable[[bytes], Any] = orjson.loads if orjson is not None else json.loads

_TYPE, _DATA = "_type_", "_data_"


class _Unsure(Exception):
    """The parsed state holds a float, which may have been an integer beyond 64 bits in the JSON text."""


class UUIDs:
    """``UUID(text)`` for the texts seen last: the same object for the same text, made once.

    Holds at most ``size`` UUIDs; when full it starts again empty."""

    def __init__(self, size: int = 1 << 16) -> None:
        self.size = size
        self._known: dict[str, UUID] = {}

    def __call__(self, text: str) -> UUID:
        found = self._known.get(text)
        if found is None:
            if len(self._known) >= self.size:
                self._known.clear()
            found = self._known[text] = UUID(text)
        return found


class StateDecoder:
    """``transcoder.decode(data)`` in fewer steps (see the module docstring); equal results."""

    def __init__(self, transcoder: JSONTranscoder, uuids: UUIDs | None = None) -> None:
        self.transcoder = transcoder
        self.uuids = uuids or UUIDs()
        self._decoders: dict[str, Callable[[Any], Any]] = {}

    def decode(self, data: bytes) -> Any:
        """The decoded state: ``transcoder.decode(data)``."""
        try:
            state = _loads(data)
            kind = state.__class__
            if kind is dict or kind is list:
                return self._value(state)
            if kind is float:
                raise _Unsure
            return state
        except Exception:  # noqa: BLE001 - the transcoder decodes it again, and raises its own error if any
            return self.transcoder.decode(data)

    def _decoder(self, name: str) -> Callable[[Any], Any]:
        found = self._decoders.get(name)
        if found is None:
            transcoding = self.transcoder.names[name]
            kind = type(transcoding)
            if kind is DatetimeAsISO:
                found = _iso_datetime
            elif kind is UUIDAsHex:
                found = self.uuids
            else:
                found = transcoding.decode
            self._decoders[name] = found
        return found

    def _transcoded(self, name: Any, data: Any) -> Any:
        found = self._decoders.get(name)
        return (found or self._decoder(name))(data)

    def _value(self, value: Any) -> Any:
        """A parsed dict or list, decoded (a dict's inside first, as the hook sees it)."""
        if value.__class__ is dict:
            self._object(value)
            if len(value) == 2 and _TYPE in value and _DATA in value:
                return self._transcoded(value[_TYPE], value[_DATA])
            return value
        return self._list(value)

    def _object(self, value: dict[str, Any]) -> None:
        """Decode the dicts and lists inside ``value``, in place."""
        for key, item in value.items():
            kind = item.__class__
            if kind is dict:
                if len(item) == 2 and _TYPE in item and _DATA in item and item[_DATA].__class__ is str:
                    # the commonest case, a transcoded scalar: nothing inside to decode first
                    name = item[_TYPE]
                    value[key] = (self._decoders.get(name) or self._decoder(name))(item[_DATA])
                else:
                    value[key] = self._value(item)
            elif kind is list:
                value[key] = self._list(item)
            elif kind is float:
                raise _Unsure

    def _list(self, value: list[Any]) -> list[Any]:
        for index, item in enumerate(value):
            kind = item.__class__
            if kind is dict or kind is list:
                value[index] = self._value(item)
            elif kind is float:
                raise _Unsure
        return value


def _iso_datetime(data: str) -> datetime:
    """:meth:`DatetimeAsISO.decode` (which asserts a ``str``; ``fromisoformat`` takes nothing else)."""
    return datetime.fromisoformat(data)


StoredRow = tuple[int, Any, int, str, bytes]
"""``(notification id, originator id, originator version, topic, state)`` of a stored event."""


def stored_rows(recorder: Any, start: int, limit: int, uuids: UUIDs | None = None) -> list[StoredRow]:
    """The stored events from notification id ``start`` on, at most ``limit``, in order: what
    ``recorder.select_notifications(start=start, limit=limit)`` returns, as tuples.

    Over the library's SQLite recorder this is the recorder's own ``SELECT``, without a
    ``Notification`` object per event, and the originator ids are converted as the
    recorder converts them (to ``UUID``, through ``uuids``, in a store of UUID ids).
    Other recorders are asked as usual."""
    if type(recorder).select_notifications is SQLiteApplicationRecorder.select_notifications:
        with recorder.datastore.transaction(commit=False) as curs:
            cursor = getattr(curs, "sqlite_cursor", None)
            if cursor is not None:
                cursor.row_factory = None  # tuples rather than the pool's sqlite3.Row: unpacked faster
            curs.execute(f"SELECT rowid, originator_id, originator_version, topic, state "  # noqa: S608 - a table name
                         f"FROM {recorder.events_table_name} WHERE rowid>=? ORDER BY rowid LIMIT ?", (start, limit))
            rows = curs.fetchall()
        if recorder.datastore.originator_id_type != "uuid":
            return [tuple(row) for row in rows]  # type: ignore[misc]
        to_uuid = uuids or UUIDs()
        return [(i, to_uuid(o), v, t, s) for i, o, v, t, s in rows]
    return [(n.id, n.originator_id, n.originator_version, n.topic, n.state)
            for n in recorder.select_notifications(start=start, limit=limit)]
