"""Benchmark: import rate of bank-full.csv against the raw library's batched append.

    python bench/import_bank_marketing.py [--file PATH] [--postgres URL]

In one process, on a fresh store each:

1. tuohu's import of the file (parse, build aggregates through the domain's
   commands, save in batches), in events/s;
2. the raw eventsourcing library appending the same number of events, in the
   same batch sizes, from a plain ``Aggregate`` with one small event class.

Prints both rates, their ratio (goal >= 0.5) and the peak RSS of the process
after the import (goal <= 300 MB).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eventsourcing.application import Application  # noqa: E402
from eventsourcing.domain import Aggregate, event  # noqa: E402

from application import Settings, bootstrap  # noqa: E402
from interfaces.importers.bank_marketing import import_bank_marketing  # noqa: E402


class Plain(Aggregate):
    """The raw library's baseline aggregate."""

    @event("Noted")
    def __init__(self, actor_id: str, note: str) -> None:
        self.note = note

    @event("Changed")
    def change(self, actor_id: str, note: str) -> None:
        self.note = note


def raw_append(env: dict[str, str], total_events: int, events_per_aggregate: int, events_per_batch: int) -> float:
    """Seconds the raw library takes to append ``total_events`` in batches."""
    app = Application(env=env)
    written = 0
    started = time.perf_counter()
    while written < total_events:
        batch = []
        batch_events = 0
        while batch_events < events_per_batch and written + batch_events < total_events:
            agg = Plain(actor_id="bench", note="opened")
            n = min(events_per_aggregate, total_events - written - batch_events)
            for i in range(n - 1):
                agg.change(actor_id="bench", note=f"note {i}")
            batch.append(agg)
            batch_events += n
        app.save(*batch)
        written += batch_events
    elapsed = time.perf_counter() - started
    app.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, default=ROOT.parent / "shared/data/bank-marketing/bank-full.csv")
    parser.add_argument("--postgres", help="postgresql:// URL; a fresh schema is created and dropped")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        schema = None
        if args.postgres:
            import psycopg

            schema = f"tuohu_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
                conn.execute(f'CREATE SCHEMA "{schema}_raw"')
            settings = Settings(data_dir=Path(tmp), database_url=args.postgres, database_schema=schema)
            raw_env = {**Settings(data_dir=Path(tmp), database_url=args.postgres,
                                  database_schema=f"{schema}_raw").event_store_env()}
            raw_env.pop("APPLICATION_RECORDER_TOPIC")  # the library's own recorder
        else:
            settings = Settings(data_dir=Path(tmp) / "tuohu")
            raw_env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(Path(tmp) / "raw.sqlite")}
        try:
            app = bootstrap(settings)
            started = time.perf_counter()
            report = import_bank_marketing(app, args.file)
            ours = time.perf_counter() - started
            app.close()
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

            per_aggregate = max(1, round(report.events / (report.customers + report.visits + 2 * report.accounts_opened)))
            per_batch = max(1, round(report.events / max(1, -(-report.imported // 500))))
            raw = raw_append(raw_env, report.events, per_aggregate, per_batch)
        finally:
            if schema:
                import psycopg

                with psycopg.connect(args.postgres, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
                    conn.execute(f'DROP SCHEMA "{schema}_raw" CASCADE')

    store = "postgresql" if args.postgres else "sqlite"
    print(f"store: {store}; file: {args.file.name}; rows imported: {report.imported}; events: {report.events}")
    print(f"tuohu import:      {ours:8.2f} s  {report.events / ours:10,.0f} events/s")
    print(f"raw library append:{raw:8.2f} s  {report.events / raw:10,.0f} events/s "
          f"({per_aggregate} events/aggregate, ~{per_batch} events/batch)")
    print(f"ratio (import / raw): {raw / ours:.2f}  (goal >= 0.5)")
    print(f"peak RSS after import: {peak_mb:.0f} MB  (goal <= 300 MB)")


if __name__ == "__main__":
    main()
