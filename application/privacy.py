"""Customers' personal data: encrypted per customer, restricted, erased (PIPL Art. 44-47, GDPR Art. 17-18).

**Crypto-shredding.** The fields named in :data:`PERSONAL_FIELDS` are encrypted
by :class:`PersonalDataMapper` before an event is stored, with AES-256-GCM
(``cryptography``) under a key of the customer the event is about, and
decrypted when it is read. The domain, the projections and the importers see
plain values and do not change. A stored field becomes the envelope::

    {"_enc": base64(nonce(12 bytes) || ciphertext || tag), "kid": "<customer id>"}   (+ "as": "dict" | "list")

authenticated with ``"<kid>|<topic>|<field>"`` as associated data, so a
ciphertext cannot be moved to another customer, event type or field. Keys live
in ``tuohu_keys`` (customer_id, key, created_at, destroyed_at), apart from the
events: ``keys.sqlite`` (``PRAGMA secure_delete=ON``) next to ``events.sqlite``,
or a table in the same PostgreSQL schema. A new key is written, durably, before
the first event encrypted with it.

Erasing a person destroys their key: every envelope of theirs then reads as
:data:`ERASED` (``"[erased]"``, ``{"_erased": true}`` for a dict, ``["[erased]"]``
for a list), aggregates still load, and the stored bytes - and with them the
audit chain - do not change.

**Whose data.** An event of a Customer belongs to that customer; an event that
carries ``customer_id`` (a visit planned, a proposal or contract drafted, a risk
identified) to that customer; any later event of the same visit, proposal,
contract or risk case to the customer of its first event.

**Which fields** (and why): name (``Registered.display_name``); the basic,
financial and needs facts (name, gender, birth date or age, contact, address,
identity document, occupation, income, assets: PIPL Art. 28 counts financial
accounts as sensitive); the screening inputs taken from those facts; and free
text about the person - follow-up and visit feedback, needs learned, next steps,
visit background and talking points, returned-document reasons, the customer's
signatory, a risk case's description and findings, and the ``reason`` of every
event of a customer, visit or risk case and of a customer's acceptance or
refusal of a proposal. Not encrypted: the business facts of a company, codes,
amounts of business figures, scores, outcomes, and the reasons of the
restriction and erasure themselves (they are the evidence and must carry no
personal data).
"""

from __future__ import annotations

import base64
import copy
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import (EventStore, Mapper, Notification, Recording, StoredEvent, find_id_convertor,
                                      str_to_uuid_convertor)
from eventsourcing.utils import get_topic, resolve_topic

from application.decoding import StateDecoder, StoredRow

from domain.contract import Contract
from domain.customer import PersonalDataWasErased

if TYPE_CHECKING:
    from application.app import TuohuApplication

ERASED = "[erased]"
RESTRICTED = "[restricted]"
ERASED_DICT: dict[str, Any] = {"_erased": True}

#: Event topic -> fields holding personal data (besides ``reason``, see below).
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    "tuohu:Customer.Registered": ("display_name",),
    "tuohu:Customer.FactsRecorded": ("facts",),
    "tuohu:Customer.Screened": ("inputs",),
    "tuohu:Customer.DocumentsReviewed": ("return_reasons",),
    "tuohu:Customer.FollowUpRecorded": ("feedback",),
    "tuohu:Visit.Prepared": ("background", "talking_points"),
    "tuohu:Visit.Conducted": ("needs_learned", "next_steps"),
    "tuohu:Visit.FeedbackRouted": ("feedback",),
    "tuohu:Contract.Signed": ("customer_signatory",),
    "tuohu:RiskCase.Identified": ("description",),
    "tuohu:RiskCase.Disposed": ("findings",),
}
#: Fact groups about a company, not a person: stored in clear.
NON_PERSONAL_FACT_GROUPS = ("business",)
#: The ``reason`` of these events is free text about the person.
REASON_IS_PERSONAL_PREFIXES = ("tuohu:Customer.", "tuohu:Visit.", "tuohu:RiskCase.")
REASON_IS_PERSONAL = ("tuohu:Proposal.AcceptedByCustomer", "tuohu:Proposal.DeclinedByCustomer")
#: The evidence of restriction and erasure: never encrypted.
RESTRICTED_TOPIC = "tuohu:Customer.ProcessingRestricted"
ERASED_TOPIC = "tuohu:Customer.PersonalDataErased"
PRIVACY_TOPICS = (RESTRICTED_TOPIC, ERASED_TOPIC)

_CUSTOMER_PREFIX = "tuohu:Customer."
_FACTS_TOPIC = "tuohu:Customer.FactsRecorded"
_fields_cache: dict[str, tuple[str, ...]] = {}


def personal_fields(topic: str) -> tuple[str, ...]:
    """The personal fields of events with ``topic`` (``reason`` included where it is about the person)."""
    found = _fields_cache.get(topic)
    if found is None:
        fields = PERSONAL_FIELDS.get(topic, ())
        if topic not in PRIVACY_TOPICS and (topic.startswith(REASON_IS_PERSONAL_PREFIXES)
                                            or topic in REASON_IS_PERSONAL):
            fields = (*fields, "reason")
        found = _fields_cache[topic] = fields
    return found


def erased_like(value: Any) -> Any:
    """The erased marker shaped like ``value`` (text, dict or list)."""
    if isinstance(value, dict):
        return dict(ERASED_DICT)
    if isinstance(value, list):
        return [ERASED]
    return ERASED


def is_erased(value: Any) -> bool:
    """Whether ``value`` is one of the erased markers."""
    return value == ERASED or value == ERASED_DICT or value == [ERASED]


class KeyConflict(RuntimeError):
    """Another process created a key for the same customer first; nothing was written (retry)."""


class PersonalDataUnreadable(RuntimeError):
    """A stored envelope does not decrypt with its customer's key: the stored bytes were altered."""


class PersonalFieldNotRead(LookupError):
    """A personal field left sealed by :meth:`PersonalDataMapper.to_domain_events` (its reader did not ask
    for it) was used: the projection reading it must name it in its ``personal_fields_read``."""


class Sealed:
    """A personal field :meth:`PersonalDataMapper.to_domain_events` was not asked to decrypt.

    It stands in the event's state for the envelope (or clear value) so that a reader that did not declare
    the field cannot store ciphertext, or act on it, without noticing: every use of it - ``str``,
    ``format``, comparison, ``hash``, truth, length, iteration, ``[...]``, ``in``, attributes -
    raises :class:`PersonalFieldNotRead` naming the event topic and the field. ``repr`` works (error
    messages print events). One instance per topic and field (:func:`sealed`)."""

    __slots__ = ("_field", "_topic")

    def __init__(self, topic: str, field: str) -> None:
        object.__setattr__(self, "_topic", topic)
        object.__setattr__(self, "_field", field)

    def __repr__(self) -> str:
        return f"<sealed {object.__getattribute__(self, '_field')}>"

    def _refuse(self, *_: Any, **__: Any) -> Any:
        topic, field = object.__getattribute__(self, "_topic"), object.__getattribute__(self, "_field")
        raise PersonalFieldNotRead(f"{topic}.{field} was read but not decrypted: the personal fields a projection "
                                   f"reads must be named in its personal_fields_read ({field!r} of {topic})")

    def __getattr__(self, name: str) -> Any:
        self._refuse()

    __setattr__ = __delattr__ = __str__ = __format__ = __bytes__ = __bool__ = __len__ = __iter__ = _refuse
    __getitem__ = __contains__ = __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = __hash__ = _refuse
    __int__ = __float__ = __index__ = __add__ = __radd__ = _refuse


_SEALED: dict[tuple[str, str], Sealed] = {}


def sealed(topic: str, field: str) -> Sealed:
    """The :class:`Sealed` stand-in of ``field`` of events with ``topic`` (one per topic and field)."""
    found = _SEALED.get((topic, field))
    if found is None:
        found = _SEALED[(topic, field)] = Sealed(topic, field)
    return found


# --------------------------------------------------------------------------
# Key stores: tuohu_keys (customer_id, key, created_at, destroyed_at)
# --------------------------------------------------------------------------


class KeyStore:
    """Where customers' keys are kept. ``get`` answers ``{kid: key}`` for known
    kids, with None for a destroyed key; unknown kids are absent."""

    def get(self, kids: Iterable[str]) -> dict[str, bytes | None]:
        raise NotImplementedError

    def all(self, limit: int) -> dict[str, bytes | None] | None:
        """Every key, or None when there are more than ``limit``."""
        raise NotImplementedError

    def add(self, keys: dict[str, bytes], created_at: datetime) -> None:
        """Store new keys in one transaction. Raises :class:`KeyConflict` if one exists."""
        raise NotImplementedError

    def destroy(self, kid: str, when: datetime) -> bool:
        """Destroy ``kid``'s key (and keep a row that says so). True if a key was destroyed now."""
        raise NotImplementedError

    def status(self, kid: str) -> dict[str, Any] | None:
        """``{customer_id, created_at, destroyed_at}`` (never the key), or None."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class MemoryKeyStore(KeyStore):
    """Keys in memory (the library's POPO store and in-memory SQLite)."""

    def __init__(self) -> None:
        self._rows: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, kids: Iterable[str]) -> dict[str, bytes | None]:
        with self._lock:
            return {k: self._rows[k]["key"] for k in kids if k in self._rows}

    def all(self, limit: int) -> dict[str, bytes | None] | None:
        with self._lock:
            return None if len(self._rows) > limit else {k: r["key"] for k, r in self._rows.items()}

    def add(self, keys: dict[str, bytes], created_at: datetime) -> None:
        with self._lock:
            if any(k in self._rows for k in keys):
                raise KeyConflict(f"a key already exists for {sorted(k for k in keys if k in self._rows)[0]}")
            for kid, key in keys.items():
                self._rows[kid] = {"key": key, "created_at": created_at, "destroyed_at": None}

    def destroy(self, kid: str, when: datetime) -> bool:
        with self._lock:
            row = self._rows.get(kid)
            if row is None:
                self._rows[kid] = {"key": None, "created_at": when, "destroyed_at": when}
                return False
            had = row["key"] is not None
            if had:
                row.update(key=None, destroyed_at=when)
            return had

    def status(self, kid: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._rows.get(kid)
            return None if row is None else {"customer_id": kid, "created_at": row["created_at"],
                                             "destroyed_at": row["destroyed_at"]}


class SQLiteKeyStore(KeyStore):
    """``keys.sqlite``: WAL, synchronous FULL (a key is durable before its events), and
    ``secure_delete`` so a destroyed key is overwritten; the WAL is truncated after."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
        for pragma in ("secure_delete=ON", "journal_mode=WAL", "synchronous=FULL"):
            self._conn.execute(f"PRAGMA {pragma}")
        self._conn.execute("CREATE TABLE IF NOT EXISTS tuohu_keys (customer_id TEXT PRIMARY KEY, key BLOB, "
                           "created_at TEXT NOT NULL, destroyed_at TEXT)")

    def get(self, kids: Iterable[str]) -> dict[str, bytes | None]:
        kids = list(kids)
        found: dict[str, bytes | None] = {}
        with self._lock:
            for start in range(0, len(kids), 500):
                chunk = kids[start:start + 500]
                rows = self._conn.execute(f"SELECT customer_id, key FROM tuohu_keys WHERE customer_id IN "
                                          f"({','.join('?' * len(chunk))})", chunk)
                found.update(rows.fetchall())
        return found

    def all(self, limit: int) -> dict[str, bytes | None] | None:
        with self._lock:
            rows = self._conn.execute("SELECT customer_id, key FROM tuohu_keys LIMIT ?", (limit + 1,)).fetchall()
        return None if len(rows) > limit else dict(rows)

    def add(self, keys: dict[str, bytes], created_at: datetime) -> None:
        when = created_at.isoformat()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany("INSERT INTO tuohu_keys VALUES (?, ?, ?, NULL)",
                                       [(kid, key, when) for kid, key in keys.items()])
            except sqlite3.IntegrityError:
                self._conn.execute("ROLLBACK")
                raise KeyConflict("another process created a key for one of these customers first") from None
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def destroy(self, kid: str, when: datetime) -> bool:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                had = self._conn.execute("UPDATE tuohu_keys SET key = NULL, destroyed_at = ? "
                                         "WHERE customer_id = ? AND key IS NOT NULL",
                                         (when.isoformat(), kid)).rowcount == 1
                self._conn.execute("INSERT OR IGNORE INTO tuohu_keys VALUES (?, NULL, ?, ?)",
                                   (kid, when.isoformat(), when.isoformat()))
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            # The WAL still holds the page images with the key: copy back and truncate it.
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return had

    def status(self, kid: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute("SELECT customer_id, created_at, destroyed_at FROM tuohu_keys "
                                     "WHERE customer_id = ?", (kid,)).fetchone()
        if row is None:
            return None
        return {"customer_id": row[0], "created_at": _parse(row[1]), "destroyed_at": _parse(row[2])}

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresKeyStore(KeyStore):
    """``tuohu_keys`` in the event store's PostgreSQL schema (through the library's pool).

    PostgreSQL keeps an updated row's old version until VACUUM; :meth:`destroy`
    runs ``VACUUM FULL`` on the table, but WAL segments and backups taken before
    still hold the key until they expire (see the README).
    """

    def __init__(self, datastore: Any) -> None:
        from psycopg.sql import SQL, Identifier

        self.datastore = datastore
        self.table = SQL("{}.{}").format(Identifier(datastore.schema), Identifier("tuohu_keys"))
        self._sql = SQL
        with datastore.transaction(commit=True) as curs:
            curs.execute(SQL("CREATE TABLE IF NOT EXISTS {} (customer_id text PRIMARY KEY, key bytea, "
                             "created_at timestamptz NOT NULL, destroyed_at timestamptz)").format(self.table))

    def get(self, kids: Iterable[str]) -> dict[str, bytes | None]:
        kids = list(kids)
        if not kids:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql("SELECT customer_id, key FROM {} WHERE customer_id = ANY(%s)").format(self.table),
                         (kids,))
            return {r["customer_id"]: (bytes(r["key"]) if r["key"] is not None else None) for r in curs.fetchall()}

    def all(self, limit: int) -> dict[str, bytes | None] | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql("SELECT customer_id, key FROM {} LIMIT %s").format(self.table), (limit + 1,))
            rows = curs.fetchall()
        if len(rows) > limit:
            return None
        return {r["customer_id"]: (bytes(r["key"]) if r["key"] is not None else None) for r in rows}

    def add(self, keys: dict[str, bytes], created_at: datetime) -> None:
        from eventsourcing.persistence import IntegrityError

        try:
            with self.datastore.transaction(commit=True) as curs:
                curs.executemany(self._sql("INSERT INTO {} VALUES (%s, %s, %s, NULL)").format(self.table),
                                 [(kid, key, created_at) for kid, key in keys.items()])
        except IntegrityError:  # the library's pool turns psycopg's UniqueViolation into its own
            raise KeyConflict("another process created a key for one of these customers first") from None

    def destroy(self, kid: str, when: datetime) -> bool:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._sql("UPDATE {} SET key = NULL, destroyed_at = %s WHERE customer_id = %s "
                                   "AND key IS NOT NULL").format(self.table), (when, kid))
            had = curs.rowcount == 1
            curs.execute(self._sql("INSERT INTO {} VALUES (%s, NULL, %s, %s) ON CONFLICT DO NOTHING")
                         .format(self.table), (kid, when, when))
        with self.datastore.get_connection() as conn:
            conn.autocommit = True
            try:
                conn.execute(self._sql("VACUUM FULL {}").format(self.table))
            finally:
                conn.autocommit = False
        return had

    def status(self, kid: str) -> dict[str, Any] | None:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql("SELECT customer_id, created_at, destroyed_at FROM {} WHERE customer_id = %s")
                         .format(self.table), (kid,))
            row = curs.fetchone()
        return None if row is None else dict(row)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def key_store_for(env: Any, factory: Any) -> KeyStore:
    """The key store beside the event store the library's environment names."""
    module = (env.get("PERSISTENCE_MODULE") or "").lower()
    if "postgres" in module:
        return PostgresKeyStore(factory.datastore)
    if "sqlite" in module:
        db_name = env.get("SQLITE_DBNAME") or ""
        if ":memory:" in db_name or "mode=memory" in db_name:
            return MemoryKeyStore()
        return SQLiteKeyStore(Path(db_name.removeprefix("file:").split("?")[0]).parent / "keys.sqlite")
    return MemoryKeyStore()


# --------------------------------------------------------------------------
# The key ring: keys cached for a while, new keys written before their events
# --------------------------------------------------------------------------


class KeyRing:
    """Customers' keys (256-bit AES-GCM), cached for :attr:`ttl` seconds.

    A process forgets a key at once when it reads the customer's erasure event,
    and at the latest after ``ttl`` seconds when another process destroyed it.
    """

    ttl = 60.0
    warm_limit = 200_000

    def __init__(self, store: KeyStore) -> None:
        self.store = store
        self._cache: dict[str, tuple[bytes | None, float]] = {}
        self._erased: set[str] = set()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._warm_until = 0.0
        self._warmable = True

    def _fresh(self, kid: str) -> tuple[bytes | None, float] | None:
        hit = self._cache.get(kid)
        return hit if hit is not None and hit[1] > time.monotonic() else None

    def _remember(self, found: dict[str, bytes | None], missing: Iterable[str] = ()) -> None:
        expires = time.monotonic() + self.ttl
        with self._lock:
            if len(self._cache) > 4 * self.warm_limit:
                self._cache.clear()
            for kid, key in found.items():
                if key is None:
                    self._erased.add(kid)
                    self._cache.pop(kid, None)
                else:
                    self._cache[kid] = (key, expires)
            for kid in missing:
                if kid not in found:
                    self._cache[kid] = (None, expires)

    # ------------------------------------------------------------------ reading

    def reader(self, kid: str) -> bytes | None:
        """The key of ``kid``, or None when it was destroyed (or never stored)."""
        if kid in self._erased:
            return None
        hit = self._fresh(kid)
        if hit is not None:
            return hit[0]
        pending = getattr(self._local, "pending", None)
        if pending and kid in pending:
            return pending[kid]
        if self._warmable and time.monotonic() >= self._warm_until:
            # Few enough keys: load them all in one query rather than one query per customer.
            everything = self.store.all(self.warm_limit)
            if everything is None:
                self._warmable = False
            else:
                self._remember(everything)
                self._warm_until = time.monotonic() + self.ttl / 2
        if self._fresh(kid) is None and kid not in self._erased:
            self._remember(self.store.get([kid]), [kid])
        hit = self._cache.get(kid)
        return None if kid in self._erased or hit is None else hit[0]

    # ------------------------------------------------------------------ writing

    @contextmanager
    def batch(self) -> Iterator[None]:
        """New keys made inside are stored together, durably, when the block ends without error."""
        if getattr(self._local, "pending", None) is not None:
            yield
            return
        self._local.pending, self._local.absent = {}, set()
        try:
            yield
            pending = self._local.pending
            if pending:
                self.store.add(dict(pending), datetime.now(timezone.utc))
                self._remember(pending)
        finally:
            self._local.pending = self._local.absent = None

    def prefetch(self, kids: Iterable[str]) -> None:
        """Look up many kids in one query (inside :meth:`batch`)."""
        wanted = [k for k in set(kids) if k not in self._erased and self._fresh(k) is None]
        if not wanted:
            return
        found = self.store.get(wanted)
        self._remember(found)
        absent = getattr(self._local, "absent", None)
        if absent is not None:
            absent.update(k for k in wanted if k not in found)

    def writer(self, kid: str) -> bytes:
        """The key to encrypt ``kid``'s data with, made (and stored) if new.

        Raises :class:`PersonalDataWasErased` when the key was destroyed."""
        pending = getattr(self._local, "pending", None)
        if pending is not None and kid in pending:
            return pending[kid]
        if kid not in self._erased:
            hit = self._fresh(kid)
            if hit is not None and hit[0] is not None:
                return hit[0]
            absent = getattr(self._local, "absent", None) or ()
            if kid not in absent:
                found = self.store.get([kid])
                self._remember(found)
                if found.get(kid) is not None:
                    return self._cache[kid][0]  # type: ignore[return-value]
        if kid in self._erased:
            raise PersonalDataWasErased(f"the personal data of customer {kid} were erased; nothing more is recorded")
        key = AESGCM.generate_key(bit_length=256)
        if pending is None:  # outside a batch: store the key at once
            self.store.add({kid: key}, datetime.now(timezone.utc))
            self._remember({kid: key})
        else:
            pending[kid] = key
        return key

    # ------------------------------------------------------------------ erasure

    def refresh(self) -> None:
        """Drop the cached keys: the next read of each goes to the key store, so a key destroyed by
        another process a moment ago is seen at once (before an auditor's read)."""
        with self._lock:
            self._cache.clear()

    def forget(self, kid: str) -> None:
        """Never use ``kid``'s key again in this process."""
        with self._lock:
            self._erased.add(kid)
            self._cache.pop(kid, None)

    def destroy(self, kid: str) -> bool:
        """Destroy ``kid``'s key in the store and here. True if a key was destroyed now."""
        self.forget(kid)
        return self.store.destroy(kid, datetime.now(timezone.utc))

    def status(self, kid: str) -> dict[str, Any] | None:
        return self.store.status(kid)

    def close(self) -> None:
        self.store.close()


# --------------------------------------------------------------------------
# The mapper: encrypt personal fields on the way in, decrypt on the way out
# --------------------------------------------------------------------------


class PersonalDataMapper(Mapper[UUID]):
    """The library's :class:`Mapper` with the personal fields of :data:`PERSONAL_FIELDS` encrypted per customer."""

    owner_cache_size = 20_000

    def __init__(self, transcoder: Any, compressor: Any = None, cipher: Any = None, *,
                 keys: KeyRing | None = None) -> None:
        super().__init__(transcoder=transcoder, compressor=compressor, cipher=cipher)
        self.keys = keys or KeyRing(MemoryKeyStore())
        self.recorder: Any = None
        self._owners: dict[str, str] = {}
        self._state_decoder: StateDecoder | None = None
        self._ciphers: dict[bytes, AESGCM] = {}
        """The ciphers of the keys read last (a customer's encrypted events come close together)."""
        self._kinds: dict[tuple[str, type], tuple[type, Callable[[Any], Any], int, tuple[str, ...]]] = {}

    @classmethod
    def wrap(cls, mapper: Mapper[UUID], store: KeyStore) -> PersonalDataMapper:
        """A personal-data mapper with ``mapper``'s transcoder, compressor and cipher."""
        return cls(mapper.transcoder, mapper.compressor, mapper.cipher, keys=KeyRing(store))

    # ------------------------------------------------------------------ whose data

    def _note_owner(self, aggregate_id: str, customer_id: Any) -> None:
        if len(self._owners) >= self.owner_cache_size:  # forget the older half
            for old in list(islice(self._owners, self.owner_cache_size // 2)):
                del self._owners[old]
        self._owners[aggregate_id] = str(customer_id)

    def _kid(self, topic: str, state: dict[str, Any], *, look_up: bool = True,
             batch: dict[str, str] | None = None) -> str | None:
        """The customer (key id) an event with ``state`` belongs to (``batch``: owners seen in this save)."""
        originator = str(state["originator_id"])
        if topic.startswith(_CUSTOMER_PREFIX):
            return originator
        customer_id = state.get("customer_id")
        if customer_id is not None:
            return str(customer_id)
        kid = batch.get(originator) if batch else None
        if kid is None:
            kid = self._owners.get(originator)
        if kid is None and look_up:
            kid = self._owner_from_store(state["originator_id"])
        return kid

    def _owner_from_store(self, originator_id: Any) -> str:
        first = self.recorder.select_events(originator_id, limit=1) if self.recorder is not None else []
        if not first:
            raise LookupError(f"no customer found for {originator_id}: its first event is not stored")
        customer_id = self.transcoder.decode(first[0].state).get("customer_id")
        if customer_id is None:
            raise LookupError(f"{originator_id} does not belong to a customer")
        self._note_owner(str(originator_id), customer_id)
        return str(customer_id)

    @staticmethod
    def _to_encrypt(topic: str, state: dict[str, Any]) -> list[str]:
        """The fields of an event with ``state`` to encrypt (personal and not empty)."""
        names = _fields_cache.get(topic)
        if names is None:
            names = personal_fields(topic)
        if not names:
            return []
        todo = [n for n in names if state.get(n)]
        if todo and topic == _FACTS_TOPIC and state.get("group") in NON_PERSONAL_FACT_GROUPS:
            todo.remove("facts")
        return todo

    def to_stored_events(self, domain_events: Sequence[Any]) -> list[StoredEvent]:
        """:meth:`to_stored_event` for many events, looking up their customers' keys in one query."""
        plans = []
        kids = set()
        owners: dict[str, str] = {}
        for event in domain_events:
            state = event.__dict__
            topic = get_topic(type(event))
            if "customer_id" in state:
                owners[str(state["originator_id"])] = str(state["customer_id"])
                self._note_owner(str(state["originator_id"]), state["customer_id"])
            todo = self._to_encrypt(topic, state)
            if todo:
                kid = self._kid(topic, state, look_up=False, batch=owners)
                if kid is not None:
                    kids.add(kid)
            plans.append((event, topic, todo))
        self.keys.prefetch(kids)
        plain = super().to_stored_event
        return [self._encrypted(event, topic, todo, owners) if todo else plain(event) for event, topic, todo in plans]

    # ------------------------------------------------------------------ in and out

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        topic = get_topic(type(domain_event))
        state = domain_event.__dict__
        if "customer_id" in state:
            self._note_owner(str(state["originator_id"]), state["customer_id"])
        todo = self._to_encrypt(topic, state)
        return self._encrypted(domain_event, topic, todo) if todo else super().to_stored_event(domain_event)

    def _encrypted(self, domain_event: Any, topic: str, todo: list[str],
                   owners: dict[str, str] | None = None) -> StoredEvent:
        sealed = dict(domain_event.__dict__)
        kid = self._kid(topic, sealed, batch=owners)
        assert kid is not None
        cipher = AESGCM(self.keys.writer(kid))
        encode = self.transcoder.encode
        for name in todo:
            value = sealed[name]
            nonce = os.urandom(12)
            blob = nonce + cipher.encrypt(nonce, encode(value), f"{kid}|{topic}|{name}".encode())
            envelope: dict[str, Any] = {"_enc": base64.b64encode(blob).decode("ascii"), "kid": kid}
            if isinstance(value, dict):
                envelope["as"] = "dict"
            elif isinstance(value, list):
                envelope["as"] = "list"
            sealed[name] = envelope
        shadow = object.__new__(type(domain_event))
        object.__setattr__(shadow, "__dict__", sealed)
        return super().to_stored_event(shadow)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        domain_event = super().to_domain_event(stored_event)
        topic = stored_event.topic
        self._reveal(domain_event.__dict__, stored_event.originator_id, topic, personal_fields(topic))
        return domain_event

    def to_domain_events(self, rows: Sequence[StoredRow], fields: Callable[[str], tuple[str, ...]] | None = None,
                         note_owners: bool = True) -> list[Any]:
        """:meth:`to_domain_event` of each stored event ``(notification id, originator id, originator
        version, topic, state)`` (:func:`application.decoding.stored_rows`), in order: equal events,
        in fewer steps. The state is decoded by a :class:`application.decoding.StateDecoder`; the
        event is made as the library's mapper makes it (topic resolved once per topic, originator id
        converted, class version upcast), and its personal fields are decrypted. An event the
        fast path cannot make is made the library's way, which raises the library's error.

        ``fields``: the personal fields to decrypt of the events of a topic, by topic (called once
        per topic and call); None decrypts them all. The other personal fields an event carries
        are not decrypted: each reads as the :class:`Sealed` stand-in of its topic and field, which
        raises :class:`PersonalFieldNotRead` when used. Erased keys are forgotten for every event
        either way.

        ``note_owners``: whether to remember the customer of each event that names one, for the
        encryption of later events of the same aggregate in this process (as :meth:`to_domain_event`
        does). A reader that writes no events (the read models) leaves it out: the writers note
        owners themselves, when they load an aggregate or store its events."""
        decode = self._states().decode
        kinds = self._kinds
        plans: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        events = []
        for _, originator_id, originator_version, topic, stored in rows:
            try:
                kind = kinds.get((topic, type(originator_id))) or self._kind(topic, type(originator_id))
                cls, to_id, class_version, personal = kind
                data = stored
                if self.cipher:
                    data = self.cipher.decrypt(data)
                if self.compressor:
                    data = self.compressor.decompress(data)
                state = decode(data)
                state["originator_id"] = to_id(originator_id)
                state["originator_version"] = originator_version
                from_version = state.pop("class_version", 1)
                while from_version < class_version:
                    getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
                    from_version += 1
                event = object.__new__(cls)
                object.__setattr__(event, "__dict__", state)
            except Exception:  # noqa: BLE001 - made again the library's way, which raises its own error
                event = super().to_domain_event(StoredEvent(originator_id, originator_version, topic, stored))
                state, personal = event.__dict__, personal_fields(topic)
            if fields is None:
                self._reveal(state, originator_id, topic, personal, note=note_owners)
            else:
                plan = plans.get(topic)
                if plan is None:
                    wanted = fields(topic)
                    plan = plans[topic] = (tuple(n for n in personal if n in wanted),
                                           tuple(n for n in personal if n not in wanted))
                self._reveal(state, originator_id, topic, *plan, note=note_owners)
            events.append(event)
        return events

    def _states(self) -> StateDecoder:
        if self._state_decoder is None:
            self._state_decoder = StateDecoder(self.transcoder)
        return self._state_decoder

    def _kind(self, topic: str, id_type: type) -> tuple[type, Callable[[Any], Any], int, tuple[str, ...]]:
        """For events of ``topic`` with originator ids of ``id_type``: the event class, the id conversion
        (the library's, through the decoder's UUIDs when it is str to UUID), the class version and the
        personal fields."""
        cls = resolve_topic(topic)
        to_id = find_id_convertor(cls, id_type)
        if to_id is str_to_uuid_convertor:
            to_id = self._states().uuids
        found = self._kinds[(topic, id_type)] = (cls, to_id, getattr(cls, "class_version", 1), personal_fields(topic))
        return found

    def _reveal(self, state: dict[str, Any], originator_id: Any, topic: str, personal: tuple[str, ...],
                kept: tuple[str, ...] = (), note: bool = True) -> None:
        """The steps after the library's mapper: note the owner (if ``note``), decrypt the personal fields
        ``personal`` and put a :class:`Sealed` stand-in in place of those ``kept`` sealed, forget an erased key."""
        if note and "customer_id" in state:
            self._note_owner(str(originator_id), state["customer_id"])
        for name in personal:
            value = state.get(name)
            if type(value) is dict and "_enc" in value:
                state[name] = self._open(value, topic, name)
        for name in kept:
            if name in state:
                state[name] = sealed(topic, name)
        if topic == ERASED_TOPIC:
            self.keys.forget(str(originator_id))

    def _open(self, envelope: dict[str, Any], topic: str, name: str) -> Any:
        kid = envelope["kid"]
        key = self.keys.reader(kid)
        shape = envelope.get("as")
        if key is None:
            return dict(ERASED_DICT) if shape == "dict" else [ERASED] if shape == "list" else ERASED
        sealed = base64.b64decode(envelope["_enc"])
        cipher = self._ciphers.get(key)
        if cipher is None:
            if len(self._ciphers) >= 64:
                self._ciphers.clear()
            cipher = self._ciphers[key] = AESGCM(key)
        try:
            plain = cipher.decrypt(sealed[:12], sealed[12:], f"{kid}|{topic}|{name}".encode())
        except InvalidTag:
            raise PersonalDataUnreadable(f"{topic}.{name} of customer {kid} does not decrypt: altered") from None
        return self._states().decode(plain)


class KeyedEventStore(EventStore[UUID]):
    """The library's event store, writing the events' new keys (durably) before the events."""

    mapper: PersonalDataMapper

    key_attempts = 3

    def put(self, domain_events: Sequence[Any], **kwargs: Any) -> list[Recording[UUID]]:
        for attempt in range(1, self.key_attempts + 1):
            try:
                with self.mapper.keys.batch():
                    stored_events = self.mapper.to_stored_events(domain_events)
                break
            except KeyConflict:
                # Another writer stored a first key for one of these customers: encrypt again with it.
                if attempt == self.key_attempts:
                    raise
        recordings = []
        notification_ids = self.recorder.insert_events(stored_events, **kwargs)
        if notification_ids:
            for d, s, n_id in zip(domain_events, stored_events, notification_ids, strict=True):
                recordings.append(Recording(d, Notification(
                    originator_id=s.originator_id, originator_version=s.originator_version, topic=s.topic,
                    state=s.state, id=n_id)))
        return recordings


# --------------------------------------------------------------------------
# Views: a restricted or erased customer without their personal data
# --------------------------------------------------------------------------


def without_personal_data(customer: Any) -> Any:
    """``customer`` as a view other than the auditors' may show it: while processing is restricted
    or after erasure, a copy without the name, the personal facts and the review texts."""
    if not (getattr(customer, "processing_restricted", False) or getattr(customer, "personal_data_erased", False)):
        return customer
    shown = copy.copy(customer)
    shown.display_name = None
    shown.facts = {group: (dict(facts) if group in NON_PERSONAL_FACT_GROUPS else {})
                   for group, facts in customer.facts.items()}
    if customer.manual_review:
        shown.manual_review = {**customer.manual_review, "reason": None}
    if customer.document_review:
        shown.document_review = {**customer.document_review, "return_reasons": []}
    return shown


def shown(app: TuohuApplication, aggregate: Any) -> Any:
    """``aggregate`` as views other than the auditors' may show it: a customer, visit or contract of a
    customer whose processing is restricted (or whose data were erased) without that person's data."""
    from domain.customer import Customer

    if isinstance(aggregate, Customer):
        return without_personal_data(aggregate)
    customer_id = getattr(aggregate, "customer_id", None)
    if customer_id is None:
        return aggregate
    customer = app.repository.get(customer_id)
    if not (customer.processing_restricted or customer.personal_data_erased):
        return aggregate
    hidden = copy.copy(aggregate)
    if getattr(aggregate, "preparation", None):
        hidden.preparation = {**aggregate.preparation, "background": RESTRICTED, "talking_points": []}
    if getattr(aggregate, "signatories", None):
        hidden.signatories = {**aggregate.signatories, "customer": RESTRICTED}
    return hidden


# --------------------------------------------------------------------------
# Retention: when the relationship ended
# --------------------------------------------------------------------------


def relationship_ended_at(app: TuohuApplication, customer_id: UUID, related_ids: Iterable[UUID] = ()
                          ) -> datetime | None:
    """When the business relationship with the customer ended (UTC), or None while it goes on.

    The rule: the business time (``occurred_at``) of the latest event about the
    customer - their own events (restriction and erasure excepted) and those of
    their visits, proposals, contracts and risk cases (``related_ids``); a signed
    contract that is not terminated keeps the relationship going. Active customers
    keep producing events (monthly business figures, follow-ups), so the latest
    event tracks the relationship.
    """
    latest: datetime | None = None
    for event in app.events.get(customer_id):
        if get_topic(type(event)) not in PRIVACY_TOPICS:
            latest = event.occurred_at if latest is None else max(latest, event.occurred_at)
    for aggregate_id in related_ids:
        events = list(app.events.get(aggregate_id))
        if not events:
            continue
        if get_topic(type(events[0])).startswith("tuohu:Contract."):
            contract = app.repository.get(aggregate_id)
            if isinstance(contract, Contract) and contract.status == "signed":
                return None
        for event in events:
            latest = event.occurred_at if latest is None else max(latest, event.occurred_at)
    return latest


# --------------------------------------------------------------------------
# Use cases (operator commands: ``tuohu privacy``; the HTTP API has no route that erases)
# --------------------------------------------------------------------------


def restrict_processing(app: TuohuApplication, ctx: Any, customer_id: UUID, *, reason: str | None,
                        expected_version: int | None = None) -> Any:
    """Restrict the processing of the customer's personal data: views drop them, auditors still read them.

    Returns the :class:`application.CommandResult`; raises the domain's errors."""
    from domain.customer import Customer

    return app._act(ctx, "restrict_processing", Customer, customer_id,
                    lambda c: c.restrict_processing(ctx, reason=reason), expected_version)


def erase_personal_data(app: TuohuApplication, ctx: Any, customer_id: UUID, *, reason: str | None,
                        retention_years: int, related_ids: Iterable[UUID] = (),
                        expected_version: int | None = None) -> Any:
    """Record the erasure, then destroy the customer's key (crypto-shredding).

    ``related_ids``: the customer's visits, proposals, contracts and risk cases, for
    the end of the relationship (:func:`relationship_ended_at`). The event is saved
    before the key is destroyed, so there is never a destroyed key without its
    evidence; a repeat after a crash in between destroys the key and raises
    :class:`domain.customer.PersonalDataWasErased`.
    """
    from domain.customer import Customer

    keys: KeyRing = app.mapper.keys  # type: ignore[attr-defined]
    if app.load(Customer, customer_id).personal_data_erased:
        keys.destroy(str(customer_id))
    ended = relationship_ended_at(app, customer_id, related_ids)
    result = app._act(ctx, "erase_personal_data", Customer, customer_id,
                      lambda c: c.erase_personal_data(ctx, reason=reason, relationship_ended_at=ended,
                                                      retention_years=retention_years), expected_version)
    keys.destroy(str(customer_id))
    return result
