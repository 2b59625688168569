"""The auditor's questions on the whole of bank-full.csv (slow: imports 595,224 events), SQLite and PostgreSQL.

Expected figures come from the CSV with the standard library and the file's
year rule (a month earlier than the previous row's starts the next year; the
first row is in 2008), independently of the importer. Times are printed, not
asserted: they depend on the machine (the README lists them).
"""

from __future__ import annotations

import csv
import time
from contextlib import nullcontext
from pathlib import Path

import pytest

from application import audit
from interfaces import reports
from interfaces.importers.bank_marketing import import_bank_marketing
from projections.actors import period_range, trail

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


def subscribed_in_2009_q3(path: Path) -> int:
    year, previous, count = 2008, 0, 0
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            month = MONTHS.index(row["month"]) + 1
            if month < previous:
                year += 1
            previous = month
            count += year == 2009 and 7 <= month <= 9 and row["y"] == "yes"
    return count


@pytest.mark.slow
def test_the_six_questions_on_bank_full(services, bank_marketing_dir: Path, capsys, monkeypatch) -> None:
    application, read_models = services
    path = bank_marketing_dir / "bank-full.csv"
    import_bank_marketing(application, path)
    read_models.catch_up()
    timings = {}

    started = time.perf_counter()
    seal = application.chain.seal()
    timings["seal"] = time.perf_counter() - started
    start, end = period_range("2009-Q3")
    started = time.perf_counter()
    with read_models.reading("actors") as (conn, tables):
        decisions = trail(conn, tables, "acquisition-reviewer", start=start, end=end, decisions_only=True)
    timings["q3"] = time.perf_counter() - started
    customer_id = next(r["aggregate_id"] for r in decisions["rows"] if r["event_type"] == "Reviewed")
    started = time.perf_counter()
    credit = audit.history(application, customer_id, "customer", field="credit_standing")
    timings["q1"] = time.perf_counter() - started
    started = time.perf_counter()
    screened = audit.state_as_of(application, customer_id, "customer", at_event="Screened")
    timings["q2"] = time.perf_counter() - started
    started = time.perf_counter()
    checked = application.chain.verify(seal)
    timings["q4"] = time.perf_counter() - started

    # Q5: the 2009-Q3 evaluation as it stood at recorded times inside the import, from the
    # tables' row versions; the expected reports replay the log up to the same moments.
    head = application.position()
    as_of_reports = []
    for position in (head * 9 // 10, head * 97 // 100):
        [notification] = application.recorder.select_notifications(start=position, limit=1)
        cut = application.mapper.to_domain_event(notification).timestamp
        started = time.perf_counter()
        versioned = reports.evaluation(read_models, "2009-Q3", as_of=cut)
        timings[f"q5 at {position}"] = time.perf_counter() - started
        with monkeypatch.context() as patch:
            patch.setattr(read_models.runner, "as_of", lambda *a: nullcontext(None))
            replayed = reports.evaluation(read_models, "2009-Q3", as_of=cut)
        as_of_reports.append((versioned, replayed))

    won = subscribed_in_2009_q3(path)
    assert decisions["total"] == 2 * won  # each won customer: one customer review, one contract clause review
    assert [e["event"] for e in credit["events"]] == ["CreditStandingRecorded"]
    assert screened["last_event"]["event"] == "Screened"
    assert checked.ok and checked.checked == seal.events == 595_224
    for versioned, replayed in as_of_reports:
        assert versioned["indicators"] == replayed["indicators"]
        assert versioned["credit_rating_mix"] == replayed["credit_rating_mix"]
    assert any(v["indicators"]["new_customers"]["actual"] for v, _ in as_of_reports)
    with capsys.disabled():
        print("\nbank-full:", ", ".join(f"{k} {v:.3f} s" for k, v in timings.items()))
