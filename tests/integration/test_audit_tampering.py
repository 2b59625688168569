"""Tamper evidence on real stores: the SQLite file and the PostgreSQL table edited directly, four ways.

Each test seals the chain, then changes the stored events behind the
application's back - an edited state, a deleted row, an inserted row, two rows
swapped - and expects ``verify`` to name the position the test touched and
what was done there.
"""

from __future__ import annotations

import io
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from application import Settings
from application.chain import verify_export
from domain.base import Context

MANAGER = "mgr-li"


def as_(actor_id: str = MANAGER, role: str = "customer_manager") -> Context:
    return Context(actor_id=actor_id, actor_role=role)


def populate(app: Any, customers: int = 4) -> None:
    for i in range(customers):
        customer_id = app.register_customer(as_(), kind="retail", acquisition_channel="branch", source_detail="form",
                                            segment="mass", manager_id=MANAGER, branch="sz",
                                            display_name=f"Person {i}").aggregate_id
        app.record_facts(as_(), customer_id, group="basic", facts={"age": 30 + i})
        app.record_credit_standing(as_("risk-sun", "risk_officer"), customer_id, source="bureau", result="no_default")


class EventTable:
    """The stored events' table, reached without the application: rows by position."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.postgres = settings.uses_postgres
        self.position = "notification_id" if self.postgres else "rowid"
        self.table = f'"{settings.database_schema}".tuohu_events' if self.postgres else "stored_events"
        self.mark = "%s" if self.postgres else "?"

    @contextmanager
    def connect(self) -> Iterator[Any]:
        if self.postgres:
            import psycopg

            with psycopg.connect(self.settings.database_url, autocommit=True) as conn:
                yield conn
        else:
            conn = sqlite3.connect(self.settings.data_dir / "events.sqlite", isolation_level=None)
            try:
                yield conn
            finally:
                conn.close()

    def run(self, sql: str, *params: Any) -> list[tuple]:
        with self.connect() as conn:
            cursor = conn.execute(sql.format(t=self.table, pos=self.position, m=self.mark), params)
            return cursor.fetchall() if cursor.description else []

    def row(self, position: int) -> tuple:
        [found] = self.run("SELECT originator_id, originator_version, topic, state FROM {t} WHERE {pos} = {m}",
                           position)
        return found

    def move(self, source: int, target: int) -> None:
        self.run("UPDATE {t} SET {pos} = {m} WHERE {pos} = {m}", target, source)


@pytest.fixture
def sealed(services: tuple, settings: Settings) -> tuple[Any, EventTable, int]:
    """Four customers, three events each, sealed; and the events' table for tampering."""
    application, _read_models = services
    populate(application)
    seal = application.chain.seal()
    return application, EventTable(settings), seal.position


def test_an_untouched_store_verifies(sealed: tuple) -> None:
    application, _table, head = sealed

    checked = application.chain.verify()

    assert checked.ok, checked.summary()
    assert checked.checked == head == 12


def test_an_edited_event_is_named_at_its_position(sealed: tuple) -> None:
    application, table, _head = sealed
    state = bytes(table.row(5)[3])
    table.run("UPDATE {t} SET state = {m} WHERE {pos} = {m}", state.replace(b"mgr-li", b"mgr-xx"), 5)

    checked = application.chain.verify()

    assert not checked.ok
    assert (checked.problem.position, checked.problem.kind) == (5, "edited")


def test_a_deleted_event_is_named_at_its_position(sealed: tuple) -> None:
    application, table, _head = sealed
    table.run("DELETE FROM {t} WHERE {pos} = {m}", 7)

    checked = application.chain.verify()

    assert not checked.ok
    assert (checked.problem.position, checked.problem.kind) == (7, "deleted")


def test_an_event_inserted_among_the_sealed_ones_is_named_at_its_position(sealed: tuple) -> None:
    application, table, _head = sealed
    originator_id, _version, topic, state = table.row(3)
    table.run("UPDATE {t} SET {pos} = -{pos} WHERE {pos} >= {m}", 6)  # make room at 6, as a forger must
    table.run("UPDATE {t} SET {pos} = 1 - {pos} WHERE {pos} < 0")
    table.run("INSERT INTO {t} (originator_id, originator_version, topic, state, {pos}) "
              "VALUES ({m}, {m}, {m}, {m}, {m})", originator_id, 99, topic, state, 6)

    checked = application.chain.verify()

    assert not checked.ok
    assert (checked.problem.position, checked.problem.kind) == (6, "inserted")


def test_two_swapped_events_are_named_at_the_first_position(sealed: tuple) -> None:
    application, table, _head = sealed
    table.move(4, -1)
    table.move(9, 4)
    table.move(-1, 9)

    checked = application.chain.verify()

    assert not checked.ok
    assert (checked.problem.position, checked.problem.kind) == (4, "reordered")
    assert "position 9" in checked.problem.detail


def test_events_stored_after_the_seal_are_unsealed_not_tampered(sealed: tuple) -> None:
    application, _table, head = sealed
    populate(application, customers=1)

    checked = application.chain.verify()

    assert checked.ok
    assert (checked.checked, checked.unsealed) == (head, 3)


def test_an_export_of_the_store_verifies_offline_and_names_an_edit_made_in_the_file(sealed: tuple, tmp_path) -> None:
    application, _table, head = sealed
    buffer = io.StringIO()
    application.chain.export(buffer)
    path = tmp_path / "export.jsonl"
    path.write_text(buffer.getvalue())

    assert verify_export(path).ok
    lines = buffer.getvalue().splitlines()
    item = json.loads(lines[2])
    item["originator_version"] += 1
    lines[2] = json.dumps(item)
    path.write_text("\n".join(lines) + "\n")
    checked = verify_export(path)
    assert (checked.ok, checked.problem.position, checked.problem.kind) == (False, 2, "edited")
    assert head == 12


@pytest.mark.parametrize("threaded", [False, True], ids=["from a command", "from a server's thread"])
def test_the_parallel_check_agrees_with_one_pass_and_names_an_edit(sealed: tuple, monkeypatch, caplog,
                                                                    threaded: bool) -> None:
    """The chain split into ranges recomputed by worker subprocesses, from the main thread
    and from another thread (as in the server); over PostgreSQL in the caller's exported snapshot."""
    application, table, _head = sealed
    from application import chain

    monkeypatch.setattr(chain, "_PARALLEL_FROM", 1)
    calls: list[str] = []
    ranges = chain._recompute_ranges
    monkeypatch.setattr(chain, "_recompute_ranges",
                        lambda jobs, env=None, **kw: calls.append(f"{len(jobs)} ranges") or ranges(jobs, env, **kw))
    split = chain.AuditChain._parallel_check
    monkeypatch.setattr(chain.AuditChain, "_parallel_check", lambda *a: calls.append("split") or split(*a))

    def check() -> Any:
        if not threaded:
            return application.chain.verify(workers=2)
        found: list[Any] = []
        worker = threading.Thread(target=lambda: found.append(application.chain.verify(workers=2)))
        worker.start()
        worker.join(60)
        return found[0]

    clean = check()
    state = bytes(table.row(10)[3])
    table.run("UPDATE {t} SET state = {m} WHERE {pos} = {m}", state.replace(b"mgr-li", b"mgr-xx"), 10)
    edited = check()

    assert clean.ok and clean.checked == 12, clean.summary()
    assert not edited.ok
    assert (edited.problem.position, edited.problem.kind) == (10, "edited")
    assert calls == ["split", "2 ranges"] * 2
    assert "one pass" not in caplog.text  # the workers ran: no fallback


def stored_links(table: EventTable) -> dict[int, bytes]:
    chain = f'"{table.settings.database_schema}".tuohu_chain' if table.postgres else "tuohu_chain"
    return {position: bytes(link) for position, link in table.run(f"SELECT position, link FROM {chain}")}


def test_both_readers_of_a_range_worker_give_the_stored_links(sealed: tuple, settings: Settings) -> None:
    """A range worker reads with APSW, or with ``sqlite3`` where APSW is missing: either way the
    links it reports equal the links the seal stored there, so the two read the same bytes."""
    application, table, head = sealed
    if table.postgres:
        pytest.skip("this compares the two readers of a SQLite file")
    from application import chain_range
    from application.chain import GENESIS

    stored = stored_links(table)
    path = str(settings.data_dir / "events.sqlite")
    for recompute in (chain_range.recompute_sqlite, chain_range.recompute_sqlite3):
        first = recompute(path, "stored_events", 0, 5, GENESIS, [2, 5])
        rest = recompute(path, "stored_events", 5, head, first[0][5], [7, head, head + 1])
        assert first == ({2: stored[2], 5: stored[5]}, 5, 5)
        assert rest == ({7: stored[7], head: stored[head]}, head - 5, head)


def test_many_seals_are_checked_by_as_many_workers_as_asked(services: tuple, settings: Settings,
                                                            monkeypatch, caplog) -> None:
    """Sealed after every customer (a seal a day, say): two workers still mean two ranges, each
    reporting its links at the seals inside it, and an edit between two seals is named."""
    application, _read_models = services
    from application import chain

    for _ in range(5):
        populate(application, customers=1)
        application.chain.seal()
    table = EventTable(settings)
    monkeypatch.setattr(chain, "_PARALLEL_FROM", 1)
    jobs: list[list[dict]] = []
    ranges = chain._recompute_ranges
    monkeypatch.setattr(chain, "_recompute_ranges", lambda given, env=None, **kw: jobs.append(given) or ranges(given, env, **kw))

    clean = application.chain.verify(workers=2)
    state = bytes(table.row(5)[3])
    table.run("UPDATE {t} SET state = {m} WHERE {pos} = {m}", state.replace(b"mgr-li", b"mgr-xx"), 5)
    edited = application.chain.verify(workers=2)

    assert clean.ok and clean.checked == 15, clean.summary()
    assert "one pass" not in caplog.text  # the workers ran: no fallback
    assert [len(given) for given in jobs] == [2, 2]
    # the five seals, and the split: the last link at or before position 15 * 1 // 2 = 7
    assert sorted(p for job in jobs[0] for p in job["report"]) == [3, 6, 7, 9, 12, 15]
    assert not edited.ok
    assert (edited.problem.position, edited.problem.kind) == (5, "edited")


def test_workers_slower_than_the_stores_idle_timeout_still_verify(sealed: tuple, monkeypatch, caplog) -> None:
    """Over PostgreSQL the caller's transaction waits idle while the workers read its exported
    snapshot; the library closes connections idle in a transaction for 5 s. Workers that take
    longer (a slow range is simulated) must still verify, in parallel, without a fallback."""
    application, table, _head = sealed
    if not table.postgres:
        pytest.skip("the idle-in-transaction timeout is PostgreSQL's")
    import time

    from application import chain

    monkeypatch.setattr(chain, "_PARALLEL_FROM", 1)
    ranges = chain._recompute_ranges
    monkeypatch.setattr(chain, "_recompute_ranges", lambda jobs, env=None, **kw: time.sleep(6) or ranges(jobs, env, **kw))

    checked = application.chain.verify(workers=2)

    assert checked.ok and checked.checked == 12, checked.summary()
    assert "one pass" not in caplog.text


def delete_the_seals(table: EventTable) -> None:
    """Empty the seals' table, the chain's links left as they were."""
    seals = f'"{table.settings.database_schema}".tuohu_seals' if table.postgres else "tuohu_seals"
    table.run(f"DELETE FROM {seals}")


def test_deleted_seals_are_not_read_as_nothing_sealed_yet(sealed: tuple) -> None:
    application, table, head = sealed
    delete_the_seals(table)

    checked = application.chain.verify()

    assert not checked.ok
    assert (checked.problem.position, checked.problem.kind) == (head, "seals_missing")
    assert "no seal is stored" in checked.problem.detail and "--seal" in checked.problem.detail
    assert (checked.seal, checked.checked, checked.unsealed) == (None, head, head)
    assert "nothing sealed yet" not in checked.summary()
    assert checked.to_json()["ok"] is False


def test_deleted_seals_pass_against_a_matching_published_seal_and_say_none_is_stored(sealed: tuple) -> None:
    application, table, head = sealed
    [published] = application.chain.seals()
    delete_the_seals(table)
    populate(application, customers=1)

    checked = application.chain.verify(published)

    assert checked.ok, checked.summary()
    assert checked.problem is None and checked.seal is None
    assert (checked.warning.position, checked.warning.kind) == (head, "seals_missing")
    assert (checked.checked, checked.unsealed) == (head, head + 3)
    assert "published seal #1" in checked.summary() and "no seal is stored" in checked.summary()


def test_deleted_seals_and_an_edited_event_name_the_edit_even_with_a_published_seal(sealed: tuple) -> None:
    application, table, _head = sealed
    [published] = application.chain.seals()
    delete_the_seals(table)
    state = bytes(table.row(5)[3])
    table.run("UPDATE {t} SET state = {m} WHERE {pos} = {m}", state.replace(b"mgr-li", b"mgr-xx"), 5)

    alone, against = application.chain.verify(), application.chain.verify(published)

    assert (alone.problem.position, alone.problem.kind) == (5, "edited")
    assert not against.ok and (against.problem.position, against.problem.kind) == (5, "edited")


def test_seal_refuses_to_paper_over_deleted_seals_unless_told(sealed: tuple) -> None:
    from application.chain import SealsMissing

    application, table, head = sealed
    delete_the_seals(table)
    populate(application, customers=1)
    links = len(stored_links(table))

    with pytest.raises(SealsMissing, match=f"up to position {head} but no seal is stored"):
        application.chain.seal()
    unchanged = (application.chain.seals(), len(stored_links(table)))
    accepted = application.chain.seal(accept_missing_seals=True)

    assert unchanged == ([], links)
    assert (accepted.position, accepted.events) == (head + 3, head + 3)
    assert application.chain.verify().ok
