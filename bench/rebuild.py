"""Benchmark: rebuilding every projection against the raw library's replay.

    python bench/rebuild.py [--file PATH] [--postgres URL] [--year YEAR]

Imports the Bank Marketing file into a fresh store, then in the same process:

1. the raw library's replay of the whole log: ``select_notifications`` in pages
   and ``mapper.to_domain_event`` for each (select and decode);
2. tuohu's rebuild of every projection from position 0 into new tables (decode,
   apply, write rows and tracking).

Prints events/s of both and the ratio rebuild / replay (goal >= 0.5).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from application import Settings, bootstrap  # noqa: E402
from interfaces.importers.bank_marketing import import_bank_marketing  # noqa: E402
from projections import build_read_models  # noqa: E402


def replay(app, page: int = 2000) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    started, count, position = time.perf_counter(), 0, 0
    while True:
        notifications = app.recorder.select_notifications(start=position + 1, limit=page)
        if not notifications:
            break
        for notification in notifications:
            app.mapper.to_domain_event(notification)
        count += len(notifications)
        position = notifications[-1].id
    return count, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, default=ROOT.parent / "shared/data/bank-marketing/bank-full.csv")
    parser.add_argument("--year", type=int, default=None)
    parser.add_argument("--postgres", help="postgresql:// URL; a fresh schema is created and dropped")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        schema = None
        if args.postgres:
            import psycopg

            schema = f"tuohu_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            settings = Settings(data_dir=Path(tmp), database_url=args.postgres, database_schema=schema)
        else:
            settings = Settings(data_dir=Path(tmp))
        try:
            app = bootstrap(settings)
            import_bank_marketing(app, args.file, year=args.year)
            read_models = build_read_models(app, settings)
            events, replay_seconds = replay(app)
            started = time.perf_counter()
            read_models.runner.rebuild()
            rebuild_seconds = time.perf_counter() - started
            read_models.close()
            app.close()
        finally:
            if schema:
                import psycopg

                with psycopg.connect(args.postgres, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    names = ", ".join(read_models.store.projections)
    print(f"store: {'postgresql' if args.postgres else 'sqlite'}; events: {events}; projections: {names}")
    print(f"raw replay (select + decode): {replay_seconds:7.2f} s {events / replay_seconds:10,.0f} events/s")
    print(f"rebuild of all projections:   {rebuild_seconds:7.2f} s {events / rebuild_seconds:10,.0f} events/s")
    print(f"ratio (rebuild / replay rate): {replay_seconds / rebuild_seconds:.2f}  (goal >= 0.5)")


if __name__ == "__main__":
    main()
