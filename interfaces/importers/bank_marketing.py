"""Import the UCI Bank Marketing files (Moro, Rita & Cortez 2014; CC BY 4.0).

Both formats are read: ``bank-full.csv`` / ``bank.csv`` (17 columns, with
``balance`` and ``day``) and ``bank-additional-full.csv`` / ``bank-additional.csv``
(21 columns, ``day_of_week`` instead of ``day``, no ``balance``, CRLF line
ends). Fields are ``;``-separated; strings are double-quoted.

What one row becomes (measures §2):

- a retail **Customer** won through outbound phone campaigns (channel
  ``telemarketing``), with facts: basic (age, job, marital, education),
  financial (balance in EUR, housing loan, personal loan), business (the
  previous campaign: pdays, previous, poutcome); ``default`` becomes the credit
  standing (``in_default`` / ``no_default`` / ``unknown``, source ``bank_records``);
  then screened by the built-in scorecard (``domain.screening``);
- one phone **Visit** (planned, then conducted) per contact counted in
  ``campaign``; the last one carries ``duration`` in seconds;
- for ``y = "yes"``: a manual review (qualified), a term-deposit **Proposal**
  drafted, approved, presented and accepted, a **Contract** drafted, reviewed,
  approved and signed, and the account applied for, documents accepted, account
  opened and the term deposit signed up.

Dates. The files hold the month (and in the older format the day) of the last
contact, but no year. The full files are in chronological order from May 2008
to November 2010, so the year is found by this rule: the first row is in
``start_year`` (2008 unless ``--year`` says otherwise), and a row whose month
is earlier in the calendar than the previous row's month starts the next
year. A file that is not chronological (such as the random 10 % sample
``bank.csv``) must be given ``--year``; every row is then dated in that year.
Without ``--year``, a file whose rule would run past 2010 is refused as not
chronological before anything is written. The additional format has no day of
month: its rows are dated on the first of the month. All events of a row occur
at that date, 00:00 UTC; earlier contacts of the same campaign have no date of
their own in the data and carry the same date, with their sequence number.

Identity. Every aggregate's id is derived (UUID v5) from the file's SHA-256
and the row's line number, so importing the same file again adds nothing.

A bad row is reported with its line number and reason and skipped; every other
row still imports.
"""

from __future__ import annotations

import csv
import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable, Iterator

from eventsourcing.persistence import IntegrityError

from application.app import TuohuApplication, screening_inputs
from domain import screening
from domain.base import Context, DomainError, TuohuAggregate
from domain.contract import Contract
from domain.customer import Customer
from domain.proposal import Proposal
from domain.visit import Visit

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
FIRST_YEAR, LAST_YEAR = 2008, 2010
NAMESPACE = uuid.UUID("0f4f5e8a-7c4b-4d0e-9a53-62616e6b6d6b")

COMMON_COLUMNS = ("age", "job", "marital", "education", "default", "housing", "loan", "contact", "month",
                  "duration", "campaign", "pdays", "previous", "poutcome", "y")
FULL_COLUMNS = ("balance", "day")
ADDITIONAL_COLUMNS = ("day_of_week",)

CAMPAIGN_DESK = "campaign-desk"
BRANCH = "lisbon-telemarketing"
PRODUCT = "term_deposit"


class ImportRefused(Exception):
    """The file as a whole cannot be imported (wrong format, not chronological)."""


@dataclass(frozen=True)
class Row:
    """One parsed row: the facts the import records."""

    line: int
    age: int
    job: str
    marital: str
    education: str
    default: str
    balance: Decimal | None
    housing: bool | None
    loan: bool | None
    contact: str
    month: int
    day: int
    duration: int
    campaign: int
    pdays: int
    previous: int
    poutcome: str
    subscribed: bool


@dataclass
class ImportReport:
    """What an import did: rows read, imported, already present, and bad rows (line, reason)."""

    file: str
    sha256: str
    rows: int = 0
    imported: int = 0
    already_present: int = 0
    events: int = 0
    customers: int = 0
    visits: int = 0
    accounts_opened: int = 0
    bad_rows: list[tuple[int, str]] = field(default_factory=list)


def _yes_no(value: str, name: str) -> bool | None:
    if value == "yes":
        return True
    if value == "no":
        return False
    if value == "unknown":
        return None
    raise ValueError(f"{name} must be yes, no or unknown; got {value!r}")


#: The most contacts of one campaign a row may have: each becomes a visit, so a mistyped count
#: would write that many events (the UCI files' largest is 63).
MAX_CAMPAIGN_CONTACTS = 100


def _int(value: str, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name} must be a whole number; got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be at least {minimum}; got {number}")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} must be at most {maximum}; got {number}")
    return number


def parse_row(line: int, raw: dict[str, str]) -> Row:
    """Parse one CSV record. Raises ``ValueError`` naming the field and the reason."""
    missing = [c for c in COMMON_COLUMNS if raw.get(c) in (None, "")]
    if missing:
        raise ValueError(f"missing value for {', '.join(missing)}")
    month_name = raw["month"].lower()
    if month_name not in MONTHS:
        raise ValueError(f"month must be one of {'/'.join(MONTHS)}; got {raw['month']!r}")
    month = MONTHS.index(month_name) + 1
    if "day" in raw and raw.get("day") not in (None, ""):
        day = _int(raw["day"], "day", 1)
        if day > 31:
            raise ValueError(f"day must be 1-31; got {day}")
    else:
        day = 1
    balance: Decimal | None = None
    if "balance" in raw:
        try:
            balance = Decimal(raw["balance"])
        except InvalidOperation:
            raise ValueError(f"balance must be a number of EUR; got {raw['balance']!r}") from None
        if not balance.is_finite():
            raise ValueError(f"balance must be finite; got {raw['balance']!r}")
    y = raw["y"]
    if y not in ("yes", "no"):
        raise ValueError(f"y must be yes or no; got {y!r}")
    default = raw["default"]
    if default not in ("yes", "no", "unknown"):
        raise ValueError(f"default must be yes, no or unknown; got {default!r}")
    return Row(
        line=line, age=_int(raw["age"], "age", 0), job=raw["job"], marital=raw["marital"],
        education=raw["education"], default=default, balance=balance,
        housing=_yes_no(raw["housing"], "housing"), loan=_yes_no(raw["loan"], "loan"), contact=raw["contact"],
        month=month, day=day, duration=_int(raw["duration"], "duration", 0),
        campaign=_int(raw["campaign"], "campaign", 1, MAX_CAMPAIGN_CONTACTS), pdays=_int(raw["pdays"], "pdays", -1),
        previous=_int(raw["previous"], "previous", 0), poutcome=raw["poutcome"], subscribed=y == "yes",
    )


_RAW_BYTE = re.compile("[\udc80-\udcff]")
"""A byte that is not UTF-8, as ``errors="surrogateescape"`` decodes it."""


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, str] | None, str | None]]:
    """Yield ``(line number, record, error)`` for each data line of the file (UTF-8; a line that is not
    is reported as an error, naming its first byte that is not)."""
    with path.open(newline="", encoding="utf-8", errors="surrogateescape") as fh:
        reader = csv.reader(fh, delimiter=";", quotechar='"')
        try:
            header = next(reader)
        except StopIteration:
            raise ImportRefused(f"{path} is empty") from None
        missing = [c for c in COMMON_COLUMNS if c not in header]
        if missing or not (all(c in header for c in FULL_COLUMNS) or all(c in header for c in ADDITIONAL_COLUMNS)):
            raise ImportRefused(
                f"{path} is not a Bank Marketing file: header lacks {', '.join(missing) or 'balance/day or day_of_week'}"
            )
        for values in reader:
            line = reader.line_num
            if not values or values == [""]:
                continue
            raw = _RAW_BYTE.search(";".join(values))
            if raw is not None:
                yield line, None, f"is not UTF-8 text (byte 0x{ord(raw.group()) - 0xDC00:02x})"
                continue
            if len(values) != len(header):
                yield line, None, f"expected {len(header)} fields, found {len(values)}"
                continue
            yield line, dict(zip(header, values)), None


def assign_years(months: list[int], start_year: int, fixed: bool) -> list[int]:
    """Years for a sequence of months by the documented rule (see the module docstring)."""
    if fixed:
        return [start_year] * len(months)
    years, year, previous = [], start_year, None
    for month in months:
        if previous is not None and month < previous:
            year += 1
        years.append(year)
        previous = month
    return years


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class BankMarketingImport:
    """Turns rows into aggregates and saves them in batches (one transaction each)."""

    def __init__(self, app: TuohuApplication, path: Path, *, year: int | None = None, batch_rows: int = 500) -> None:
        self.app = app
        self.path = Path(path)
        self.year = year
        self.batch_rows = batch_rows
        self.sha = file_sha256(self.path)
        self.correlation_id = f"import:bank-marketing:{self.sha[:16]}"

    def _id(self, line: int, what: str) -> uuid.UUID:
        return uuid.uuid5(NAMESPACE, f"{self.sha}:{line}:{what}")

    def _ctx(self, actor: str, role: str, when: datetime, line: int) -> Context:
        return Context(actor_id=actor, actor_role=role, occurred_at=when, channel="import",
                       correlation_id=self.correlation_id,
                       causation_id=f"bank-marketing:{self.sha[:16]}:line:{line}")

    def build(self, row: Row, year: int) -> tuple[list[TuohuAggregate], int]:
        """The aggregates for one row and the number of events they hold."""
        when = datetime(year, row.month, row.day, tzinfo=timezone.utc)
        desk = self._ctx(CAMPAIGN_DESK, "customer_manager", when, row.line)
        customer = Customer.register(
            desk, kind="retail", acquisition_channel="telemarketing",
            source_detail=f"outbound phone campaign ({row.contact}); UCI Bank Marketing line {row.line}",
            segment="mass_retail", manager_id=CAMPAIGN_DESK, branch=BRANCH,
            customer_id=self._id(row.line, "customer"),
        )
        customer.record_facts(desk, group="basic", facts={
            "age": row.age, "job": row.job, "marital": row.marital, "education": row.education})
        financial: dict[str, Any] = {"housing_loan": row.housing, "personal_loan": row.loan}
        if row.balance is not None:
            financial.update(balance=row.balance, currency="EUR")
        customer.record_facts(desk, group="financial", facts=financial)
        customer.record_facts(desk, group="business", facts={
            "previous_campaign_days_since_contact": row.pdays, "previous_campaign_contacts": row.previous,
            "previous_campaign_outcome": row.poutcome})
        customer.record_credit_standing(desk, source="bank_records", result={
            "yes": "in_default", "no": "no_default"}.get(row.default, "unknown"))
        result = screening.score(screening_inputs(customer))
        customer.record_screening(
            self._ctx("screening-model", "system", when, row.line), model_name=result.model_name,
            model_version=result.model_version, inputs=result.inputs, score=result.score,
            contributions=result.contributions, outcome=result.outcome)
        aggregates: list[TuohuAggregate] = [customer]
        for sequence in range(1, row.campaign + 1):
            last = sequence == row.campaign
            visit = Visit.plan(desk, customer_id=customer.id, purpose=f"term deposit campaign, contact {sequence}",
                               scheduled_at=when, staff=[CAMPAIGN_DESK], method="phone", kind="acquisition",
                               visit_id=self._id(row.line, f"visit:{sequence}"))
            visit.conduct(desk, outcome=("subscribed" if row.subscribed else "not subscribed") if last else "contacted",
                          duration_seconds=row.duration if last else None)
            aggregates.append(visit)
        if row.subscribed:
            aggregates.extend(self._won(row, when, customer))
        return aggregates, sum(len(a.pending_events) for a in aggregates)

    def _won(self, row: Row, when: datetime, customer: Customer) -> list[TuohuAggregate]:
        desk = self._ctx(CAMPAIGN_DESK, "customer_manager", when, row.line)
        reviewer = self._ctx("acquisition-reviewer", "reviewer", when, row.line)
        product = self._ctx("product-desk", "product_manager", when, row.line)
        head = self._ctx("branch-head", "branch_head", when, row.line)
        ops = self._ctx("operations-desk", "operations", when, row.line)
        customer.review(reviewer, decision="qualified",
                        reason=f"subscribed in the campaign (UCI Bank Marketing line {row.line})")
        proposal = Proposal.draft(desk, customer_id=customer.id, products=[PRODUCT],
                                  pricing_terms={"product": PRODUCT, "currency": "EUR"},
                                  rights_and_obligations="standard term deposit terms of the campaign",
                                  proposal_id=self._id(row.line, "proposal"))
        proposal.submit(desk)
        proposal.approve(product)
        proposal.present(desk)
        proposal.accept(desk, reason="customer subscribed by phone")
        contract = Contract.draft_from(desk, proposal, contract_id=self._id(row.line, "contract"))
        contract.review_clauses(reviewer, findings=[])
        contract.approve(head)
        contract.sign(head, customer_signatory="customer", customer_risk_cases=[])
        customer.apply_for_account(desk, account_type=PRODUCT, documents=["identity document", "phone subscription record"])
        customer.review_documents(ops, accepted=True)
        customer.open_account(ops, account_number=f"BM-{self.sha[:8]}-{row.line:06d}")
        customer.sign_products(ops, products=[PRODUCT])
        return [proposal, contract]

    def run(self, progress: Callable[[int], None] | None = None) -> ImportReport:
        """Import the file. Raises :class:`ImportRefused` before writing anything
        when the file as a whole cannot be imported."""
        report = ImportReport(file=str(self.path), sha256=self.sha)
        parsed: list[Row] = []
        for line, raw, error in read_rows(self.path):
            report.rows += 1
            if error is None:
                try:
                    parsed.append(parse_row(line, raw or {}))
                except ValueError as exc:
                    error = str(exc)
            if error is not None:
                report.bad_rows.append((line, error))
        fixed = self.year is not None
        years = assign_years([r.month for r in parsed], self.year or FIRST_YEAR, fixed)
        if not fixed and years and years[-1] > LAST_YEAR:
            raise ImportRefused(
                f"{self.path} is not in chronological order (its months would run to {years[-1]}, past "
                f"{LAST_YEAR}); give the year of its rows with --year"
            )
        for start in range(0, len(parsed), self.batch_rows):
            rows = list(zip(parsed[start:start + self.batch_rows], years[start:start + self.batch_rows]))
            self._save_batch(rows, report)
            if progress:
                progress(len(rows))
        return report

    def _save_batch(self, rows: list[tuple[Row, int]], report: ImportReport) -> None:
        if rows and self._present(self._id(rows[0][0].line, "customer")):
            # Imported before (at least in part): keep only the rows not yet present.
            fresh_rows = [(row, year) for row, year in rows if not self._present(self._id(row.line, "customer"))]
            report.already_present += len(rows) - len(fresh_rows)
            rows = fresh_rows
        built: list[tuple[Row, list[TuohuAggregate], int]] = []
        for row, year in rows:
            try:
                aggregates, events = self.build(row, year)
            except (DomainError, ValueError) as exc:
                report.bad_rows.append((row.line, str(exc)))
                continue
            built.append((row, aggregates, events))
        try:
            self.app.save(*(a for _, aggs, _ in built for a in aggs))
        except IntegrityError:
            # Some rows were imported before: save only the ones not yet present.
            fresh = [b for b in built if not self._present(b[1][0].id)]
            report.already_present += len(built) - len(fresh)
            if fresh:
                self.app.save(*(a for _, aggs, _ in fresh for a in aggs))
            built = fresh
        for row, aggregates, events in built:
            report.imported += 1
            report.events += events
            report.customers += 1
            report.visits += row.campaign
            report.accounts_opened += int(row.subscribed)

    def _present(self, aggregate_id: uuid.UUID) -> bool:
        return bool(self.app.recorder.select_events(aggregate_id, limit=1))


def import_bank_marketing(app: TuohuApplication, path: Path, *, year: int | None = None,
                          progress: Callable[[int], None] | None = None) -> ImportReport:
    """Import one Bank Marketing file into ``app``; see the module docstring."""
    return BankMarketingImport(app, path, year=year).run(progress)


def count_data_lines(path: Path) -> int:
    """Number of data lines, header excluded (for a progress bar)."""
    with Path(path).open("rb") as fh:
        return max(sum(1 for _ in fh) - 1, 0)
