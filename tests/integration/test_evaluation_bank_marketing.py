"""The evaluation report over the whole Bank Marketing file, on real SQLite and real PostgreSQL.

Expected figures are computed here from ``bank-full.csv`` with the csv module
and the year rule written out again (the importer's docstring: the first row
is in 2008; a row whose month is earlier in the calendar than the previous
row's starts the next year), independently of the importer and the projection.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from interfaces.importers.bank_marketing import import_bank_marketing
from projections.evaluation import evaluation

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
CREDIT = {"yes": "in_default", "no": "no_default"}


def expected_from(path: Path) -> dict[str, Counter]:
    """Per ``YYYY-MM``: rows (new customers), ``y = yes`` rows (accounts opened),
    contacts (visits), and per month the credit standing from ``default``."""
    new, opened, contacts, credit = Counter(), Counter(), Counter(), {}
    year, previous = 2008, None
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            month = MONTHS.index(row["month"]) + 1
            if previous is not None and month < previous:
                year += 1
            previous = month
            key = f"{year}-{month:02d}"
            new[key] += 1
            opened[key] += row["y"] == "yes"
            contacts[key] += int(row["campaign"])
            credit.setdefault(key, Counter())[CREDIT.get(row["default"], "unknown")] += 1
    return {"new": new, "opened": opened, "contacts": contacts, "credit": credit}


@pytest.mark.slow
def test_bank_full_evaluation_counts_new_customers_and_accounts_by_month(services, bank_marketing_dir: Path) -> None:
    application, read_models = services
    path = bank_marketing_dir / "bank-full.csv"
    expected = expected_from(path)
    first_run_of_may = 0
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh, delimiter=";"):
            if row["month"] != "may":
                break
            first_run_of_may += 1

    import_bank_marketing(application, path)
    read_models.catch_up()

    store = read_models.store
    with read_models.engine.connect() as conn:
        def report(period: str, unit_type: str = "bank", unit_id: str = "bank") -> dict:
            return evaluation(conn, store.tables("evaluation"), store.tables("team"), period, unit_type, unit_id)

        may_2008 = report("2008-05")
        by_month = {month: report(month)["indicators"] for month in sorted(expected["new"])}
        year_2008 = report("2008")["indicators"]
        branch_2009 = report("2009", "branch", "lisbon-telemarketing")["indicators"]

    assert may_2008["indicators"]["new_retail_customers"]["actual"] == first_run_of_may == 7_957
    assert may_2008["indicators"]["new_corporate_customers"]["actual"] == 0
    assert may_2008["credit_rating_mix"] == dict(expected["credit"]["2008-05"])
    assert {m: i["new_customers"]["actual"] for m, i in by_month.items()} == dict(expected["new"])
    assert sum(i["new_customers"]["actual"] for i in by_month.values()) == sum(expected["new"].values()) == 45_211
    assert {m: i["accounts_opened"]["actual"] for m, i in by_month.items()} == dict(expected["opened"])
    assert sum(i["accounts_opened"]["actual"] for i in by_month.values()) == sum(expected["opened"].values()) == 5_289
    assert {m: i["visits_conducted"]["actual"] for m, i in by_month.items()} == dict(expected["contacts"])
    # every row's calls fall in its own month: the customers active in 2008 are 2008's rows
    in_2008 = sum(n for m, n in expected["new"].items() if m.startswith("2008"))
    assert year_2008["active_customers"]["actual"] == in_2008
    assert branch_2009["new_customers"]["actual"] == sum(n for m, n in expected["new"].items() if m.startswith("2009"))
