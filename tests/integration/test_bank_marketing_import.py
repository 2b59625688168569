"""The Bank Marketing import against real SQLite and real PostgreSQL.

Expected figures are computed here from the CSV files with the standard
library, independently of the importer.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from domain.customer import Customer
from domain.visit import Visit
from interfaces.importers.bank_marketing import ImportRefused, assign_years, import_bank_marketing

MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]


def facts_of(path: Path) -> dict[str, int]:
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))
    return {
        "rows": len(rows),
        "yes": sum(r["y"] == "yes" for r in rows),
        "contacts": sum(int(r["campaign"]) for r in rows),
    }


@pytest.mark.slow
def test_bank_full_imports_every_customer_visit_and_account(services, bank_marketing_dir: Path) -> None:
    application, pipeline = services
    path = bank_marketing_dir / "bank-full.csv"
    expected = facts_of(path)

    report = import_bank_marketing(application, path)

    assert report.bad_rows == []
    assert report.customers == expected["rows"] == 45_211
    assert report.accounts_opened == expected["yes"] == 5_289
    assert report.visits == expected["contacts"] == 124_956
    pipeline.catch_up()
    funnel = pipeline.funnel()
    assert funnel["registered"] == expected["rows"]
    assert funnel["account_opened"] == expected["yes"]
    assert funnel["contracted"] == expected["yes"]
    assert funnel["visited"] == expected["rows"]  # every row had at least one contact
    assert len(pipeline.records("visit", limit=10)) == 10


def test_reimporting_the_same_file_adds_nothing(services, bank_marketing_dir: Path) -> None:
    application, pipeline = services
    path = bank_marketing_dir / "bank.csv"
    first = import_bank_marketing(application, path, year=2009)
    position = application.position()

    second = import_bank_marketing(application, path, year=2009)

    assert first.imported == facts_of(path)["rows"]
    assert second.imported == 0
    assert second.already_present == first.imported
    assert application.position() == position
    pipeline.catch_up()
    assert pipeline.funnel()["registered"] == first.imported


def test_a_bad_row_is_reported_with_its_line_and_the_rest_import(services, bank_marketing_dir: Path, tmp_path: Path) -> None:
    application, _ = services
    lines = (bank_marketing_dir / "bank.csv").read_text().splitlines()
    header, good = lines[0], lines[1:6]
    def with_field(line: str, index: int, value: str) -> str:
        fields = line.split(";")
        fields[index] = value
        return ";".join(fields)

    broken_age = with_field(good[1], 0, '"forty"')  # column 0 is age
    short = ";".join(good[2].split(";")[:5])
    bad_month = with_field(good[3], 10, '"mai"')  # column 10 is month
    sample = tmp_path / "sample.csv"
    sample.write_text("\n".join([header, good[0], broken_age, short, bad_month, good[4]]) + "\n")

    report = import_bank_marketing(application, sample, year=2009)

    assert report.imported == 2
    assert [line for line, _ in report.bad_rows] == [3, 4, 5]
    reasons = dict(report.bad_rows)
    assert "age" in reasons[3]
    assert "fields" in reasons[4]
    assert "month" in reasons[5]


def test_a_row_that_is_not_utf8_is_reported_with_its_line_and_the_rest_import(services, bank_marketing_dir: Path,
                                                                              tmp_path: Path) -> None:
    """A row saved in Latin-1 (``é`` as the byte 0xe9) among UTF-8 ones is a bad row, not the end of the import."""
    application, _ = services
    lines = (bank_marketing_dir / "bank.csv").read_bytes().splitlines()
    header, good = lines[0], lines[1:4]
    latin = good[1].replace(b'"married"', b'"mari\xe9e"')
    assert latin != good[1]
    sample = tmp_path / "latin.csv"
    sample.write_bytes(b"\n".join([header, good[0], latin, good[2]]) + b"\n")

    report = import_bank_marketing(application, sample, year=2009)

    assert report.imported == 2
    assert report.bad_rows == [(3, "is not UTF-8 text (byte 0xe9)")]


def test_a_sample_out_of_order_is_refused_without_year_and_nothing_is_written(services, bank_marketing_dir: Path) -> None:
    application, _ = services
    with pytest.raises(ImportRefused, match="--year"):
        import_bank_marketing(application, bank_marketing_dir / "bank.csv")
    assert application.position() == 0


def test_the_additional_format_with_crlf_imports(services, bank_marketing_dir: Path) -> None:
    application, _ = services
    path = bank_marketing_dir / "bank-additional.csv"
    assert b"\r\n" in path.read_bytes()[:2000]
    expected = facts_of(path)

    report = import_bank_marketing(application, path, year=2010)

    assert report.bad_rows == []
    assert report.customers == expected["rows"]
    assert report.accounts_opened == expected["yes"]
    assert report.visits == expected["contacts"]


def test_imported_aggregates_read_back_with_their_facts_and_last_call(services, bank_marketing_dir: Path) -> None:
    application, _ = services
    path = bank_marketing_dir / "bank.csv"
    with path.open(newline="") as fh:
        first_row = next(csv.DictReader(fh, delimiter=";"))
    importer_report = import_bank_marketing(application, path, year=2009)
    assert importer_report.imported > 0
    from interfaces.importers.bank_marketing import BankMarketingImport

    ids = BankMarketingImport(application, path, year=2009)
    customer = application.load(Customer, ids._id(2, "customer"))
    assert customer.facts["basic"]["age"] == int(first_row["age"])
    assert customer.facts["basic"]["job"] == first_row["job"]
    assert str(customer.facts["financial"]["balance"]) == first_row["balance"]
    assert customer.acquisition_channel == "telemarketing"
    last = application.load(Visit, ids._id(2, f"visit:{first_row['campaign']}"))
    assert last.method == "phone"
    assert last.scheduled_at.month == MONTHS.index(first_row["month"]) + 1
    assert last.scheduled_at.day == int(first_row["day"])
    events = list(application.events.get(last.id))
    assert events[-1].duration_seconds == int(first_row["duration"])
    assert events[-1].channel == "import"
    assert (customer.account_number is not None) == (first_row["y"] == "yes")


def test_the_year_rule_starts_a_new_year_when_the_month_goes_back() -> None:
    # may, jun, jun, jan (new year), dec, feb (new year)
    assert assign_years([5, 6, 6, 1, 12, 2], 2008, fixed=False) == [2008, 2008, 2008, 2009, 2009, 2010]
    assert assign_years([5, 1, 12], 2009, fixed=True) == [2009, 2009, 2009]


def test_bank_full_months_give_may_2008_to_november_2010(bank_marketing_dir: Path) -> None:
    with (bank_marketing_dir / "bank-full.csv").open(newline="") as fh:
        months = [MONTHS.index(r["month"]) + 1 for r in csv.DictReader(fh, delimiter=";")]
    years = assign_years(months, 2008, fixed=False)
    assert (years[0], months[0]) == (2008, 5)
    assert (years[-1], months[-1]) == (2010, 11)


def test_a_row_with_more_campaign_contacts_than_the_bound_is_reported_not_imported(tmp_path: Path, services,
                                                                                   bank_marketing_dir: Path) -> None:
    """Each contact becomes a visit: a mistyped campaign count (1,000,000) would write a million
    events. The row is reported with its line and reason; the row beside it is imported."""
    from interfaces.importers.bank_marketing import MAX_CAMPAIGN_CONTACTS

    application, _read_models = services
    with (bank_marketing_dir / "bank.csv").open(newline="") as fh:
        reader = csv.DictReader(fh, delimiter=";")
        rows = [next(reader), next(reader)]
        fields = reader.fieldnames
    rows[1]["campaign"] = "1000000"
    path = tmp_path / "two.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, delimiter=";", quoting=csv.QUOTE_NONNUMERIC)
        writer.writeheader()
        writer.writerows(rows)

    report = import_bank_marketing(application, path, year=2009)

    assert report.imported == 1
    assert report.bad_rows == [(3, f"campaign must be at most {MAX_CAMPAIGN_CONTACTS}; got 1000000")]


def test_months_before_the_year_1000_keep_four_digits() -> None:
    from datetime import datetime, timezone

    from projections.evaluation import _month, period_keys
    from projections.pipeline import month_key

    moment = datetime(999, 5, 3, tzinfo=timezone.utc)

    assert month_key(moment) == _month(moment) == "0999-05"
    assert period_keys(_month(moment)) == ["0999-05", "0999-Q2", "0999-H1", "0999"]
