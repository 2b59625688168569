"""The ``tuohu`` command line (Typer).

    tuohu import bank-marketing FILE [--year YEAR]
    tuohu serve [--host 127.0.0.1] [--port 8000]
    tuohu report funnel [--json]
    tuohu projections status | catch-up
    tuohu users add NAME --role ROLE [--branch B] | list | rotate NAME | revoke NAME | matrix
    tuohu audit history | state | actor | explain | seal | verify | export;  tuohu privacy restrict | erase | status
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from interfaces.cli_audit import _fail, audit_app, privacy_app, zoned

app = typer.Typer(help="tuohu (拓戶): event-sourced customer acquisition for banks.", no_args_is_help=True)
import_app = typer.Typer(help="Import outside files.", no_args_is_help=True)
report_app = typer.Typer(help="Reports from the read models.", no_args_is_help=True)
projections_app = typer.Typer(help="Read-model projections.", no_args_is_help=True)
events_app = typer.Typer(help="The stored events.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(report_app, name="report")
app.add_typer(projections_app, name="projections")
app.add_typer(events_app, name="events")
app.add_typer(audit_app, name="audit")
app.add_typer(privacy_app, name="privacy")

console = Console(stderr=True)


def _services():  # type: ignore[no-untyped-def]
    from application import Settings, bootstrap
    from projections import build_pipeline

    settings = Settings()
    application = bootstrap(settings)
    return settings, application, build_pipeline(application, settings)


@import_app.command("bank-marketing")
def import_bank_marketing(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="bank-full.csv, bank.csv, bank-additional-full.csv or bank-additional.csv")],
    year: Annotated[Optional[int], typer.Option(
        min=1900, max=2100, help="Year of every row (1900-2100), for a file not in chronological order "
                                 "(e.g. the 10% sample bank.csv)")] = None,
) -> None:
    """Import the UCI Bank Marketing file: customers, phone visits, won accounts."""
    from interfaces.importers.bank_marketing import ImportRefused, count_data_lines
    from interfaces.importers.bank_marketing import import_bank_marketing as run_import
    from projections import ProjectionFailed

    _settings, application, pipeline = _services()
    total = count_data_lines(file)
    try:
        with Progress(TextColumn("[bold]importing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=False) as progress:
            task = progress.add_task("rows", total=total)
            report = run_import(application, file, year=year, progress=lambda n: progress.advance(task, n))
    except ImportRefused as exc:
        console.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(2) from None
    for line, reason in report.bad_rows:
        console.print(f"line {line}: {reason} (skipped)", style="yellow", markup=False, highlight=False)
    try:
        position = pipeline.catch_up()
    except ProjectionFailed as failure:
        raise _fail(f"imported {report.imported} rows ({report.events} events, recorded), but {failure}; "
                    "see tuohu projections status", 1) from None
    table = Table(title=f"{file.name} (sha256 {report.sha256[:12]}…)")
    reached = set(position.values())  # each read model's position after catching up (the same, normally)
    at = str(reached.pop()) if len(reached) == 1 else ", ".join(f"{name} {p}" for name, p in position.items())
    for column in ("rows", "imported", "already present", "bad rows", "events", "visits", "accounts opened",
                   "read models at"):
        table.add_column(column, justify="right")
    table.add_row(*(str(v) for v in (report.rows, report.imported, report.already_present, len(report.bad_rows),
                                     report.events, report.visits, report.accounts_opened, at)))
    console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    projections: Annotated[bool, typer.Option(
        "--projections/--no-projections",
        help="Keep the read models up to date in this process (off: run `tuohu projections run` workers)")] = True,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) over the data directory or database."""
    import uvicorn

    from application import Settings
    from interfaces.api import create_app

    uvicorn.run(create_app(Settings(), run_projections=projections), host=host, port=port)


def _json_default(value: object) -> object:
    from datetime import datetime
    from decimal import Decimal

    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]
AsCsv = Annotated[bool, typer.Option("--csv", help="Print CSV")]
AsXlsx = Annotated[Optional[Path], typer.Option("--xlsx", help="Write an XLSX workbook to this file")]


def _emit(data: object, title: str, as_json: bool, as_csv: bool, xlsx: Path | None) -> None:
    """Print ``data`` as JSON, CSV or a table, or write it as XLSX. Exits 2 (nothing written) when more
    than one of ``--json``, ``--csv`` and ``--xlsx`` is given, or the workbook cannot be written there."""
    from interfaces import reports

    if as_json + as_csv + (xlsx is not None) > 1:
        raise _fail("give one of --json, --csv and --xlsx")
    if as_json:
        typer.echo(json.dumps(data, default=_json_default, ensure_ascii=False))
    elif as_csv:
        typer.echo(reports.to_csv(data), nl=False)
    elif xlsx is not None:
        workbook = reports.to_xlsx(data, title)
        try:
            xlsx.write_bytes(workbook)
        except OSError as exc:
            raise _fail(f"cannot write {xlsx}: {exc.strerror or exc}") from None
        console.print(f"wrote {xlsx}")
    else:
        _print_rows(reports.tabulate(data), title)


def _print_rows(rows: list[dict[str, Any]], title: str) -> None:
    """``rows`` as a table, or, when the table is wider than the terminal (a staff-performance report
    has some fifty columns), each row as a table of its own, a line per column (as ``psql``'s expanded
    display): every value whole, none squeezed into a column a few characters wide."""
    out = Console()
    columns = list(dict.fromkeys(k for row in rows for k in row))
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    if out.measure(table, options=out.options.update_width(1_000_000)).maximum <= out.width:
        out.print(table)
        return
    for number, row in enumerate(rows, start=1):
        record = Table(title=f"{title}: row {number} of {len(rows)}", show_header=False)
        record.add_column("column", style="bold", no_wrap=True)
        record.add_column("value", overflow="fold")
        for column in columns:
            record.add_row(column, "" if row.get(column) is None else str(row.get(column)))
        out.print(record)


PageLimit = Annotated[Optional[int], typer.Option(
    min=1, max=500, help="rows per page (50 by default; with --csv / --xlsx every row unless given)")]
PageCursor = Annotated[Optional[str], typer.Option(help="the page after the one that printed this cursor")]


def _paged(build: Callable[[int, Optional[str]], Any], limit: int | None, cursor: str | None, exporting: bool,
           items: str = "items") -> Any:
    """One page of a list report (``build(limit, cursor)``), or every row when exporting without ``--limit``."""
    from interfaces import reports

    if exporting and limit is None and cursor is None:
        return _report(lambda: reports.every_row(lambda after: build(reports.MAX_LIMIT, after), items))
    return _report(lambda: build(limit or reports.DEFAULT_LIMIT, cursor))


def _emit_page(data: Any, title: str, as_json: bool, as_csv: bool, xlsx: Path | None, items: str = "items") -> None:
    """As :func:`_emit`; a table is followed by the rows shown, the total and the next page's cursor."""
    _emit(data, title, as_json, as_csv, xlsx)
    if not (as_json or as_csv or xlsx):
        shown = len(data[items])
        console.print(f"{shown:,} of {data['total']:,} rows"
                      + (f"; next page: --cursor {data['next']}" if data["next"] else ""))


def _read_models():  # type: ignore[no-untyped-def]
    """The read models, caught up to the newest event (exit 1 naming a stopped projection)."""
    from projections import ProjectionFailed

    _settings, _application, read_models = _services()
    try:
        read_models.catch_up()
    except ProjectionFailed as failure:
        console.print(f"[red]{failure}[/red]")
        raise typer.Exit(1) from None
    return read_models


def _report(build: object) -> object:
    from interfaces.reports import ReportError
    from projections.evaluation import NoAppraisalScheme

    try:
        return build()  # type: ignore[operator]
    except ReportError as exc:
        raise _fail(f"{exc.field}: {exc.reason}") from None
    except NoAppraisalScheme as exc:
        raise _fail(f"{exc} (define one: POST /appraisal-schemes)", 1) from None


@report_app.command("funnel")
def report_funnel(
    by: Annotated[Optional[str], typer.Option(help="channel, segment, month or kind")] = None,
    from_month: Annotated[Optional[str], typer.Option(
        "--from-month", "--month-from", help="first registration month YYYY-MM (the route's month_from)")] = None,
    to_month: Annotated[Optional[str], typer.Option(
        "--to-month", "--month-to", help="last registration month YYYY-MM (the route's month_to)")] = None,
    as_json: AsJson = False, as_csv: AsCsv = False, xlsx: AsXlsx = None,
) -> None:
    """Customers that reached each acquisition stage (registered → account_opened), with conversion rates by group."""
    from interfaces import reports

    rm = _read_models()
    data = _report(lambda: reports.funnel(rm, by, from_month, to_month))
    if by is None and not (as_json or as_csv or xlsx):
        table = Table(title="Acquisition funnel")
        table.add_column("stage")
        table.add_column("customers", justify="right")
        table.add_column("of registered", justify="right")
        registered = data["registered"] or 1  # type: ignore[index]
        for stage, count in data.items():  # type: ignore[union-attr]
            table.add_row(stage, f"{count:,}", f"{100 * count / registered:.1f}%")
        Console().print(table)
        return
    _emit(data, "funnel", as_json, as_csv, xlsx)


@report_app.command("customers")
def report_customers(
    q: Annotated[Optional[str], typer.Option(help="text search: name, account number, id")] = None,
    stage: Optional[str] = None, manager: Optional[str] = None, branch: Optional[str] = None,
    channel: Optional[str] = None, segment: Optional[str] = None, kind: Optional[str] = None,
    key_customer: Annotated[Optional[bool], typer.Option("--key-customer/--not-key-customer")] = None,
    risk_level: Optional[str] = None,
    limit: PageLimit = None, cursor: PageCursor = None, offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: AsJson = False, as_csv: AsCsv = False, xlsx: AsXlsx = None,
) -> None:
    """Customers with filters and text search, newest registration first, a page at a time."""
    from interfaces import reports

    rm = _read_models()
    data = _paged(lambda size, after: reports.customers(
        rm, q=q, limit=size, offset=offset if after is None or after == cursor else 0, cursor=after, stage=stage,
        manager_id=manager, branch=branch, channel=channel, segment=segment, kind=kind, is_key=key_customer,
        risk_level=risk_level), limit, cursor, as_csv or xlsx is not None)
    _emit_page(data, "customers", as_json, as_csv, xlsx)


@report_app.command("visits")
def report_visits(
    start: Annotated[datetime, typer.Option("--from", callback=zoned, help="from (with its offset: Z, +08:00), "
                                                                            "inclusive")],
    end: Annotated[datetime, typer.Option("--to", callback=zoned, help="to (with its offset: Z, +08:00), exclusive")],
    staff: Optional[str] = None, limit: PageLimit = None, cursor: PageCursor = None,
    as_json: AsJson = False, as_csv: AsCsv = False, xlsx: AsXlsx = None,
) -> None:
    """The visit calendar between two times, a page at a time."""
    from interfaces import reports

    rm = _read_models()
    data = _paged(lambda size, after: reports.visit_calendar(rm, start, end, staff, limit=size, cursor=after),
                  limit, cursor, as_csv or xlsx is not None)
    _emit_page(data, "visits", as_json, as_csv, xlsx)


@report_app.command("overdue-follow-ups")
def report_overdue(limit: PageLimit = None, cursor: PageCursor = None, as_json: AsJson = False, as_csv: AsCsv = False,
                   xlsx: AsXlsx = None) -> None:
    """Follow-up visits past their time and not yet conducted, oldest first, a page at a time."""
    from interfaces import reports

    rm = _read_models()
    data = _paged(lambda size, after: reports.overdue_follow_ups(rm, limit=size, cursor=after), limit, cursor,
                  as_csv or xlsx is not None)
    _emit_page(data, "overdue follow-ups", as_json, as_csv, xlsx)


@report_app.command("proposals")
def report_proposals(status: Optional[str] = None, limit: PageLimit = None, cursor: PageCursor = None,
                     as_json: AsJson = False, as_csv: AsCsv = False, xlsx: AsXlsx = None) -> None:
    """Proposals by status with days in stage, longest first, a page at a time."""
    from interfaces import reports

    rm = _read_models()
    data = _paged(lambda size, after: reports.work_pipeline(rm, "proposal", status, limit=size, cursor=after),
                  limit, cursor, as_csv or xlsx is not None)
    _emit_page(data, "proposals", as_json, as_csv, xlsx)


@report_app.command("contracts")
def report_contracts(status: Optional[str] = None, limit: PageLimit = None, cursor: PageCursor = None,
                     as_json: AsJson = False, as_csv: AsCsv = False, xlsx: AsXlsx = None) -> None:
    """Contracts by status with days in stage, longest first, a page at a time."""
    from interfaces import reports

    rm = _read_models()
    data = _paged(lambda size, after: reports.work_pipeline(rm, "contract", status, limit=size, cursor=after),
                  limit, cursor, as_csv or xlsx is not None)
    _emit_page(data, "contracts", as_json, as_csv, xlsx)


@report_app.command("risk-register")
def report_risk_register(limit: PageLimit = None, cursor: PageCursor = None, as_json: AsJson = False,
                         as_csv: AsCsv = False, xlsx: AsXlsx = None) -> None:
    """Open risk cases by level and open warnings, and the cases, high level first, a page at a time."""
    from interfaces import reports

    rm = _read_models()
    data = _paged(lambda size, after: reports.risk_register(rm, limit=size, cursor=after), limit, cursor,
                  as_csv or xlsx is not None, items="cases")
    _emit_page(data, "risk register", as_json, as_csv, xlsx, items="cases")


@report_app.command("evaluation")
def report_evaluation(
    period: Annotated[str, typer.Option(help="2009-05, 2009-Q3, 2009-H1 or 2009")],
    unit_type: Annotated[str, typer.Option(help="bank, branch, team or person")] = "bank",
    unit_id: Annotated[Optional[str], typer.Option(
        help="the branch, team or person (user name); required unless --unit-type is bank")] = None,
    as_of: Annotated[Optional[datetime], typer.Option(
        "--as-of", callback=zoned, help="build from the events recorded up to this time (with its offset: Z, "
                                        "+08:00): what tuohu knew then")] = None,
    effective_as_of: Annotated[Optional[datetime], typer.Option(
        "--effective-as-of", callback=zoned, help="build from the events that occurred up to this business time "
                                                  "(with its offset: Z, +08:00)")] = None,
    as_json: AsJson = False, as_csv: AsCsv = False, xlsx: AsXlsx = None,
) -> None:
    """The period's evaluation against targets (measures §5), live or as of a past moment."""
    from interfaces import reports

    rm = _read_models()
    data = _report(lambda: reports.evaluation(rm, period, unit_type, unit_id, as_of=as_of,
                                              effective_as_of=effective_as_of))
    _emit(data, f"evaluation {period}", as_json, as_csv, xlsx)


@report_app.command("staff-performance")
def report_staff_performance(
    period: Annotated[str, typer.Option(help="2009-05, 2009-Q3, 2009-H1 or 2009")],
    as_json: AsJson = False, as_csv: AsCsv = False, xlsx: AsXlsx = None,
) -> None:
    """Each person's weighted composite score and rank (measures §3 appraisal)."""
    from interfaces import reports

    rm = _read_models()
    _emit(_report(lambda: reports.staff_performance(rm, period)), f"staff {period}", as_json, as_csv, xlsx)


@projections_app.command("status")
def projections_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Per projection: head position, its position, lag in events and seconds, error if stopped; under the
    table, each generation left besides the active and the previous one (an unfinished rebuild's, say)."""
    _settings, _application, read_models = _services()
    rows = read_models.status()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    shown = [c for c in rows[0] if c not in ("previous_generation", "other_generations")]
    table = Table(title="Projections")
    for column in shown:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row[c] is None else str(row[c]) for c in shown))
    out = Console()
    out.print(table)
    for row in rows:
        for other in row["other_generations"]:
            out.print(_other_generation(row, other), markup=False, highlight=False, soft_wrap=True)


def _other_generation(row: dict[str, Any], other: dict[str, Any]) -> str:
    """One line on a generation that is neither the active nor the previous one (``ProjectionRunner.status``)."""
    from datetime import timezone

    written = ""
    if other["last_written_at"]:
        seconds = max(0, int((datetime.now(timezone.utc) - datetime.fromisoformat(other["last_written_at"]))
                             .total_seconds()))
        written = (f", last written {seconds} s ago" if seconds < 120 else f", last written {seconds // 60} min ago"
                   if seconds < 7200 else f", last written {seconds // 3600} h ago")
    what = (f"{row['projection']}: {other['state']} generation {other['generation']} "
            f"at position {other['position']:,} of {row['head']:,}{written}")
    if other["state"] == "unfinished":
        return (what + " (being filled by a running rebuild, verify or as-of report, or left by one that was "
                       "killed; the next rebuild drops it)")
    return what + " (left by a rebuild that ended before dropping it; the next rebuild drops it)"


@projections_app.command("catch-up")
def projections_catch_up() -> None:
    """Apply every new event to the read models, then exit (exit 1 if one stopped on an event)."""
    from projections import ProjectionFailed

    _settings, _application, read_models = _services()
    try:
        typer.echo(json.dumps(read_models.catch_up()))
    except ProjectionFailed as failure:
        console.print(f"[red]{failure}[/red]")
        raise typer.Exit(1) from None


@projections_app.command("run")
def projections_run(
    poll: Annotated[float, typer.Option(help="Seconds between catch-ups: between polls over SQLite, "
                                             "at least between two over PostgreSQL")] = 0.2,
) -> None:
    """Run the projections as a worker: catch up, then follow the log until stopped (Ctrl-C / SIGTERM)."""
    import signal
    import threading

    _settings, _application, read_models = _services()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console.print("projections running; stop with Ctrl-C")
    read_models.runner.follow(stop, poll_interval=poll)


class _StopOnSignal:
    """While entered, SIGINT (Ctrl-C) and SIGTERM set :attr:`event` instead of ending the process, so a
    long command stops at its next safe point and cleans up; :attr:`received` is the first signal."""

    def __init__(self) -> None:
        import threading

        self.event = threading.Event()
        self.received: int | None = None
        self._before: dict[int, Any] = {}

    def __enter__(self) -> "_StopOnSignal":
        import signal

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._before[sig] = signal.signal(sig, self._note)
        return self

    def _note(self, signum: int, _frame: Any) -> None:
        if self.received is None:
            self.received = signum
        self.event.set()

    def __exit__(self, *_exc: object) -> None:
        import signal

        for sig, handler in self._before.items():
            signal.signal(sig, handler)

    @property
    def name(self) -> str:
        import signal

        return signal.Signals(self.received).name if self.received is not None else ""


def _one_line(message: str, code: int) -> typer.Exit:
    """Print ``message`` in red on one line (not wrapped at the width of the terminal) and exit ``code``."""
    console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _projection_services(name: str | None) -> Any:
    """The read models, after checking that ``name`` (when given) is one of their projections (exit 2)."""
    _settings, _application, read_models = _services()
    if name is not None and name not in read_models.store.projections:
        console.print(f"[red]no projection {name!r}; known: {', '.join(read_models.store.projections)}[/red]")
        raise typer.Exit(2)
    return read_models


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[Optional[str], typer.Argument(help="One projection; all when omitted")] = None,
) -> None:
    """Blue-green rebuild: fill new tables while queries read the old ones, swap when caught up.

    Ctrl-C (SIGINT) or SIGTERM before the swap stops it at its next batch: the helper process is
    ended, the unfinished tables are dropped, the live ones stay as they were; one line says so
    (exit 130 for SIGINT, 143 for SIGTERM). A failure drops the unfinished tables too (exit 1)."""
    with _StopOnSignal() as stopping:
        read_models = _projection_services(name)
        from projections import ProjectionFailed, RebuildInterrupted
        from projections.helper import HelperFailed

        try:
            generations = read_models.runner.rebuild(name, stop=stopping.event)
        except RebuildInterrupted as exc:
            raise _one_line(f"{stopping.name}: {exc}", 128 + (stopping.received or 0)) from None
        except (HelperFailed, ProjectionFailed) as exc:
            notes = "; ".join(getattr(exc, "__notes__", []))
            said = f"rebuild stopped, the live tables unchanged: {exc}" + (f"; {notes}" if notes else "")
            if stopping.received is not None:  # e.g. a service manager's SIGTERM that ended the helper first
                raise _one_line(f"{stopping.name}: {said}", 128 + stopping.received) from None
            raise _one_line(said, 1) from None
        for projection, generation in generations.items():
            position = read_models.store.position(projection)
            typer.echo(f"{projection}: now generation {generation} at position {position}")
        if stopping.received is not None:
            console.print(f"{stopping.name} came after the swap: the rebuild is complete", markup=False,
                          highlight=False, soft_wrap=True)


@projections_app.command("verify")
def projections_verify(
    name: Annotated[Optional[str], typer.Argument(help="One projection; all when omitted")] = None,
) -> None:
    """Rebuild into scratch tables and compare every table's checksum with the live one (exit 1 on mismatch).

    Ctrl-C (SIGINT) or SIGTERM stops it at its next batch: its scratch tables are dropped and one
    line says what was compared (exit 130 for SIGINT, 143 for SIGTERM)."""
    with _StopOnSignal() as stopping:
        read_models = _projection_services(name)
        from projections import ProjectionFailed, VerifyInterrupted

        try:
            mismatches = read_models.runner.verify([name] if name is not None else None, stop=stopping.event)
        except VerifyInterrupted as exc:
            raise _one_line(f"{stopping.name}: {exc}", 128 + (stopping.received or 0)) from None
        except ProjectionFailed as exc:
            raise _one_line(f"verify stopped, the live tables unchanged: {exc}", 1) from None
    differing = {m["projection"] for m in mismatches}
    for m in mismatches:
        console.print(f"[red]MISMATCH[/red] {m['projection']}.{m['table']} at position {m['position']}")
    for row in read_models.status():
        if (name is None or row["projection"] == name) and row["projection"] not in differing:
            typer.echo(f"{row['projection']}: OK at position {row['position']}")
    if mismatches:
        raise typer.Exit(1)


@events_app.command("catalogue")
def events_catalogue() -> None:
    """Print the event catalogue (Markdown): every event, its fields, its rule."""
    from interfaces.catalogue import catalogue_markdown

    typer.echo(catalogue_markdown(), nl=False)


# ---------------------------------------------------------------------- users

users_app = typer.Typer(help="Who may call the API: users, roles and tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _operator_context():  # type: ignore[no-untyped-def]
    """The CLI acts as the operator who runs it (``cli:<OS user>``), the bootstrap path for the first admin."""
    import getpass

    from domain.base import Context

    return Context(actor_id=f"cli:{getpass.getuser()}", actor_role="operator", channel="cli")


def _user_command(run):  # type: ignore[no-untyped-def]
    from domain.base import DomainError

    try:
        return run()
    except DomainError as exc:
        console.print(f"[red]{exc.code}:[/red] {exc.detail}")
        raise typer.Exit(2) from None


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="user name: lowercase letters, digits, dots, hyphens")],
    role: Annotated[str, typer.Option(help="customer_manager, product_manager, operations, reviewer, risk_officer, "
                                           "compliance_auditor, branch_head or admin")],
    branch: Annotated[Optional[str], typer.Option(help="the user's branch (required for a branch head)")] = None,
) -> None:
    """Add a user and print their API token, this once (only its hash is kept)."""
    from application import Settings, bootstrap

    application = bootstrap(Settings())
    issued = _user_command(lambda: application.add_user(_operator_context(), name=name, role=role, branch=branch))
    console.print(f"added {name} ({role}{', ' + branch if branch else ''}); the token is shown once, keep it now:")
    typer.echo(issued.token)


@users_app.command("rotate")
def users_rotate(name: Annotated[str, typer.Argument(help="user name")]) -> None:
    """Issue a new token for the user and print it, this once; the old one stops working."""
    from application import Settings, bootstrap

    application = bootstrap(Settings())
    issued = _user_command(lambda: application.rotate_user_token(_operator_context(), name))
    console.print(f"new token for {name}; the old one no longer works:")
    typer.echo(issued.token)


@users_app.command("revoke")
def users_revoke(
    name: Annotated[str, typer.Argument(help="user name")],
    reason: Annotated[str, typer.Option(help="why (kept on the event)")] = "revoked by the operator",
) -> None:
    """Revoke the user: their token stops working at once."""
    from application import Settings, bootstrap

    application = bootstrap(Settings())
    _user_command(lambda: application.revoke_user(_operator_context(), name, reason=reason))
    console.print(f"revoked {name}")


@users_app.command("matrix")
def users_matrix() -> None:
    """Print the permission matrix (Markdown): every route, the roles that may call it, its row-level rule."""
    from application import Settings
    from interfaces.api import create_app
    from interfaces.api.permissions import matrix_markdown

    typer.echo(matrix_markdown(create_app(Settings()).openapi()), nl=False)


@users_app.command("list")
def users_list(as_json: AsJson = False) -> None:
    """Every user ever added: name, role, branch, status, who added them and when."""
    from application import Settings, bootstrap
    from application.identity import users

    rows = [{"name": u.name, "role": u.role, "branch": u.branch, "status": u.status, "added_by": u.added_by,
             "added_at": u.created_on.isoformat(), "version": u.version} for u in users(bootstrap(Settings()))]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title="Users")
    for column in ("name", "role", "branch", "status", "added_by", "added_at"):
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row[c] is None else str(row[c]) for c in ("name", "role", "branch", "status",
                                                                          "added_by", "added_at")))
    Console().print(table)


# ---------------------------------------------------------------------- demo

demo_app = typer.Typer(help="Synthetic demo data for benchmarks and demos.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")


@demo_app.command("generate")
def demo_generate(
    events: Annotated[int, typer.Option("--events", min=1,
                                        help="About how many events to write (it stops on reaching it)")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same ids and events")] = 1,
    start: Annotated[str, typer.Option(help="First day of business time, YYYY-MM-DD")] = "2024-01-01",
    months: Annotated[int, typer.Option(min=1, max=120, help="Months of business time")] = 12,
) -> None:
    """Generate a synthetic bank's acquisition over every aggregate: team, targets, customers, visits, risk."""
    from datetime import date

    from interfaces.demo import DemoAlreadyGenerated, check_new_seed, generate_demo

    try:
        first_day = date.fromisoformat(start)
    except ValueError:
        raise typer.BadParameter(f"expected YYYY-MM-DD, got {start!r}", param_hint="--start") from None
    _settings, application, read_models = _services()
    try:
        check_new_seed(application, seed)
        with Progress(TextColumn("[bold]generating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=False) as progress:
            task = progress.add_task("events", total=events)
            report = generate_demo(application, events=events, seed=seed, start=first_day, months=months,
                                   progress=lambda n: progress.advance(task, n))
    except DemoAlreadyGenerated as exc:
        console.print(f"[red]refused:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print("catching up the read models...")
    position = read_models.catch_up()
    reached = report.business_time_reached.date() if report.business_time_reached else first_day
    table = Table(title=f"demo seed {seed}: business time {first_day} to {reached}")
    for column in ("aggregate", "new", "events"):
        table.add_column(column, justify="left" if column == "aggregate" else "right")
    for name in sorted(set(report.aggregates) | set(report.events_by_aggregate)):
        table.add_row(name, f"{report.aggregates.get(name, 0):,}", f"{report.events_by_aggregate.get(name, 0):,}")
    table.add_row("total", f"{sum(report.aggregates.values()):,}", f"{report.events:,}")
    console.print(table)
    console.print(f"read models at {json.dumps(position)}")


def main() -> None:
    """The ``tuohu`` command: the Typer app, with an event store that cannot be used reported in
    one line (exit 2) instead of a traceback."""
    from application.bootstrap import StoreUnavailable

    try:
        app()
    except StoreUnavailable as exc:
        raise SystemExit(_fail(str(exc)).exit_code) from None


if __name__ == "__main__":  # pragma: no cover
    main()
