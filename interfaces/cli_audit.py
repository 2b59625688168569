"""``tuohu audit`` and ``tuohu privacy``: the compliance auditors' commands.

    tuohu audit history ID [--field F]              every event, who/when/why, before -> after
    tuohu audit state ID [--as-of T | --version N | --at-event E]
    tuohu audit actor ACTOR [--period 2009-Q3 | --from T --to T] [--decisions]
    tuohu audit explain ID                          re-score the recorded screenings (exit 1 if one differs)
    tuohu audit seal [--export FILE] [--accept-missing-seals]  extend the hash chain and seal its head
    tuohu audit verify [--seal FILE] [--file EXPORT]  exit 1 naming the first altered position
    tuohu audit export --from T1 --to T2 FILE       JSON Lines with the chain links
    tuohu privacy restrict ID --reason R --actor A
    tuohu privacy erase ID --reason R --actor A [--role compliance_auditor]
    tuohu privacy status ID

The command line has no login: ``--actor`` and ``--role`` name who acts and
are recorded as such on the events (the HTTP API takes them from the
authenticated user).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

audit_app = typer.Typer(help="Audit: history, state as of a moment, actor trail, hash chain, exports.",
                        no_args_is_help=True)
privacy_app = typer.Typer(help="Personal data: restrict processing, erase (PIPL Art. 44-47, GDPR Art. 17-18).",
                          no_args_is_help=True)

console = Console(stderr=True)
out = Console()

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON")]
TypeOption = Annotated[Optional[str], typer.Option(
    "--type", help="customer, visit, proposal, contract, risk_case, staff, appraisal_scheme or target")]
Actor = Annotated[str, typer.Option("--actor", help="who acts (recorded on the event)")]
Reason = Annotated[str, typer.Option("--reason", help="why (recorded on the event; no personal data)")]


def _app():  # type: ignore[no-untyped-def]
    from application import Settings, bootstrap

    settings = Settings()
    return settings, bootstrap(settings)


def _read_models(application: Any, settings: Any) -> Any:
    from projections import ProjectionFailed, build_read_models

    read_models = build_read_models(application, settings)
    try:
        read_models.catch_up()
    except ProjectionFailed as failure:
        console.print(f"[red]{failure}[/red]")
        raise typer.Exit(1) from None
    return read_models


def _utc(value: datetime | None) -> datetime | None:
    """``value`` (with its zone: see :func:`zoned`) in UTC."""
    return None if value is None else value.astimezone(timezone.utc)


def zoned(value: datetime | None) -> datetime | None:
    """The callback of an option taking a time: it must carry its offset (``Z``, ``+08:00``), as the routes
    require, since a time without one (``2009-08-03T00:00:00``) is ambiguous to whoever reads the answer.
    Raises :class:`typer.BadParameter` (exit 2, naming the option) for a time without one, or one out of
    range once converted to UTC (``9999-12-31T23:59:59-12:00``)."""
    if value is not None and value.tzinfo is None:
        raise typer.BadParameter(f"{value.isoformat()} has no timezone; give an offset such as Z or +08:00, "
                                 f"e.g. {value.isoformat()}Z")
    if value is not None:
        try:
            value.astimezone(timezone.utc)
        except OverflowError:
            raise typer.BadParameter(f"{value.isoformat()} is out of range once converted to UTC") from None
    return value


def _print_json(data: Any) -> None:
    """``data`` as one line of JSON; times in ISO 8601 (``2009-07-01T00:00:00+00:00``), as the report
    commands write them, other values as text."""
    typer.echo(json.dumps(data, ensure_ascii=False,
                          default=lambda value: value.isoformat() if isinstance(value, datetime) else str(value)))


def _fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` in red on one line (not wrapped at the terminal's width); the exit to raise."""
    console.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _show(value: Any) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


# --------------------------------------------------------------------------
# History, state, explain
# --------------------------------------------------------------------------


@audit_app.command("history")
def history(
    aggregate_id: Annotated[UUID, typer.Argument(help="the aggregate's id")],
    aggregate_type: TypeOption = None,
    field: Annotated[Optional[str], typer.Option(
        help="only events that changed this field, e.g. credit_standing")] = None,
    as_json: AsJson = False,
) -> None:
    """Every event: position, version, occurred and recorded times, actor and role, reason, channel,
    correlation id, and the field-level changes (before → after). Exit 1 when there is no such
    aggregate; exit 2 when --field names no field it ever had (the line lists its fields)."""
    from application import audit
    from domain.base import InvalidValue

    _settings, application = _app()
    try:
        data = audit.history(application, aggregate_id, aggregate_type, field=field)
    except audit.AuditNotFound as exc:
        raise _fail(str(exc), 1) from None
    except InvalidValue as exc:
        raise _fail(f"--{exc.field}: {exc.reason}", 2) from None
    finally:
        application.close()
    if as_json:
        _print_json(data)
        return
    table = Table(title=f"{data['aggregate_type']} {data['aggregate_id']} — {len(data['events'])} events"
                  + (f" changing {field}" if field else ""), show_lines=True)
    for column in ("pos", "v", "event", "occurred / recorded (UTC)", "actor (role)", "reason / channel / correlation",
                   "changes"):
        table.add_column(column)
    for e in data["events"]:
        changes = "\n".join(f"{c['field']}: {_show(c['before'])} → {_show(c['after'])}" for c in e["changes"])
        table.add_row(str(e["position"]), str(e["version"]), e["event"], f"{e['occurred_at']}\n{e['recorded_at']}",
                      f"{e['actor_id']} ({e['actor_role']})",
                      f"{_show(e['reason'])}\n{e['channel']} / {e['correlation_id']}", changes or "—")
    out.print(table)


@audit_app.command("state")
def state(
    aggregate_id: Annotated[UUID, typer.Argument(help="the aggregate's id")],
    aggregate_type: TypeOption = None,
    as_of: Annotated[Optional[datetime], typer.Option(
        "--as-of", callback=zoned, help="recorded time, with its offset (2009-08-03T00:00:00Z)")] = None,
    version: Annotated[Optional[int], typer.Option(min=1, help="after this version")] = None,
    at_event: Annotated[Optional[str], typer.Option(
        "--at-event", help="right after the latest event of this kind, e.g. Screened")] = None,
    as_json: AsJson = False,
) -> None:
    """The aggregate exactly as it stood at a recorded time, a version, or an event."""
    from application import audit

    _settings, application = _app()
    try:
        data = audit.state_as_of(application, aggregate_id, aggregate_type, as_of=_utc(as_of), version=version,
                                 at_event=at_event)
    except audit.AuditNotFound as exc:
        raise _fail(str(exc), 1) from None
    except ValueError as exc:
        raise _fail(str(exc)) from None
    finally:
        application.close()
    if as_json:
        _print_json(data)
        return
    last = data["last_event"]
    out.print(f"{data['aggregate_type']} {data['aggregate_id']} at version {data['version']} "
              f"(last event {last['event']} at position {last['position']}, recorded {last['recorded_at']}, "
              f"by {last['actor_id']})")
    out.print_json(json.dumps(data["state"], ensure_ascii=False, default=str))


@audit_app.command("explain")
def explain(
    customer_id: Annotated[UUID, typer.Argument(help="the customer's id")],
    as_json: AsJson = False,
) -> None:
    """Re-score each recorded screening from its recorded inputs with the recorded model version
    (measures §2.2): exit 1 if any score, outcome or contribution differs."""
    from application import audit

    _settings, application = _app()
    try:
        data = audit.explain(application, customer_id)
    except audit.AuditNotFound as exc:
        raise _fail(str(exc), 1) from None
    finally:
        application.close()
    if as_json:
        _print_json(data)
    else:
        if not data["screenings"]:
            out.print(f"customer {customer_id} has no screening")
        for s in data["screenings"]:
            table = Table(title=f"screening v{s['version']} (position {s['position']}), {s['model_name']} "
                                f"{s['model_version']}, by {s['actor_id']} at {s['recorded_at']}")
            for column in ("factor", "input", "recorded points", "recomputed points"):
                table.add_column(column)
            recomputed = s["recomputed"] or {"contributions": {}, "score": None, "outcome": None}
            for factor, points in s["recorded"]["contributions"].items():
                table.add_row(factor, _show(_input_of(s["inputs"], factor)), str(points),
                              _show(recomputed["contributions"].get(factor)))
            table.add_row("score", "", str(s["recorded"]["score"]), _show(recomputed["score"]))
            table.add_row("outcome", "", s["recorded"]["outcome"], _show(recomputed["outcome"]))
            out.print(table)
            verdict = {True: "[green]same score and outcome[/green]", False: "[red]DIFFERS[/red]",
                       None: f"[yellow]not re-scored: {s['note']}[/yellow]"}[s["matches"]]
            out.print(verdict)
    if data["all_match"] is False:
        raise typer.Exit(1)


def _input_of(inputs: Any, factor: str) -> Any:
    if not isinstance(inputs, dict):
        return None
    return inputs.get({"employment": "job"}.get(factor, factor))


# --------------------------------------------------------------------------
# Actor trail
# --------------------------------------------------------------------------


@audit_app.command("actor")
def actor(
    actor_id: Annotated[str, typer.Argument(help="the actor's id, e.g. rev-wang")],
    period: Annotated[Optional[str], typer.Option(help="2009-05, 2009-Q3, 2009-H1 or 2009 (business time)")] = None,
    start: Annotated[Optional[datetime], typer.Option(
        "--from", callback=zoned, help="from (business time, with its offset: Z, +08:00), inclusive")] = None,
    end: Annotated[Optional[datetime], typer.Option(
        "--to", callback=zoned, help="to (business time, with its offset: Z, +08:00), exclusive")] = None,
    decisions: Annotated[bool, typer.Option("--decisions", help="only decisions")] = False,
    limit: Annotated[Optional[int], typer.Option(help="rows per page (1000 by default, at most 10000, as over "
                                                      "the API)")] = None,
    cursor: Annotated[Optional[str], typer.Option(help="the next cursor printed under the previous page")] = None,
    offset: Annotated[int, typer.Option(min=0, help="rows to skip (after --cursor)")] = 0,
    as_json: AsJson = False,
) -> None:
    """Every event — or every decision — by one actor in a period (from the actor trail read model), one page."""
    from interfaces import reports
    from projections.actors import TRAIL_LIMIT, TRAIL_MAX_LIMIT, period_range, trail

    limit = TRAIL_LIMIT if limit is None else limit
    if not 1 <= limit <= TRAIL_MAX_LIMIT:
        raise _fail(f"--limit must be from 1 to {TRAIL_MAX_LIMIT}")
    if period is not None:
        if start is not None or end is not None:
            raise _fail("give either --period or --from/--to, not both")
        try:
            start, end = period_range(period)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    if start is not None and end is not None and _utc(end) <= _utc(start):  # type: ignore[operator]
        raise _fail(f"--to must be after --from ({_utc(start).isoformat()}); got {_utc(end).isoformat()}")  # type: ignore[union-attr]
    try:
        after = reports.decode_cursor(cursor, ("time", "position"))
    except reports.ReportError as exc:
        raise _fail(str(exc)) from None
    settings, application = _app()
    try:
        read_models = _read_models(application, settings)
        with read_models.reading("actors") as (conn, tables):
            data = trail(conn, tables, actor_id, start=_utc(start), end=_utc(end), decisions_only=decisions,
                         limit=limit, offset=offset, after=after)  # type: ignore[arg-type]
        read_models.close()
    finally:
        application.close()
    data["next"] = reports.encode_cursor(data["next"]) if data["next"] is not None else None
    if as_json:
        _print_json({"actor_id": actor_id, "from": _utc(start), "to": _utc(end), "decisions_only": decisions, **data})
        return
    # Plain lines, not a table: an auditor's quarter can hold thousands of rows.
    shown = f" ({len(data['rows'])} shown)" if data["total"] > len(data["rows"]) else ""
    typer.echo(f"{actor_id}: {data['total']} {'decisions' if decisions else 'events'}"
               + (f" in {period}" if period else "") + shown)
    typer.echo("occurred (UTC)             position  role  aggregate  event  decision  reason")
    for r in data["rows"]:
        typer.echo(f"{r['occurred_at'].isoformat()}  {r['position']:>8}  {r['actor_role']}  {r['aggregate_type']} "
                   f"{r['aggregate_id']}  {r['event_type']}  {_show(r['decision'])}  {_show(r['reason'])}")
    if data["next"] is not None:
        typer.echo(f"next page: --cursor {data['next']}")


# --------------------------------------------------------------------------
# Hash chain: seal, verify, export
# --------------------------------------------------------------------------


@audit_app.command("seal")
def seal(
    export: Annotated[Optional[Path], typer.Option("--export", help="also write the seal to this file, to publish "
                                                                    "outside the database")] = None,
    accept_missing_seals: Annotated[bool, typer.Option(
        "--accept-missing-seals", help="seal although the chain holds links and no seal is stored (the seals were "
                                       "deleted, or the first seal was interrupted): only after checking the "
                                       "stored events against a published seal")] = False,
    as_json: AsJson = False,
) -> None:
    """Link the events stored since the last seal into the hash chain, in batches, and seal its head.

    Exit 1 on one line when the chain's links are gone while seals are stored, or when the chain
    holds links and no seal is stored (without --accept-missing-seals)."""
    _settings, application = _app()
    from application.chain import ChainMissing

    try:
        sealed = application.chain.seal(accept_missing_seals=accept_missing_seals)
    except ChainMissing as exc:
        raise _fail(str(exc), 1) from None
    finally:
        application.close()
    if sealed is None:
        raise _fail("nothing to seal: the event store is empty", 1)
    if export is not None:
        export.write_text(json.dumps(sealed.to_json(), indent=2) + "\n")
    if as_json:
        _print_json(sealed.to_json())
        return
    written = f"; written to {export}" if export else ""
    out.print(f"seal #{sealed.seal_id}: {sealed.events} events up to position {sealed.position}, "
              f"link {sealed.link}, sealed {sealed.sealed_at.isoformat()}{written}")


@audit_app.command("verify")
def verify(
    published: Annotated[Optional[Path], typer.Option(
        "--seal", exists=True, dir_okay=False, help="a seal published earlier (tuohu audit seal --export)")] = None,
    file: Annotated[Optional[Path], typer.Option(
        "--file", exists=True, dir_okay=False, help="check an export file offline, without the database")] = None,
    as_json: AsJson = False,
) -> None:
    """Recompute the hash chain from the stored events: OK, or exit 1 naming the first position where a
    stored event was edited, deleted, inserted or reordered."""
    from application.chain import Seal, sqlite_chain, verify_export
    from application.settings import Settings

    held = _seal_file(published) if published else None
    if file is not None:
        checked: Any = verify_export(file, held)
    elif (chain := sqlite_chain(Settings())) is not None:
        try:
            checked = chain.verify(held, workers=_workers())
        finally:
            chain.close()
    else:
        _settings, application = _app()
        try:
            checked = application.chain.verify(held, workers=_workers())
        finally:
            application.close()
    if as_json:
        _print_json(checked.to_json())
    else:
        (out if checked.ok else console).print(checked.summary(), markup=False, highlight=False, soft_wrap=True)
    if not checked.ok:
        raise typer.Exit(1)


def _seal_file(path: Path) -> Any:
    """The seal in ``path`` (written by ``tuohu audit seal --export``); exit 2 naming what is wrong."""
    from application.chain import SEAL_FORMAT, Seal

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != SEAL_FORMAT:
            raise ValueError(f"its format is not {SEAL_FORMAT}")
        seal = Seal.from_json(data)
        bytes.fromhex(seal.link)
        if not 1 <= seal.position <= 2**63 - 1 or len(seal.link) != 64:
            raise ValueError("its position must be from 1 to 2**63 - 1 and its link 64 hex digits")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise _fail(f"--seal {path}: not a seal file ({type(exc).__name__}: {exc})") from None
    return seal


def _workers() -> int:
    """Processes for verifying the chain: one per CPU (this command runs in one thread)."""
    import os

    return max(1, os.cpu_count() or 1)


@audit_app.command("export")
def export(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="the JSON Lines file to write")],
    start: Annotated[Optional[datetime], typer.Option(
        "--from", callback=zoned, help="recorded from (with its offset: Z, +08:00), inclusive")] = None,
    end: Annotated[Optional[datetime], typer.Option(
        "--to", callback=zoned, help="recorded up to (with its offset: Z, +08:00), inclusive")] = None,
    anchor: Annotated[bool, typer.Option(
        "--anchor/--no-anchor", help="run on to the next seal so the file can be checked against it")] = True,
) -> None:
    """Write the events recorded between two times as JSON Lines with their chain links (seals first);
    check the file anywhere with ``tuohu audit verify --file FILE``."""
    start, end = _utc(start), _utc(end)
    if start is not None and end is not None and start > end:
        raise _fail(f"--from {start.isoformat()} is after --to {end.isoformat()}")
    try:
        fh = file.open("w", encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot write {file}: {exc.strerror or exc}") from None
    from application.chain import ChainMissing

    _settings, application = _app()
    try:
        with fh:
            header = application.chain.export(fh, start, end, anchor=anchor)
    except ChainMissing as exc:
        raise _fail(str(exc), 1) from None
    finally:
        application.close()
    if header["first_position"] is None:
        out.print(f"no events recorded in that range; wrote an empty export to {file}")
        return
    seal_note = f", anchored to seal #{header['seal']['seal_id']}" if header.get("seal") else ""
    out.print(f"wrote {header.get('events', 0)} events (positions {header['first_position']}.."
              f"{header['last_position']} in range{seal_note}) to {file}")


# --------------------------------------------------------------------------
# Privacy
# --------------------------------------------------------------------------


def _ctx(actor_id: str, role: str) -> Any:
    from domain.base import Context
    from domain.user import ROLES

    if role not in ROLES:
        raise _fail(f"--role must be one of {', '.join(ROLES)}; got {role!r}")
    return Context(actor_id=actor_id, actor_role=role, channel="cli")


@privacy_app.command("restrict")
def restrict(
    customer_id: Annotated[UUID, typer.Argument(help="the customer's id")],
    reason: Reason,
    actor_id: Actor,
    role: Annotated[str, typer.Option("--role", help="the actor's role")] = "compliance_auditor",
) -> None:
    """Restrict the processing of the person's data (PIPL Art. 44, GDPR Art. 18): kept, gone from every
    view but the auditors', and no further processing."""
    from application import privacy
    from domain.base import DomainError

    settings, application = _app()
    try:
        result = privacy.restrict_processing(application, _ctx(actor_id, role), customer_id, reason=reason)
        _read_models(application, settings).close()
    except DomainError as exc:
        raise _fail(f"{exc.code}: {exc.detail}", 1) from None
    finally:
        application.close()
    out.print(f"processing of customer {customer_id} restricted (version {result.version}, "
              f"position {result.position})")


@privacy_app.command("erase")
def erase(
    customer_id: Annotated[UUID, typer.Argument(help="the customer's id")],
    reason: Reason,
    actor_id: Actor,
    role: Annotated[str, typer.Option("--role", help="the actor's role; before the retention period has passed "
                                                     "only compliance_auditor may erase")] = "compliance_auditor",
) -> None:
    """Destroy the person's key (crypto-shredding, PIPL Art. 47, GDPR Art. 17) once the retention period
    (TUOHU_RETENTION_YEARS after the relationship ended) has passed, or earlier as a compliance auditor.
    History still reads (those fields as \\[erased]) and the hash chain still verifies."""
    from application import privacy
    from domain.base import DomainError
    from projections.erasure import forget_in_read_models, related_ids

    settings, application = _app()
    try:
        read_models = _read_models(application, settings)
        result = privacy.erase_personal_data(application, _ctx(actor_id, role), customer_id, reason=reason,
                                             retention_years=settings.retention_years,
                                             related_ids=related_ids(read_models, customer_id))
        purged = forget_in_read_models(read_models)
        read_models.close()
    except DomainError as exc:
        raise _fail(f"{exc.code}: {exc.detail}", 1) from None
    finally:
        application.close()
    out.print(f"personal data of customer {customer_id} erased: key destroyed (version {result.version}, "
              f"position {result.position}); read models caught up, {purged['dropped']} superseded table "
              f"generations dropped")


@privacy_app.command("status")
def status(
    customer_id: Annotated[UUID, typer.Argument(help="the customer's id")],
    as_json: AsJson = False,
) -> None:
    """Whether the customer's processing is restricted, whether their data were erased, and their key's dates."""
    from application.app import NotFound
    from domain.customer import Customer

    _settings, application = _app()
    try:
        customer = application.load(Customer, customer_id)
        key = application.mapper.keys.status(str(customer_id))
    except NotFound as exc:
        raise _fail(exc.detail, 1) from None
    finally:
        application.close()
    data = {"customer_id": str(customer_id), "processing_restricted": customer.processing_restricted,
            "personal_data_erased": customer.personal_data_erased,
            "key": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in key.items()} if key else None}
    if as_json:
        _print_json(data)
        return
    out.print_json(json.dumps(data))
