"""The audit hash chain over an in-memory event store: sealing, verifying, exporting, checking a file offline.

Tampering with a real database (SQLite and PostgreSQL tables edited directly)
is in ``tests/integration/test_audit_chain.py``; here the links are recomputed
by the test from the rule in :mod:`application.chain`'s docstring.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

import pytest

from application.app import TuohuApplication
from application.chain import Seal, verify_export
from domain.base import Context

MANAGER = "mgr-li"


def as_(actor_id: str = MANAGER, role: str = "customer_manager") -> Context:
    return Context(actor_id=actor_id, actor_role=role)


@pytest.fixture
def app():
    application = TuohuApplication(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": ":memory:"})
    yield application
    application.close()


def customers(app: TuohuApplication, n: int) -> list:
    ids = []
    for i in range(n):
        customer_id = app.register_customer(as_(), kind="retail", acquisition_channel="branch", source_detail="form",
                                            segment="mass", manager_id=MANAGER, branch="sz",
                                            display_name=f"P{i}").aggregate_id
        app.record_facts(as_(), customer_id, group="basic", facts={"age": 30 + i})
        ids.append(customer_id)
    return ids


def expected_head(app: TuohuApplication) -> str:
    """The chain's head computed here from the rule: SHA-256(previous link || framed stored event)."""
    prev = hashlib.sha256(b"tuohu audit chain v1").digest()
    for n in app.recorder.select_notifications(start=1, limit=10_000):
        oid, topic = n.originator_id.hex.encode(), n.topic.encode()
        framed = b"%d:%d:%s:%d:%d:%s:%d:" % (n.id, len(oid), oid, n.originator_version, len(topic), topic,
                                            len(n.state))
        prev = hashlib.sha256(prev + framed + n.state).digest()
    return prev.hex()


def test_a_seal_covers_every_stored_event_with_the_documented_link(app: TuohuApplication) -> None:
    customers(app, 3)

    seal = app.chain.seal()

    assert (seal.position, seal.events) == (6, 6)
    assert seal.link == expected_head(app)


def test_verify_answers_ok_and_counts_the_events_after_the_seal_as_unsealed(app: TuohuApplication) -> None:
    [customer_id] = customers(app, 1)
    app.chain.seal()
    app.record_facts(as_(), customer_id, group="needs", facts={"payroll": True})

    checked = app.chain.verify()

    assert checked.ok
    assert (checked.checked, checked.unsealed) == (2, 1)


def test_sealing_again_extends_the_chain_from_its_head(app: TuohuApplication) -> None:
    customers(app, 1)
    first = app.chain.seal()
    customers(app, 1)

    second = app.chain.seal()

    assert (first.seal_id, second.seal_id) == (1, 2)
    assert (second.position, second.events) == (4, 4)
    assert second.link == expected_head(app)
    assert app.chain.verify().ok


def test_nothing_new_gives_back_the_last_seal(app: TuohuApplication) -> None:
    customers(app, 1)
    first = app.chain.seal()

    assert app.chain.seal() == first


def test_a_published_seal_that_the_chain_does_not_reproduce_is_reported(app: TuohuApplication) -> None:
    customers(app, 2)
    seal = app.chain.seal()
    forged = Seal(seal.seal_id, seal.position, "00" * 32, seal.events, seal.sealed_at)

    checked = app.chain.verify(forged)

    assert not checked.ok
    assert checked.problem.position == seal.position
    assert app.chain.verify(seal).ok


def test_an_export_checks_offline_and_is_anchored_to_its_seal(app: TuohuApplication, tmp_path: Path) -> None:
    customers(app, 3)
    buffer = io.StringIO()

    header = app.chain.export(buffer)

    path = tmp_path / "export.jsonl"
    path.write_text(buffer.getvalue())
    checked = verify_export(path)
    assert checked.ok, checked.summary()
    assert (checked.events, checked.first_position, checked.last_position) == (6, 1, 6)
    assert checked.anchored
    assert header["seal"]["link"] == expected_head(app)


def test_an_export_whose_event_was_edited_fails_at_that_line(app: TuohuApplication, tmp_path: Path) -> None:
    customers(app, 3)
    buffer = io.StringIO()
    app.chain.export(buffer)
    lines = buffer.getvalue().splitlines()
    item = json.loads(lines[3])  # the header, then positions 1, 2, 3
    item["state"] = base64.b64encode(base64.b64decode(item["state"]).replace(b"mgr-li", b"mgr-xx")).decode()
    lines[3] = json.dumps(item)
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(lines) + "\n")

    checked = verify_export(path)

    assert not checked.ok
    assert (checked.problem.position, checked.problem.kind) == (3, "edited")


def test_an_export_relinked_after_an_edit_no_longer_matches_its_seal(app: TuohuApplication, tmp_path: Path) -> None:
    customers(app, 2)
    buffer = io.StringIO()
    app.chain.export(buffer)
    lines = buffer.getvalue().splitlines()
    header = json.loads(lines[0])
    prev = bytes.fromhex(header["previous_link"])
    relinked = [lines[0]]
    for number, line in enumerate(lines[1:], start=1):
        item = json.loads(line)
        state = base64.b64decode(item["state"])
        if number == 2:
            state = state.replace(b"mgr-li", b"mgr-xx")
        oid, topic = item["originator_id"].encode(), item["topic"].encode()
        framed = b"%d:%d:%s:%d:%d:%s:%d:" % (item["position"], len(oid), oid, item["originator_version"],
                                            len(topic), topic, len(state))
        link = hashlib.sha256(prev + framed + state).digest()
        item.update(state=base64.b64encode(state).decode(), previous_link=prev.hex(), link=link.hex())
        relinked.append(json.dumps(item))
        prev = link
    path = tmp_path / "relinked.jsonl"
    path.write_text("\n".join(relinked) + "\n")

    checked = verify_export(path)

    assert not checked.ok
    assert checked.problem.kind == "seal_mismatch"


def test_an_export_of_a_time_range_holds_the_events_recorded_in_it(app: TuohuApplication) -> None:
    customers(app, 1)
    events = list(app.recorder.select_notifications(start=1, limit=100))
    customers(app, 1)
    decoded = [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(start=1, limit=100)]
    buffer = io.StringIO()

    header = app.chain.export(buffer, start=decoded[len(events)].timestamp, end=decoded[-1].timestamp, anchor=False)

    assert (header["first_position"], header["last_position"]) == (len(events) + 1, len(decoded))


class Interrupted(Exception):
    """Stands for a seal killed after writing its links, before recording its seal."""


def interrupt_the_next_seal(app: TuohuApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    def killed(*_args: object) -> None:
        raise Interrupted

    monkeypatch.setattr(app.chain.storage, "add_seal", killed)


def test_a_first_seal_stopped_after_its_links_is_not_passed_and_not_papered_over(
        app: TuohuApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    from application.chain import ChainMissing, SealsMissing

    customers(app, 2)
    with monkeypatch.context() as patched:
        interrupt_the_next_seal(app, patched)
        with pytest.raises(Interrupted):
            app.chain.seal()

    checked = app.chain.verify()
    with pytest.raises(SealsMissing) as refused:
        app.chain.seal()
    accepted = app.chain.seal(accept_missing_seals=True)

    assert not checked.ok and checked.seal is None
    assert (checked.problem.position, checked.problem.kind) == (4, "seals_missing")
    assert "first seal stopped" in checked.problem.detail and "seals were deleted" in checked.problem.detail
    assert (checked.checked, checked.unsealed) == (4, 4)
    assert "nothing sealed yet" not in checked.summary()
    assert isinstance(refused.value, ChainMissing)
    assert "no seal is stored" in str(refused.value) and "\n" not in str(refused.value)
    assert (accepted.seal_id, accepted.position, accepted.link) == (1, 4, expected_head(app))
    assert app.chain.verify().ok


def test_events_linked_by_a_stopped_seal_count_as_unsealed_after_the_last_stored_seal(
        app: TuohuApplication, monkeypatch: pytest.MonkeyPatch) -> None:
    customers(app, 1)
    first = app.chain.seal()
    customers(app, 2)
    with monkeypatch.context() as patched:
        interrupt_the_next_seal(app, patched)
        with pytest.raises(Interrupted):
            app.chain.seal()

    checked = app.chain.verify()
    resumed = app.chain.seal()

    assert checked.ok, checked.summary()
    assert (checked.seal, checked.checked, checked.unsealed) == (first, 6, 4)
    assert "4 events stored after it are not sealed yet" in checked.summary()
    assert (resumed.seal_id, resumed.position) == (2, 6)
    assert app.chain.verify().unsealed == 0


def test_a_store_never_sealed_is_ok_with_every_event_unsealed(app: TuohuApplication) -> None:
    customers(app, 2)

    checked = app.chain.verify()

    assert checked.ok and checked.seal is None and checked.problem is None
    assert (checked.checked, checked.unsealed) == (0, 4)
    assert checked.summary().startswith("OK: nothing sealed yet; 4 events are not sealed")
