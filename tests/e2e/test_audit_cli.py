"""``tuohu audit`` and ``tuohu privacy`` run as an auditor runs them: real processes over a data directory.

The store is filled through the application (as the API would), then each
command is run as a separate process; expected values come from what was
written (ids, actors, reasons, the scorecard's points), not from the commands.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from application import Settings, bootstrap
from domain.base import Context

ROOT = Path(__file__).resolve().parents[2]
NAME = "Zhang Wei-CLI-Probe"
WHEN = datetime(2009, 8, 3, tzinfo=timezone.utc)


def tuohu(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUOHU_DATABASE")}
    env.update(TUOHU_DATA_DIR=str(data_dir), COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "interfaces.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def at(actor_id: str, role: str, when: datetime = WHEN) -> Context:
    return Context(actor_id=actor_id, actor_role=role, occurred_at=when, channel="api")


@pytest.fixture
def store(tmp_path: Path) -> dict[str, Any]:
    """One screened and reviewed customer (age 38, management: scorecard 1.0 gives 65, refer)."""
    app = bootstrap(Settings(data_dir=tmp_path, database_url=None))
    try:
        customer_id = app.register_customer(at("mgr-li", "customer_manager"), kind="retail",
                                            acquisition_channel="branch", source_detail="form", segment="mass",
                                            manager_id="mgr-li", branch="sz", display_name=NAME).aggregate_id
        app.record_facts(at("mgr-li", "customer_manager"), customer_id, group="basic",
                         facts={"age": 38, "job": "management"})
        app.record_credit_standing(at("risk-sun", "risk_officer"), customer_id, source="credit_bureau",
                                   result="no_default", reason="bureau report 881")
        app.screen_customer(at("screening-model", "system"), customer_id)
        app.review_customer(at("rev-wang", "reviewer"), customer_id, decision="qualified", reason="documents verified")
    finally:
        app.close()
    return {"dir": tmp_path, "customer_id": str(customer_id)}


def test_seal_then_verify_against_the_published_seal(store: dict[str, Any]) -> None:
    seal_file = store["dir"] / "seal.json"

    sealed = tuohu(store["dir"], "audit", "seal", "--export", str(seal_file))
    verified = tuohu(store["dir"], "audit", "verify", "--seal", str(seal_file))

    assert sealed.returncode == 0, sealed.stderr
    assert json.loads(seal_file.read_text())["position"] == 5
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("OK: 5 events up to position 5")


def test_verify_exits_1_naming_the_position_of_an_edited_event(store: dict[str, Any]) -> None:
    assert tuohu(store["dir"], "audit", "seal").returncode == 0
    with sqlite3.connect(store["dir"] / "events.sqlite") as conn:
        conn.execute("UPDATE stored_events SET state = replace(state, 'no_default', 'in_default') WHERE rowid = 3")

    verified = tuohu(store["dir"], "audit", "verify")

    assert verified.returncode == 1
    assert "TAMPERED at position 3: edited" in verified.stderr


def test_an_export_verifies_offline_without_the_database(store: dict[str, Any], tmp_path_factory) -> None:
    exported = store["dir"] / "export.jsonl"
    made = tuohu(store["dir"], "audit", "export", "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01T08:00:00+08:00",
                 str(exported))
    elsewhere = tmp_path_factory.mktemp("elsewhere")

    checked = tuohu(elsewhere, "audit", "verify", "--file", str(exported), "--json")

    assert made.returncode == 0, made.stderr
    assert checked.returncode == 0, checked.stderr
    result = json.loads(checked.stdout)
    assert (result["events"], result["anchored"]) == (5, True)
    assert not (elsewhere / "events.sqlite").exists()


@pytest.mark.parametrize("edit", [False, True], ids=["events intact", "an event edited"])
def test_a_published_seal_fails_when_the_chain_and_seals_were_emptied(store: dict[str, Any], edit: bool) -> None:
    """With the chain's tables emptied, the published seal alone still checks the stored events:
    verify exits 1 either way, and says whether the events still hash to the published link."""
    seal_file = store["dir"] / "seal.json"
    assert tuohu(store["dir"], "audit", "seal", "--export", str(seal_file)).returncode == 0
    with sqlite3.connect(store["dir"] / "events.sqlite") as conn:
        conn.execute("DELETE FROM tuohu_chain")
        conn.execute("DELETE FROM tuohu_seals")
        if edit:
            conn.execute("UPDATE stored_events SET state = replace(state, 'no_default', 'in_default') WHERE rowid = 3")

    verified = tuohu(store["dir"], "audit", "verify", "--seal", str(seal_file), "--json")

    assert verified.returncode == 1, verified.stdout
    problem = json.loads(verified.stdout)["problem"]
    assert problem["position"] == 5
    assert problem["kind"] == ("seal_mismatch" if edit else "chain_altered")
    assert "holds no link" in problem["detail"]


@pytest.mark.parametrize("edit", [False, True], ids=["events intact", "an event edited"])
def test_stored_seals_without_a_chain_fail_verify_and_refuse_a_new_seal(store: dict[str, Any], edit: bool) -> None:
    """The chain's links deleted, the seals kept: verify without a published seal still fails (the
    stored seal is checked against the stored events), and seal refuses to link them afresh."""
    assert tuohu(store["dir"], "audit", "seal").returncode == 0
    with sqlite3.connect(store["dir"] / "events.sqlite") as conn:
        conn.execute("DELETE FROM tuohu_chain")
        if edit:
            conn.execute("UPDATE stored_events SET state = replace(state, 'no_default', 'in_default') WHERE rowid = 3")

    verified = tuohu(store["dir"], "audit", "verify", "--json")
    resealed = tuohu(store["dir"], "audit", "seal")
    again = tuohu(store["dir"], "audit", "verify", "--json")

    assert verified.returncode == 1, verified.stdout
    problem = json.loads(verified.stdout)["problem"]
    assert problem["position"] == 5
    assert problem["kind"] == ("seal_mismatch" if edit else "chain_altered")
    assert "seal #1 covers position 5" in problem["detail"] and "holds no link" in problem["detail"]
    assert resealed.returncode == 1
    assert "holds no link" in resealed.stdout + resealed.stderr
    assert again.returncode == 1 and json.loads(again.stdout)["problem"] == problem  # nothing was relinked


def test_deleted_seals_fail_verify_pass_only_a_published_seal_and_refuse_a_new_seal(store: dict[str, Any]) -> None:
    """The seals' table emptied, the chain's links kept: not "nothing sealed yet"."""
    seal_file = store["dir"] / "seal.json"
    assert tuohu(store["dir"], "audit", "seal", "--export", str(seal_file)).returncode == 0
    with sqlite3.connect(store["dir"] / "events.sqlite") as conn:
        conn.execute("DELETE FROM tuohu_seals")

    alone = tuohu(store["dir"], "audit", "verify", "--json")
    plain = tuohu(store["dir"], "audit", "verify")
    published = tuohu(store["dir"], "audit", "verify", "--seal", str(seal_file), "--json")
    refused = tuohu(store["dir"], "audit", "seal")
    still = tuohu(store["dir"], "audit", "verify", "--json")
    accepted = tuohu(store["dir"], "audit", "seal", "--accept-missing-seals", "--json")
    after = tuohu(store["dir"], "audit", "verify", "--json")

    assert alone.returncode == 1, alone.stdout
    found = json.loads(alone.stdout)
    assert (found["ok"], found["unsealed"], found["seal"]) == (False, 5, None)
    assert (found["problem"]["position"], found["problem"]["kind"]) == (5, "seals_missing")
    assert plain.returncode == 1 and "nothing sealed yet" not in plain.stdout + plain.stderr
    assert plain.stderr.startswith("NOT VERIFIED at position 5: seals_missing") and plain.stderr.count("\n") == 1
    assert published.returncode == 0, published.stdout
    vouched = json.loads(published.stdout)
    assert (vouched["ok"], vouched["problem"], vouched["warning"]["kind"]) == (True, None, "seals_missing")
    assert "no seal is stored" in vouched["summary"]
    assert refused.returncode == 1
    assert "no seal is stored" in refused.stderr and refused.stderr.count("\n") == 1
    assert "tuohu audit verify --seal FILE" in refused.stderr
    assert json.loads(still.stdout)["problem"] == found["problem"]  # nothing was sealed
    assert accepted.returncode == 0, accepted.stderr
    assert (json.loads(accepted.stdout)["seal_id"], json.loads(accepted.stdout)["position"]) == (2, 5)
    assert after.returncode == 0 and json.loads(after.stdout)["unsealed"] == 0


def test_a_published_seal_past_the_stored_events_is_not_passed(store: dict[str, Any]) -> None:
    seal_file = store["dir"] / "seal.json"
    assert tuohu(store["dir"], "audit", "seal", "--export", str(seal_file)).returncode == 0
    moved = {**json.loads(seal_file.read_text()), "position": 99}
    (store["dir"] / "moved.json").write_text(json.dumps(moved))
    (store["dir"] / "broken.json").write_text("{not json")

    past = tuohu(store["dir"], "audit", "verify", "--seal", str(store["dir"] / "moved.json"), "--json")
    broken = tuohu(store["dir"], "audit", "verify", "--seal", str(store["dir"] / "broken.json"))

    assert past.returncode == 1
    problem = json.loads(past.stdout)["problem"]
    assert (problem["position"], problem["kind"]) == (99, "deleted")
    assert "stops at position 5" in problem["detail"] and "last one up to it is 5" in problem["detail"]
    assert broken.returncode == 2
    assert "not a seal file" in broken.stdout + broken.stderr


def test_a_truncated_export_or_one_short_of_the_published_seal_fails(store: dict[str, Any]) -> None:
    exported, seal_file = store["dir"] / "export.jsonl", store["dir"] / "seal.json"
    assert tuohu(store["dir"], "audit", "seal", "--export", str(seal_file)).returncode == 0
    assert tuohu(store["dir"], "audit", "export", "--from", "2000-01-01T00:00:00Z", "--to",
                 "2100-01-01T00:00:00Z", str(exported)).returncode == 0
    lines = exported.read_text().splitlines()
    assert len(lines) == 6  # the header and the five events
    cut, header_only = store["dir"] / "cut.jsonl", store["dir"] / "header.jsonl"
    cut.write_text("\n".join(lines[:4]) + "\n")
    header_only.write_text(lines[0] + "\n")

    whole = tuohu(store["dir"], "audit", "verify", "--file", str(exported), "--seal", str(seal_file), "--json")
    short = tuohu(store["dir"], "audit", "verify", "--file", str(cut), "--json")
    empty = tuohu(store["dir"], "audit", "verify", "--file", str(header_only), "--json")

    assert whole.returncode == 0 and json.loads(whole.stdout)["published"] is True
    assert short.returncode == 1 and json.loads(short.stdout)["problem"]["kind"] == "truncated"
    assert json.loads(short.stdout)["problem"]["position"] == 5
    assert empty.returncode == 1 and json.loads(empty.stdout)["problem"]["kind"] == "truncated"


def test_history_of_one_field_says_who_when_and_why(store: dict[str, Any]) -> None:
    found = tuohu(store["dir"], "audit", "history", store["customer_id"], "--field", "credit_standing", "--json")

    assert found.returncode == 0, found.stderr
    [event] = json.loads(found.stdout)["events"]
    assert (event["actor_id"], event["reason"], event["occurred_at"]) == ("risk-sun", "bureau report 881",
                                                                          WHEN.isoformat())


def test_history_of_a_misspelt_field_exits_2_naming_it_and_of_an_unchanged_one_lists_nothing(
        store: dict[str, Any]) -> None:
    misspelt = tuohu(store["dir"], "audit", "history", store["customer_id"], "--field", "credit_standng")
    unchanged = tuohu(store["dir"], "audit", "history", store["customer_id"], "--field", "account_number", "--json")

    assert misspelt.returncode == 2, misspelt.stdout
    assert misspelt.stdout == "" and misspelt.stderr.count("\n") == 1
    assert misspelt.stderr.startswith("--field: 'credit_standng' is no field of customer")
    assert "credit_standing, " in misspelt.stderr
    assert unchanged.returncode == 0, unchanged.stderr
    assert json.loads(unchanged.stdout)["events"] == []


def test_state_at_the_screening_and_explain_give_the_recorded_score(store: dict[str, Any]) -> None:
    state = tuohu(store["dir"], "audit", "state", store["customer_id"], "--at-event", "Screened", "--json")
    explained = tuohu(store["dir"], "audit", "explain", store["customer_id"], "--json")

    assert state.returncode == 0 and explained.returncode == 0, state.stderr + explained.stderr
    assert json.loads(state.stdout)["state"]["facts"]["basic"] == {"age": 38, "job": "management"}
    [screening] = json.loads(explained.stdout)["screenings"]
    # base 50 + no default 30 + age 26-60 10 + occupation 5 = 95: pass
    assert screening["recomputed"]["score"] == screening["recorded"]["score"] == 95
    assert screening["matches"] is True


def test_the_decisions_of_a_reviewer_in_a_quarter(store: dict[str, Any]) -> None:
    found = tuohu(store["dir"], "audit", "actor", "rev-wang", "--period", "2009-Q3", "--decisions", "--json")

    assert found.returncode == 0, found.stderr
    rows = json.loads(found.stdout)["rows"]
    assert [(r["aggregate_id"], r["decision"], r["reason"]) for r in rows] == [
        (store["customer_id"], "qualified", "documents verified")]


def test_the_actor_trail_pages_as_the_route_does(store: dict[str, Any]) -> None:
    found = tuohu(store["dir"], "audit", "actor", "rev-wang", "--json")
    too_many = tuohu(store["dir"], "audit", "actor", "rev-wang", "--limit", "10001")

    assert found.returncode == 0, found.stderr
    page = json.loads(found.stdout)
    assert (page["limit"], page["next"]) == (1000, None)
    assert too_many.returncode == 2
    assert "10000" in too_many.stderr


def test_erasure_after_the_retention_period_needs_no_auditor(store: dict[str, Any]) -> None:
    # the relationship's last event occurred in 2009: ten years after it is over
    erased = tuohu(store["dir"], "privacy", "erase", store["customer_id"], "--reason", "retention period over",
                   "--actor", "ops-liu", "--role", "operations")

    assert erased.returncode == 0, erased.stderr


def test_erasure_before_the_retention_period_is_refused_to_operations(store: dict[str, Any]) -> None:
    app = bootstrap(Settings(data_dir=store["dir"], database_url=None))
    try:  # a follow-up of today: the relationship goes on
        app.record_facts(Context(actor_id="mgr-li", actor_role="customer_manager"), UUID(store["customer_id"]),
                         group="needs", facts={"payroll": True})
    finally:
        app.close()

    refused = tuohu(store["dir"], "privacy", "erase", store["customer_id"], "--reason", "asked by phone",
                    "--actor", "ops-liu", "--role", "operations")

    assert refused.returncode == 1
    assert "retention_period_not_over" in refused.stderr


def test_erase_then_history_reads_erased_and_verify_still_passes(store: dict[str, Any]) -> None:
    assert tuohu(store["dir"], "audit", "seal").returncode == 0

    erased = tuohu(store["dir"], "privacy", "erase", store["customer_id"], "--reason", "data subject request DSR-9",
                   "--actor", "audit-he")
    history = tuohu(store["dir"], "audit", "history", store["customer_id"], "--json")
    verified = tuohu(store["dir"], "audit", "verify")

    assert erased.returncode == 0, erased.stderr
    events = json.loads(history.stdout)["events"]
    assert events[0]["data"]["display_name"] == "[erased]"
    assert (events[-1]["event"], events[-1]["actor_id"], events[-1]["reason"]) == (
        "PersonalDataErased", "audit-he", "data subject request DSR-9")
    assert verified.returncode == 0, verified.stderr
    for path in store["dir"].iterdir():
        assert NAME.encode() not in path.read_bytes(), path


def test_the_actor_trail_refuses_a_range_ending_before_it_starts(store: dict[str, Any]) -> None:
    refused = tuohu(store["dir"], "audit", "actor", "rev-wang", "--from", "2024-02-01T00:00:00Z",
                    "--to", "2023-02-01T00:00:00Z")

    assert refused.returncode == 2
    assert "--to must be after --from" in refused.stderr


@pytest.mark.parametrize(("option", "args"), [
    ("--as-of", ("state", "{id}", "--as-of", "2100-01-01T00:00:00")),
    ("--as-of", ("state", "{id}", "--as-of", "2100-01-01")),
    ("--from", ("actor", "rev-wang", "--from", "2009-07-01T00:00:00", "--to", "2009-10-01T00:00:00Z")),
    ("--to", ("actor", "rev-wang", "--from", "2009-07-01T00:00:00Z", "--to", "2009-10-01T00:00:00")),
    ("--from", ("export", "--from", "2000-01-01T00:00:00", "--to", "2100-01-01T00:00:00Z", "{dir}/export.jsonl")),
    ("--to", ("export", "--from", "2000-01-01T00:00:00Z", "--to", "2100-01-01", "{dir}/export.jsonl")),
])
def test_a_time_without_a_timezone_is_refused_naming_the_option_as_the_route_refuses_it(
        store: dict[str, Any], option: str, args: tuple[str, ...]) -> None:
    """The routes answer 422 for ``as_of``, ``from`` or ``to`` without an offset: an auditor's question must
    not depend on the zone of whoever reads it. The command exits 2 naming the option, before reading anything."""
    refused = tuohu(store["dir"], "audit", *(a.format(id=store["customer_id"], dir=store["dir"]) for a in args))

    assert refused.returncode == 2, refused.stdout
    assert not (store["dir"] / "export.jsonl").exists()  # refused before anything is written
    said = " ".join(refused.stderr.split())
    assert f"'{option}'" in said and "no timezone" in said and "Z or +08:00" in said
    assert "Traceback" not in said


@pytest.mark.parametrize(("option", "args"), [
    ("--as-of", ("state", "{id}", "--as-of", "9999-12-31T23:59:59-12:00")),
    ("--from", ("actor", "rev-wang", "--from", "0001-01-01T00:00:00+01:00")),
    ("--from", ("export", "--from", "0001-01-01T00:00:00+01:00", "--to", "2100-01-01T00:00:00Z",
                "{dir}/export.jsonl")),
])
def test_a_time_out_of_range_in_utc_is_refused_naming_the_option(
        store: dict[str, Any], option: str, args: tuple[str, ...]) -> None:
    """A valid time whose UTC is before year 1 or after 9999 cannot be compared with recorded times: exit 2
    naming the option, as the routes answer 422, not a traceback."""
    refused = tuohu(store["dir"], "audit", *(a.format(id=store["customer_id"], dir=store["dir"]) for a in args))

    assert refused.returncode == 2, refused.stdout
    assert not (store["dir"] / "export.jsonl").exists()
    said = " ".join(refused.stderr.split())
    assert f"'{option}'" in said and "out of range once converted to UTC" in said
    assert "Traceback" not in said


def test_the_actor_trail_takes_a_period_or_a_range_not_both(store: dict[str, Any]) -> None:
    both = tuohu(store["dir"], "audit", "actor", "rev-wang", "--period", "2009-Q3", "--from", "2009-09-01T00:00:00Z")

    assert both.returncode == 2
    assert "either --period or --from/--to" in both.stderr


def test_an_export_of_a_range_without_events_verifies_as_empty(store: dict[str, Any]) -> None:
    """Nothing was recorded in 2000: the export holds its header alone, and verifying it finds nothing wrong."""
    path = store["dir"] / "empty.jsonl"
    exported = tuohu(store["dir"], "audit", "export", "--from", "2000-01-01T00:00:00Z", "--to",
                     "2000-01-02T00:00:00Z", str(path))
    verified = tuohu(store["dir"], "audit", "verify", "--file", str(path))

    assert exported.returncode == 0, exported.stderr
    assert "no events recorded in that range" in exported.stdout
    header = json.loads(path.read_text().splitlines()[0])
    assert (header["first_position"], header["last_position"], header["previous_link"]) == (None, None, None)
    assert len(path.read_text().splitlines()) == 1
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "TAMPERED" not in verified.stdout


def test_times_with_an_offset_are_read_as_before(store: dict[str, Any]) -> None:
    utc = tuohu(store["dir"], "audit", "state", store["customer_id"], "--as-of", "2100-01-01T00:00:00Z", "--json")
    beijing = tuohu(store["dir"], "audit", "state", store["customer_id"], "--as-of", "2100-01-01T08:00:00+08:00",
                    "--json")
    trail = tuohu(store["dir"], "audit", "actor", "rev-wang", "--from", "2009-07-01T08:00:00+08:00",
                  "--to", "2009-10-01T00:00:00Z", "--decisions", "--json")

    assert (utc.returncode, beijing.returncode, trail.returncode) == (0, 0, 0), \
        utc.stderr + beijing.stderr + trail.stderr
    assert json.loads(utc.stdout)["version"] == json.loads(beijing.stdout)["version"] == 5
    found = json.loads(trail.stdout)
    assert found["from"] == "2009-07-01T00:00:00+00:00" and [r["decision"] for r in found["rows"]] == ["qualified"]
