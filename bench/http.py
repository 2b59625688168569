"""Benchmark: command throughput and latency over real HTTP, against a no-op route of the same app.

    python bench/http.py [--requests 2000] [--threads 4] [--customers 500] [--history 13] [--postgres URL]
                         [--no-projections]

In one run, on a fresh store:

1. a customer manager and their customers (``--history`` events each, as long as
   an imported customer's history on average) are created with the application;
2. ``uvicorn`` serves the app on 127.0.0.1 (a free port) in its own process,
   with ``TUOHU_BENCH_NOOP=1`` so that ``POST /bench/noop`` exists: it passes
   through everything a command route does before its use case (request id,
   bearer authentication, the permission matrix, body parsing, the command
   context) and writes nothing;
3. a separate client process, with ``--threads`` keep-alive connections, sends
   ``--requests`` no-op POSTs and as many ``POST /customers/{id}/facts``
   commands (record facts; each thread on its own customers, so no 409), after a
   warm-up of each, alternating the two in ``--rounds`` rounds so that both see
   the same background load of the machine.

Prints per route the throughput (requests/s), the p50 / p99 latency (ms) and
the server's CPU time per request (ms: user + system time of the server process,
read from ``/proc`` on Linux, including the read models' catch-up that follows
each phase, for which the client waits a second), the ratio command / no-op
throughput (goal >= 0.5) and the ratio of the CPU times no-op / command. On a
machine busy with other work the throughputs vary from run to run; the CPU
times vary less. Loopback only; every loop is bounded by ``--requests``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide the standard
# library's ``http`` package: take the folder off before importing it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MANAGER = "bench-mgr"
BRANCH = "bench-branch"
WARMUP = 100
SETTLE = 1.0
"""Seconds the client waits after a phase before reading the server's CPU time: the read
models catch up on the phase's events (every 0.5 s) within it."""


# ---------------------------------------------------------------------- the client process


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (None where ``/proc`` is missing)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client(port: int, token: str, customers: list[str], requests: int, threads: int,
            rounds: int, server_pid: int) -> dict[str, Any]:
    """Alternate no-op and command phases for ``rounds`` rounds (so both routes see the same
    background load), after a warm-up of each; returns per route the pooled figures."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Connection": "keep-alive"}
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=60) for _ in range(threads)]

    def phase(path_of: Any, first: int, count: int) -> tuple[float, list[float], dict[int, int], float | None]:
        latencies: list[list[float]] = [[] for _ in range(threads)]
        statuses: dict[int, int] = {}
        lock = threading.Lock()
        barrier = threading.Barrier(threads + 1)

        def worker(t: int) -> None:
            conn = connections[t]
            mine = [i for i in range(first, first + count) if i % threads == t]
            barrier.wait()
            for i in mine:
                body = json.dumps({"group": "needs", "facts": {f"k{i % 16}": i}})
                began = time.perf_counter()
                conn.request("POST", path_of(t, i), body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                latencies[t].append(time.perf_counter() - began)
                with lock:
                    statuses[response.status] = statuses.get(response.status, 0) + 1

        pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
        for thread in pool:
            thread.start()
        cpu_before = _cpu_seconds(server_pid)
        barrier.wait()
        began = time.perf_counter()
        for thread in pool:
            thread.join()
        seconds = time.perf_counter() - began
        time.sleep(SETTLE)
        cpu_after = _cpu_seconds(server_pid)
        cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        return seconds, [x for per in latencies for x in per], statuses, cpu

    per_thread = max(1, len(customers) // threads)

    def command_path(t: int, i: int) -> str:
        return f"/customers/{customers[t * per_thread + (i // threads) % per_thread]}/facts"

    def noop_path(t: int, i: int) -> str:  # noqa: ARG001
        return "/bench/noop"

    phase(noop_path, 0, WARMUP)
    phase(command_path, 0, WARMUP)
    pooled: dict[str, Any] = {name: {"seconds": 0.0, "latencies": [], "statuses": {}, "cpu": 0.0}
                              for name in ("noop", "command")}
    chunk = max(1, requests // rounds)
    for r in range(rounds):
        for name, path_of in (("noop", noop_path), ("command", command_path)):
            seconds, latencies, statuses, cpu = phase(path_of, WARMUP + r * chunk, chunk)
            pooled[name]["seconds"] += seconds
            pooled[name]["cpu"] = None if cpu is None or pooled[name]["cpu"] is None else pooled[name]["cpu"] + cpu
            pooled[name]["latencies"] += latencies
            for status, n in statuses.items():
                pooled[name]["statuses"][status] = pooled[name]["statuses"].get(status, 0) + n
    for conn in connections:
        conn.close()
    figures = {}
    for name, p in pooled.items():
        flat = sorted(p["latencies"])
        figures[name] = {"requests": len(flat), "seconds": p["seconds"], "per_second": len(flat) / p["seconds"],
                         "statuses": p["statuses"], "p50_ms": 1000 * flat[len(flat) // 2],
                         "p99_ms": 1000 * flat[min(len(flat) - 1, int(len(flat) * 0.99))],
                         "cpu_ms": None if p["cpu"] is None else 1000 * p["cpu"] / len(flat)}
    return figures


# ---------------------------------------------------------------------- the bench process


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(port: int, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not answer /health in time")


def _prepare(env: dict[str, str], customers: int, history: int) -> tuple[str, list[str]]:
    """A customer manager (and their token) and their customers, each with ``history`` events,
    written with the application."""
    from application import Settings, bootstrap
    from domain.base import Context
    from domain.customer import Customer

    os.environ.update(env)
    application = bootstrap(Settings())
    operator = Context(actor_id="cli:bench", actor_role="operator", channel="cli")
    token = application.add_user(operator, name=MANAGER, role="customer_manager", branch=BRANCH).token
    manager = Context(actor_id=MANAGER, actor_role="customer_manager", channel="cli")
    ids = []
    for first in range(0, customers, 50):
        batch = []
        for _ in range(min(50, customers - first)):
            customer = Customer.register(manager, kind="retail", acquisition_channel="online", source_detail="bench",
                                         segment="mass", manager_id=MANAGER, branch=BRANCH, display_name="Bench Co.")
            for i in range(history - 1):
                customer.record_facts(manager, group=("basic", "financial", "needs")[i % 3], facts={f"f{i}": i})
            batch.append(customer)
            ids.append(str(customer.id))
        application.save(*batch)
    application.close()
    assert token is not None
    return token, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per route")
    parser.add_argument("--threads", type=int, default=4, help="client threads (keep-alive connections)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternations of a no-op phase and a command phase (requests / rounds each)")
    parser.add_argument("--customers", type=int, default=500, help="customers the commands are spread over")
    parser.add_argument("--history", type=int, default=13,
                        help="events per customer before the run (bank-full.csv averages 13: 595,224 / 45,211)")
    parser.add_argument("--postgres", help="postgresql://... to run over PostgreSQL (a fresh schema) instead of SQLite")
    parser.add_argument("--no-projections", action="store_true",
                        help="serve as `tuohu serve --no-projections` (read models kept by separate workers)")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # internal: run as the client process
    args = parser.parse_args()

    if args.client:
        spec = json.loads(args.client)
        print(json.dumps(_client(spec["port"], spec["token"], spec["customers"], args.requests, args.threads,
                                 args.rounds, spec["server_pid"])))
        return

    with tempfile.TemporaryDirectory(prefix="tuohu-bench-http-") as tmp:
        env = {"TUOHU_DATA_DIR": tmp}
        schema = None
        if args.postgres:
            import psycopg

            schema = f"tuohu_bench_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            env.update(TUOHU_DATABASE_URL=args.postgres, TUOHU_DATABASE_SCHEMA=schema)
        try:
            token, customers = _prepare(env, args.customers, args.history)
            port = _free_port()
            server_env = {**os.environ, **env, "TUOHU_BENCH_NOOP": "1", "PYTHONPATH": str(ROOT)}
            serve = (f"import uvicorn; from interfaces.api import create_app; "
                     f"uvicorn.run(create_app(run_projections={not args.no_projections}), host='127.0.0.1', "
                     f"port={port}, log_level='warning', access_log=False)")
            server = subprocess.Popen([sys.executable, "-c", serve], cwd=ROOT, env=server_env)
            try:
                _wait_until_up(port, server)
                spec = json.dumps({"port": port, "token": token, "customers": customers, "server_pid": server.pid})
                client = subprocess.run(
                    [sys.executable, __file__, "--client", spec, "--requests", str(args.requests),
                     "--threads", str(args.threads), "--rounds", str(args.rounds)],
                    capture_output=True, text=True, timeout=3600, check=True)
                figures = json.loads(client.stdout)
            finally:
                server.terminate()
                server.wait(30)
        finally:
            if schema:
                import psycopg

                with psycopg.connect(args.postgres, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    store = "PostgreSQL" if args.postgres else "SQLite"
    followers = "read models kept by separate workers" if args.no_projections else "read models kept in the server"
    print(f"tuohu over HTTP ({store}, uvicorn on loopback, {followers}, {args.threads} client threads, "
          f"{args.requests} requests per route, commands over {args.customers} customers)")
    for name, label in (("noop", "POST /bench/noop"), ("command", "POST /customers/{id}/facts")):
        f = figures[name]
        cpu = "" if f["cpu_ms"] is None else f"   server CPU {f['cpu_ms']:5.2f} ms/req"
        print(f"  {label:28s} {f['per_second']:8.0f} req/s   p50 {f['p50_ms']:6.2f} ms   p99 {f['p99_ms']:6.2f} ms"
              f"{cpu}   statuses {f['statuses']}")
    ratio = figures["command"]["per_second"] / figures["noop"]["per_second"]
    print(f"  ratio command / no-op: {ratio:.2f} (goal >= 0.5)")
    if figures["command"]["cpu_ms"] and figures["noop"]["cpu_ms"] is not None:
        print(f"  server CPU per request, no-op / command: {figures['noop']['cpu_ms'] / figures['command']['cpu_ms']:.2f}")


if __name__ == "__main__":
    main()
