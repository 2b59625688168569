"""The ``tuohu`` command line (Typer).

    tuohu import bank-marketing FILE [--year YEAR]
    tuohu serve [--host 127.0.0.1] [--port 8000]
    tuohu report funnel [--json]
    tuohu projections status | catch-up
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

app = typer.Typer(help="tuohu (拓戶): event-sourced customer acquisition for banks.", no_args_is_help=True)
import_app = typer.Typer(help="Import outside files.", no_args_is_help=True)
report_app = typer.Typer(help="Reports from the read models.", no_args_is_help=True)
projections_app = typer.Typer(help="Read-model projections.", no_args_is_help=True)
events_app = typer.Typer(help="The stored events.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(report_app, name="report")
app.add_typer(projections_app, name="projections")
app.add_typer(events_app, name="events")

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
        help="Year of every row, for a file not in chronological order (e.g. the 10% sample bank.csv)")] = None,
) -> None:
    """Import the UCI Bank Marketing file: customers, phone visits, won accounts."""
    from interfaces.importers.bank_marketing import ImportRefused, count_data_lines
    from interfaces.importers.bank_marketing import import_bank_marketing as run_import

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
        console.print(f"[yellow]line {line}:[/yellow] {reason} (skipped)")
    position = pipeline.catch_up()
    table = Table(title=f"{file.name} (sha256 {report.sha256[:12]}…)")
    for column in ("rows", "imported", "already present", "bad rows", "events", "visits", "accounts opened", "position"):
        table.add_column(column, justify="right")
    table.add_row(*(str(v) for v in (report.rows, report.imported, report.already_present, len(report.bad_rows),
                                     report.events, report.visits, report.accounts_opened, position)))
    console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) over the data directory or database."""
    import uvicorn

    from application import Settings
    from interfaces.api import create_app

    uvicorn.run(create_app(Settings()), host=host, port=port)


@report_app.command("funnel")
def report_funnel(
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON object stage -> count")] = False,
) -> None:
    """Customers that reached each acquisition stage (registered → account_opened)."""
    _settings, _application, pipeline = _services()
    pipeline.catch_up()
    funnel = pipeline.funnel()
    if as_json:
        typer.echo(json.dumps(funnel))
        return
    table = Table(title="Acquisition funnel")
    table.add_column("stage")
    table.add_column("customers", justify="right")
    table.add_column("of registered", justify="right")
    registered = funnel["registered"] or 1
    for stage, count in funnel.items():
        table.add_row(stage, f"{count:,}", f"{100 * count / registered:.1f}%")
    Console().print(table)


@projections_app.command("status")
def projections_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Per projection: head position, its position, lag in events and seconds, error if stopped."""
    _settings, _application, read_models = _services()
    rows = read_models.status()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table(title="Projections")
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row.values()))
    Console().print(table)


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
    poll: Annotated[float, typer.Option(help="Seconds between polls over SQLite")] = 0.2,
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


@projections_app.command("rebuild")
def projections_rebuild(
    name: Annotated[Optional[str], typer.Argument(help="One projection; all when omitted")] = None,
) -> None:
    """Blue-green rebuild: fill new tables while queries read the old ones, swap when caught up."""
    _settings, _application, read_models = _services()
    if name is not None and name not in read_models.store.projections:
        console.print(f"[red]no projection {name!r}; known: {', '.join(read_models.store.projections)}[/red]")
        raise typer.Exit(2)
    generations = read_models.runner.rebuild(name)
    for projection, generation in generations.items():
        typer.echo(f"{projection}: now generation {generation} at position {read_models.store.position(projection)}")


@projections_app.command("verify")
def projections_verify() -> None:
    """Rebuild into scratch tables and compare every table's checksum with the live one (exit 1 on mismatch)."""
    _settings, _application, read_models = _services()
    mismatches = read_models.runner.verify()
    if mismatches:
        for m in mismatches:
            console.print(f"[red]MISMATCH[/red] {m['projection']}.{m['table']} at position {m['position']}")
        raise typer.Exit(1)
    for row in read_models.status():
        typer.echo(f"{row['projection']}: OK at position {row['position']}")


@events_app.command("catalogue")
def events_catalogue() -> None:
    """Print the event catalogue (Markdown): every event, its fields, its rule."""
    from interfaces.catalogue import catalogue_markdown

    typer.echo(catalogue_markdown(), nl=False)


if __name__ == "__main__":  # pragma: no cover
    app()
