"""Benchmark: p50 / p95 latency of every report route, and how it grows with the log.

    python bench/query.py [--requests 200] [--sizes 100000,1000000] [--skip-bank] [--data DIR]

For each data set, on a fresh SQLite store in a temporary folder (with ``--data``,
in ``DIR/<data set>``, written the first time and reused afterwards):

- ``bank-full``: ``bank-full.csv`` imported (595,224 events);
- ``demo-N``: ``tuohu demo generate --events N`` (a synthetic workload over all aggregates).

the read models are caught up (on a reused store, only what this release adds or
changes in them), then each report route is called ``--requests``
times through the ASGI app in process (FastAPI's TestClient, authenticated as a
compliance auditor, who may read every report), after a warm-up, and p50 / p95
are printed. The last line compares each route's p95 at the largest demo size
with the smallest (goal: growth <= 1.5x; p95 <= 20 ms).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This folder holds bench/http.py, which would shadow the standard library's http package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from application import Settings, bootstrap  # noqa: E402
from application.app import AlreadyExists  # noqa: E402
from domain.base import Context  # noqa: E402

OPERATOR = Context(actor_id="bench", actor_role="operator", channel="cli")


def routes(period: str, month: str, start: str, end: str) -> dict[str, str]:
    return {
        "funnel": "/reports/funnel",
        "funnel by month": "/reports/funnel?by=month",
        "customers (filter)": "/reports/customers?stage=account_opened&limit=50",
        "customers (search)": "/reports/customers?q=0001&limit=50",
        "visit calendar": f"/reports/visits/calendar?from={start}&to={end}",
        "overdue follow-ups": "/reports/visits/overdue-follow-ups",
        "proposals": "/reports/proposals",
        "contracts": "/reports/contracts",
        "risk register": "/reports/risk-register",
        "evaluation (quarter)": f"/reports/evaluation?period={period}",
        "evaluation (month, branch)": f"/reports/evaluation?period={month}&unit_type=branch&unit_id=__BRANCH__",
        "staff performance": f"/reports/staff-performance?period={period[:4]}",
    }


def measure(client: TestClient, headers: dict[str, str], paths: dict[str, str], n: int) -> dict[str, tuple[float, float]]:
    result = {}
    for name, path in paths.items():
        for _ in range(5):
            client.get(path, headers=headers)
        times = []
        for _ in range(n):
            started = time.perf_counter()
            response = client.get(path, headers=headers)
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                result[name] = (float("nan"), float("nan"))
                if "no appraisal scheme" in response.text:  # bank-full has customers but no team
                    print(f"  {name}: not measured, this data set has no appraisal scheme")
                else:
                    print(f"  {name}: HTTP {response.status_code} {response.text[:200]}")
                break
        else:
            times.sort()
            result[name] = (statistics.median(times), times[int(0.95 * (len(times) - 1))])
    return result


def run(label: str, load: Any, paths: dict[str, str], n: int, data: Path | None) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = data / label if data is not None else Path(tmp)
        reused = (folder / "events.sqlite").exists()
        folder.mkdir(parents=True, exist_ok=True)
        settings = Settings(data_dir=folder)
        app = bootstrap(settings)
        started = time.perf_counter()
        events = app.position() if reused else load(app)
        loaded = time.perf_counter() - started
        try:
            token = app.add_user(OPERATOR, name="bench-auditor", role="compliance_auditor").token
        except AlreadyExists:  # a reused store: a new token for the same user
            token = app.rotate_user_token(OPERATOR, "bench-auditor").token
        from interfaces.api import create_app

        with TestClient(create_app(settings)) as client:
            read_models = client.app.state.read_models
            started = time.perf_counter()
            read_models.catch_up()
            caught_up = time.perf_counter() - started
            with read_models.reading() as (conn, t):
                from sqlalchemy import func, select

                branch = conn.execute(select(t.customers.c.branch, func.count()).group_by(t.customers.c.branch)
                                      .order_by(func.count().desc()).limit(1)).scalar() or "none"
            paths = {k: v.replace("__BRANCH__", branch) for k, v in paths.items()}
            print(f"{label}: {events:,} events {'reused' if reused else f'loaded in {loaded:.0f} s'}, "
                  f"read models caught up in {caught_up:.0f} s")
            result = measure(client, {"Authorization": f"Bearer {token}"}, paths, n)
        app.close()
    for name, (p50, p95) in result.items():
        print(f"  {name:28s} p50 {p50:7.2f} ms   p95 {p95:7.2f} ms")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--skip-bank", action="store_true")
    parser.add_argument("--file", type=Path, default=ROOT.parent / "shared/data/bank-marketing/bank-full.csv")
    parser.add_argument("--data", type=Path, help="keep each data set's store in DATA/<data set> and reuse it")
    args = parser.parse_args()

    if not args.skip_bank:
        from interfaces.importers.bank_marketing import import_bank_marketing

        run("bank-full", lambda app: import_bank_marketing(app, args.file).events,
            routes("2009-Q3", "2009-05", "2009-05-01T00:00:00Z", "2009-06-01T00:00:00Z"), args.requests, args.data)

    from interfaces.demo import generate_demo

    sizes = [int(s) for s in args.sizes.split(",")]
    results = {}
    for size in sizes:
        results[size] = run(f"demo-{size}", lambda app, size=size: generate_demo(app, events=size, seed=7).events,
                            routes("2024-Q3", "2024-05", "2024-05-01T00:00:00Z", "2024-06-01T00:00:00Z"),
                            args.requests, args.data)
    if len(sizes) > 1:
        small, large = min(sizes), max(sizes)
        print(f"p95 growth from {small:,} to {large:,} events (goal <= 1.5x; p95 goal <= 20 ms):")
        for name in results[small]:
            a, b = results[small][name][1], results[large][name][1]
            print(f"  {name:28s} {a:7.2f} ms -> {b:7.2f} ms   x{b / a:.2f}")
    print(f"measured at {datetime.now(timezone.utc).isoformat(timespec='seconds')}")


if __name__ == "__main__":
    main()
