"""The tuohu command line, run as a user runs it: a real process over a data directory."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def tuohu(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUOHU_DATABASE")}
    env["TUOHU_DATA_DIR"] = str(data_dir)
    return subprocess.run([sys.executable, "-m", "interfaces.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_import_then_report_funnel_prints_the_counts_of_the_file(tmp_path: Path, bank_marketing_dir: Path) -> None:
    path = bank_marketing_dir / "bank.csv"
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter=";"))

    imported = tuohu(tmp_path, "import", "bank-marketing", str(path), "--year", "2009")
    assert imported.returncode == 0, imported.stderr
    funnel = tuohu(tmp_path, "report", "funnel", "--json")

    assert funnel.returncode == 0, funnel.stderr
    counts = json.loads(funnel.stdout)
    assert list(counts) == ["registered", "screened", "qualified", "visited", "proposed", "contracted", "account_opened"]
    assert counts["registered"] == len(rows)
    assert counts["account_opened"] == sum(r["y"] == "yes" for r in rows)


def test_import_of_a_sample_without_year_is_refused_with_exit_2(tmp_path: Path, bank_marketing_dir: Path) -> None:
    result = tuohu(tmp_path, "import", "bank-marketing", str(bank_marketing_dir / "bank.csv"))
    assert result.returncode == 2
    assert "--year" in result.stderr


def test_import_of_a_missing_file_names_it(tmp_path: Path) -> None:
    result = tuohu(tmp_path, "import", "bank-marketing", str(tmp_path / "nope.csv"))
    assert result.returncode != 0
    assert "nope.csv" in result.stderr


def test_readme_carries_the_current_event_catalogue() -> None:
    from interfaces.catalogue import catalogue_markdown

    readme = (ROOT / "README.md").read_text()
    start, end = "<!-- catalogue:start -->\n", "<!-- catalogue:end -->"
    assert readme[readme.index(start) + len(start):readme.index(end)] == catalogue_markdown()


def test_users_add_prints_a_token_once_list_shows_the_user_and_revoke_revokes(tmp_path: Path) -> None:
    added = tuohu(tmp_path, "users", "add", "root", "--role", "admin")
    assert added.returncode == 0, added.stderr
    [token] = added.stdout.split()
    assert re.fullmatch(r"tuohu_root_[0-9a-f]{48}", token)
    assert "shown once" in added.stderr

    listed = tuohu(tmp_path, "users", "list", "--json")
    revoked = tuohu(tmp_path, "users", "revoke", "root", "--reason", "bootstrap admin replaced")
    after = tuohu(tmp_path, "users", "list", "--json")

    assert [(u["name"], u["role"], u["status"]) for u in json.loads(listed.stdout)] == [("root", "admin", "active")]
    assert revoked.returncode == 0, revoked.stderr
    assert [u["status"] for u in json.loads(after.stdout)] == ["revoked"]
    assert token not in listed.stdout + after.stdout


def test_users_add_refuses_a_branch_head_without_a_branch_and_a_name_twice(tmp_path: Path) -> None:
    no_branch = tuohu(tmp_path, "users", "add", "head-sun", "--role", "branch_head")
    first = tuohu(tmp_path, "users", "add", "head-sun", "--role", "branch_head", "--branch", "shanghai-pudong")
    twice = tuohu(tmp_path, "users", "add", "head-sun", "--role", "reviewer")

    assert (no_branch.returncode, first.returncode, twice.returncode) == (2, 0, 2)
    assert "branch" in no_branch.stderr and "already exists" in twice.stderr


def test_staff_performance_without_a_scheme_and_a_year_out_of_range_say_so(tmp_path: Path) -> None:
    no_scheme = tuohu(tmp_path, "report", "staff-performance", "--period", "2009")
    bad_year = tuohu(tmp_path, "import", "bank-marketing", str(ROOT / "README.md"), "--year", "1")

    assert no_scheme.returncode == 1
    assert "no appraisal scheme is defined for 2009" in no_scheme.stdout + no_scheme.stderr
    assert "Traceback" not in no_scheme.stdout + no_scheme.stderr
    assert bad_year.returncode == 2
    assert "1900" in bad_year.stdout + bad_year.stderr


def test_an_unreachable_postgresql_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUOHU_")}
    env.update(TUOHU_DATA_DIR=str(tmp_path), TUOHU_DATABASE_URL="postgresql://postgres@127.0.0.1:1/test")
    result = subprocess.run([sys.executable, "-m", "interfaces.cli", "projections", "status"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)

    assert result.returncode == 2
    assert "cannot connect to PostgreSQL" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_a_missing_postgresql_schema_is_created(tmp_path: Path) -> None:
    import uuid

    import psycopg

    from tests.conftest import POSTGRES_URL

    schema = f"tuohu_new_{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUOHU_")}
    env.update(TUOHU_DATA_DIR=str(tmp_path), TUOHU_DATABASE_URL=POSTGRES_URL, TUOHU_DATABASE_SCHEMA=schema)
    try:
        result = subprocess.run([sys.executable, "-m", "interfaces.cli", "projections", "status", "--json"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        with psycopg.connect(POSTGRES_URL) as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s", (schema,)).fetchone()[0]
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    assert result.returncode == 0, result.stdout + result.stderr
    assert tables > 0


def test_an_evaluation_of_an_unknown_unit_names_the_field_given(tmp_path: Path) -> None:
    planet = tuohu(tmp_path, "report", "evaluation", "--period", "2009-Q3", "--unit-type", "planet", "--unit-id", "x")

    assert planet.returncode == 2
    said = planet.stdout + planet.stderr
    assert "unit_type: unit_type must be one of" in said and "Traceback" not in said  # the field, then why


def test_projections_verify_of_one_projection_checks_that_one_and_names_a_table_that_differs(
        tmp_path: Path, bank_marketing_dir: Path) -> None:
    import sqlite3

    assert tuohu(tmp_path, "import", "bank-marketing", str(bank_marketing_dir / "bank.csv"),
                 "--year", "2009").returncode == 0
    clean = tuohu(tmp_path, "projections", "verify", "pipeline")
    assert clean.returncode == 0, clean.stderr
    assert [line.split(":")[0] for line in clean.stdout.splitlines()] == ["pipeline"]

    with sqlite3.connect(tmp_path / "readmodels.sqlite") as conn:  # a live row changed behind the projection's back
        [table] = [name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                   if re.fullmatch(r"rm_customers_g\d+", name)]
        assert conn.execute(f"UPDATE {table} SET stage = 'registered' WHERE rowid = "  # noqa: S608 - a table name
                            f"(SELECT min(rowid) FROM {table} WHERE stage = 'account_opened')").rowcount == 1
    changed = tuohu(tmp_path, "projections", "verify", "pipeline")
    assert changed.returncode == 1
    assert "MISMATCH pipeline.customers" in changed.stdout + changed.stderr
    other = tuohu(tmp_path, "projections", "verify", "team")  # another projection: not affected
    assert other.returncode == 0, other.stdout
    unknown = tuohu(tmp_path, "projections", "verify", "nope")
    assert unknown.returncode == 2
    assert "no projection 'nope'" in unknown.stdout + unknown.stderr


def test_report_funnel_refuses_a_malformed_month_or_a_range_ending_before_it_starts(tmp_path: Path) -> None:
    malformed = tuohu(tmp_path, "report", "funnel", "--by", "month", "--from-month", "2009-13")
    assert malformed.returncode == 2
    assert "month_from" in malformed.stderr + malformed.stdout
    inverted = tuohu(tmp_path, "report", "funnel", "--month-from", "2009-04", "--month-to", "2009-03", "--json")
    assert inverted.returncode == 2
    assert "month_to: must not be before month_from" in inverted.stderr + inverted.stdout


def test_a_report_is_written_to_one_destination_and_a_bad_one_is_named(tmp_path: Path) -> None:
    two = tuohu(tmp_path, "report", "funnel", "--json", "--csv")
    missing = tuohu(tmp_path, "report", "funnel", "--xlsx", str(tmp_path / "no" / "such" / "dir" / "f.xlsx"))
    directory = tuohu(tmp_path, "report", "funnel", "--xlsx", str(tmp_path))

    assert two.returncode == 2 and "give one of --json, --csv and --xlsx" in two.stderr + two.stdout
    assert not two.stdout.startswith("{")  # nothing printed
    for refused in (missing, directory):
        said = " ".join((refused.stderr + refused.stdout).split())
        assert refused.returncode == 2, said
        assert "cannot write" in said and "Traceback" not in said


def _a_2009_scheme(data_dir: Path) -> None:
    """An appraisal scheme for 2009 in ``data_dir``'s store, so that its evaluation can be reported."""
    from datetime import datetime, timezone
    from decimal import Decimal

    from application import Settings, bootstrap
    from domain.base import Context

    head = Context("head-zhao", "branch_head", occurred_at=datetime(2009, 1, 2, tzinfo=timezone.utc))
    app = bootstrap(Settings(data_dir=data_dir, database_url=None))
    try:
        app.define_appraisal_scheme(head, year="2009", indicators=[
            {"indicator": "new_customers", "group": "acquisition_results", "weight": Decimal(100)}])
    finally:
        app.close()


def test_a_report_wider_than_the_terminal_prints_each_row_a_line_per_column(tmp_path: Path,
                                                                           bank_marketing_dir: Path) -> None:
    """A staff-performance report has a column per indicator and figure: at 100 columns each row is printed
    as a table of its own, every value whole; a terminal wide enough gets the one table."""
    lines = (bank_marketing_dir / "bank.csv").read_text().splitlines()
    sample = tmp_path / "sample.csv"
    sample.write_text("\n".join(lines[:6]) + "\n")  # five customers, registered in 2009
    assert tuohu(tmp_path, "import", "bank-marketing", str(sample), "--year", "2009").returncode == 0
    _a_2009_scheme(tmp_path)

    def report(columns: int) -> str:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TUOHU_DATABASE")}
        env.update(TUOHU_DATA_DIR=str(tmp_path), COLUMNS=str(columns))
        done = subprocess.run([sys.executable, "-m", "interfaces.cli", "report", "staff-performance", "--period",
                               "2009"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        return done.stdout

    narrow, wide = report(100), report(400)

    assert "staff 2009: row 1 of 1" in narrow
    assert max(len(line) for line in narrow.splitlines()) <= 100
    assert re.search(r"│ indicators\.new_customers\.actual +│ 5 +│", narrow)  # the five rows of the sample
    assert "row 1 of" not in wide
    header = next(line for line in wide.splitlines() if "composite" in line)
    assert "indicators.new_customers.actual" in header and "…" not in header


@pytest.mark.parametrize(("option", "args"), [
    ("--from", ("visits", "--from", "2009-08-03T00:00:00", "--to", "2009-08-04T00:00:00Z")),
    ("--to", ("visits", "--from", "2009-08-03T00:00:00Z", "--to", "2009-08-04")),
    ("--as-of", ("evaluation", "--period", "2009-Q3", "--as-of", "2100-01-01T00:00:00")),
    ("--effective-as-of", ("evaluation", "--period", "2009-Q3", "--effective-as-of", "2009-10-01T00:00:00")),
])
def test_a_report_time_without_a_timezone_is_refused_naming_the_option_as_the_route_refuses_it(
        tmp_path: Path, option: str, args: tuple[str, ...]) -> None:
    """``/reports/visits/calendar`` and ``/reports/evaluation`` answer 422 for a time without an offset;
    the commands exit 2 naming the option rather than reading it as UTC."""
    _a_2009_scheme(tmp_path)
    refused = tuohu(tmp_path, "report", *args)

    assert refused.returncode == 2, refused.stdout
    said = " ".join(refused.stderr.split())
    assert f"'{option}'" in said and "no timezone" in said and "Z or +08:00" in said


def test_report_times_with_an_offset_are_read_as_before(tmp_path: Path) -> None:
    _a_2009_scheme(tmp_path)
    visits = tuohu(tmp_path, "report", "visits", "--from", "2009-08-03T08:00:00+08:00", "--to", "2009-08-04T00:00:00Z",
                   "--json")
    as_of = tuohu(tmp_path, "report", "evaluation", "--period", "2009-Q3", "--as-of", "2100-01-01T00:00:00Z",
                  "--json")
    effective = tuohu(tmp_path, "report", "evaluation", "--period", "2009-Q3", "--effective-as-of",
                      "2009-10-01T08:00:00+08:00", "--json")

    assert (visits.returncode, as_of.returncode, effective.returncode) == (0, 0, 0), \
        visits.stderr + as_of.stderr + effective.stderr
    assert json.loads(visits.stdout)["items"] == []
    assert json.loads(as_of.stdout)["as_of"].startswith("2100-01-01")
    assert json.loads(effective.stdout)["effective_as_of"].startswith("2009-10-01")
