"""``tuohu projections rebuild`` as an operator meets it: a real process, stopped by SIGINT or SIGTERM,
killed by SIGKILL, or failing, over a store of bank.csv (59,680 events: three fill batches, a few
seconds of rebuild). The live tables must keep answering, unchanged, and no table of the rebuild may
remain, except after SIGKILL, which status shows and the next rebuild clears."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]

HELPED = """
import functools, os, sys
import projections
build = projections.build_read_models
def built(application, settings):
    read_models = build(application, settings)
    read_models.runner.helper_threshold = 0  # the helper starts on any log (200,000 events by default)
    if os.environ.get("HELPER_EXITS"):
        read_models.runner.helper = functools.partial(os._exit, int(os.environ["HELPER_EXITS"]))
    return read_models
projections.build_read_models = projections.build_pipeline = built
from interfaces.cli import main
sys.argv = ["tuohu", *sys.argv[1:]]
main()
"""
"""``tuohu`` with the rebuild's helper process started on this small log (and, with ``HELPER_EXITS``, a
helper that exits at once with that code)."""


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUOHU_DATABASE")}
    env.update(TUOHU_DATA_DIR=str(data_dir), **extra)
    return env


def tuohu(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "interfaces.cli", *args], cwd=ROOT, env=_env(data_dir),
                          capture_output=True, text=True, timeout=300)


def start_rebuild(data_dir: Path, helped: bool = False, **extra: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-c", HELPED] if helped else [sys.executable, "-m", "interfaces.cli"]
    return subprocess.Popen([*command, "projections", "rebuild"], cwd=ROOT, env=_env(data_dir, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory, bank_marketing_dir: Path) -> Path:
    data_dir = tmp_path_factory.mktemp("bank") / "var"
    done = tuohu(data_dir, "import", "bank-marketing", str(bank_marketing_dir / "bank.csv"), "--year", "2009")
    assert done.returncode == 0, done.stderr
    return data_dir


@pytest.fixture
def store(imported: Path, tmp_path: Path) -> Path:
    """A copy of the imported store (its read models caught up, generation 1 of each projection live)."""
    return Path(shutil.copytree(imported, tmp_path / "var"))


def _read_models(data_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(data_dir / "readmodels.sqlite", timeout=30)


def tables(data_dir: Path) -> set[str]:
    with _read_models(data_dir) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def tracking(data_dir: Path) -> dict[tuple[str, int], int]:
    """``{(projection, generation): position}`` of every tracked generation."""
    with _read_models(data_dir) as conn:
        return {(p, g): position for p, g, position in conn.execute(
            "SELECT projection, generation, position FROM rm_tracking")}


def live(data_dir: Path) -> dict[str, Any]:
    """What queries see: each projection's active generation, its position, and a checksum of its tables."""
    from application import Settings, bootstrap
    from projections import build_read_models

    application = bootstrap(Settings(data_dir=data_dir, database_url=None))
    read_models = build_read_models(application, Settings(data_dir=data_dir, database_url=None))
    try:
        store = read_models.store
        return {name: (store.active_generation(name), store.position(name), store.checksum(name))
                for name in store.projections} | {"funnel": read_models.funnel()}
    finally:
        read_models.close()
        application.close()


def served_now(data_dir: Path) -> tuple[Any, ...]:
    """What a query reads at once (quick, to ask while a rebuild runs): the active generations and the
    pipeline's funnel rows."""
    with _read_models(data_dir) as conn:
        active = dict(conn.execute("SELECT projection, active_generation FROM rm_state").fetchall())
        funnel = conn.execute(f"SELECT * FROM rm_funnel_g{active['pipeline']} ORDER BY 1, 2, 3, 4, 5").fetchall()
    return active, funnel


def wait_until(condition: Any, process: subprocess.Popen[str], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the rebuild ended before {what}: {process.communicate()}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.02)


def filled(data_dir: Path, projection: str, generation: int) -> bool:
    """Whether a batch of the rebuild's generation committed."""
    return tracking(data_dir).get((projection, generation), 0) > 0


def helpers_of(pid: int) -> list[int]:
    """The helper processes (``python -m projections.helper``) whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"projections.helper" in command:
            found.append(int(entry.name))
    return found


def gone(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.fixture
def rebuilds() -> Iterator[list[subprocess.Popen[str]]]:
    """The rebuild processes a test starts: killed at the end if still running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


INTERRUPTED = re.compile(
    r"(SIGINT|SIGTERM): rebuild of pipeline, actors, evaluation, team stopped before the swap; its unfinished "
    r"generations \((.+)\) were dropped; the live tables are unchanged and still served")


@pytest.mark.parametrize("helped", [False, True], ids=["one process", "with helper"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_rebuild_drops_its_tables_and_keeps_the_live_ones(
        store: Path, rebuilds: list, sig: signal.Signals, helped: bool) -> None:
    before, tables_before = live(store), tables(store)
    rebuild = start_rebuild(store, helped)
    rebuilds.append(rebuild)
    wait_until(lambda: filled(store, "pipeline", 2), rebuild, "a committed batch")
    served = served_now(store)
    rebuild.send_signal(sig)
    helpers = helpers_of(rebuild.pid)
    out, err = rebuild.communicate(timeout=60)

    assert rebuild.returncode == 128 + sig
    assert out == ""
    [line] = err.splitlines()
    said = INTERRUPTED.fullmatch(line)
    assert said, line
    assert said.group(1) == sig.name
    if helped:  # the helper's generations are further behind or ahead: each projection is named
        assert "evaluation generation 2 at position" in said.group(2), line
    else:
        assert re.fullmatch(r"generation 2 of pipeline, actors, evaluation, team at position [\d,]+ of 59,680",
                            said.group(2)), line
    assert served == served_now(store)  # queries read the live tables while the rebuild filled its own
    assert len(helpers) == int(helped)
    assert all(gone(pid) for pid in helpers)
    assert tables(store) == tables_before
    assert set(tracking(store)) == {(name, 1) for name in ("pipeline", "actors", "evaluation", "team")}
    assert live(store) == before


def test_a_service_manager_stopping_both_processes_is_an_interruption_not_a_failure(
        store: Path, rebuilds: list) -> None:
    """systemd sends SIGTERM to every process of the service: the helper may end first."""
    tables_before = tables(store)
    rebuild = start_rebuild(store, helped=True)
    rebuilds.append(rebuild)
    wait_until(lambda: filled(store, "pipeline", 2) and helpers_of(rebuild.pid), rebuild, "a batch and a helper")
    [helper] = helpers_of(rebuild.pid)

    os.kill(helper, signal.SIGTERM)
    rebuild.send_signal(signal.SIGTERM)
    _out, err = rebuild.communicate(timeout=60)

    assert rebuild.returncode == 143
    [line] = err.splitlines()
    assert line.startswith("SIGTERM: rebuild ") and "were dropped" in line, line
    assert tables(store) == tables_before


def test_a_failed_rebuild_drops_its_tables_and_says_so_in_one_line(store: Path, rebuilds: list) -> None:
    before, tables_before = live(store), tables(store)
    rebuild = start_rebuild(store, helped=True, HELPER_EXITS="3")
    rebuilds.append(rebuild)

    out, err = rebuild.communicate(timeout=120)

    assert rebuild.returncode == 1
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("rebuild stopped, the live tables unchanged: the helper filling evaluation, team "
                           "ended with exit code 3; the rebuild's unfinished generations ("), line
    assert line.endswith(") were dropped"), line
    assert tables(store) == tables_before
    assert live(store) == before


def test_status_shows_what_a_killed_rebuild_left_and_the_next_rebuild_drops_it(store: Path, rebuilds: list) -> None:
    tables_before = tables(store)
    rebuild = start_rebuild(store, helped=True)
    rebuilds.append(rebuild)
    wait_until(lambda: filled(store, "pipeline", 2) and helpers_of(rebuild.pid), rebuild, "a batch and a helper")
    helpers = helpers_of(rebuild.pid)

    rebuild.send_signal(signal.SIGKILL)  # nothing can catch it
    rebuild.wait(30)
    deadline = time.monotonic() + 10
    while not all(gone(pid) for pid in helpers):  # the helper dies with it
        assert time.monotonic() < deadline, "the helper outlived the rebuild"
        time.sleep(0.02)
    left = {key: position for key, position in tracking(store).items() if key[1] == 2}
    as_json, as_table = tuohu(store, "projections", "status", "--json"), tuohu(store, "projections", "status")

    assert as_json.returncode == 0 and as_table.returncode == 0, as_json.stderr + as_table.stderr
    status = {row["projection"]: row for row in json.loads(as_json.stdout)}
    assert {name: (row["generation"], row["previous_generation"]) for name, row in status.items()} == dict.fromkeys(
        ("pipeline", "actors", "evaluation", "team"), (1, None))
    assert {(name, other["generation"]): (other["state"], other["position"])
            for name, row in status.items() for other in row["other_generations"]} == {
        key: ("unfinished", position) for key, position in left.items()}
    assert left[("pipeline", 2)] > 0
    lines = [line for line in as_table.stdout.splitlines() if "unfinished generation" in line]
    assert len(lines) == 4
    assert re.fullmatch(rf"pipeline: unfinished generation 2 at position {left[('pipeline', 2)]:,} of 59,680, "
                        r"last written \d+ s ago \(being filled by a running rebuild, verify or as-of report, "
                        r"or left by one that was killed; the next rebuild drops it\)", lines[0]), lines[0]
    assert tables(store) > tables_before

    done = tuohu(store, "projections", "rebuild")
    after = tuohu(store, "projections", "status", "--json")

    assert done.returncode == 0, done.stderr
    assert [(row["generation"], row["previous_generation"], row["other_generations"])
            for row in json.loads(after.stdout)] == [(3, 1, [])] * 4
    assert {(p, g) for p, g in tracking(store)} == {(name, g) for name in status for g in (1, 3)}
    assert not any(re.search(r"_g2(_|$)", name) for name in tables(store))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_verify_stopped_by_a_signal_drops_its_scratch_tables_and_says_so(store: Path, rebuilds: list,
                                                                           sig: signal.Signals) -> None:
    before = tables(store)
    verify = subprocess.Popen([sys.executable, "-m", "interfaces.cli", "projections", "verify"], cwd=ROOT,
                              env=_env(store), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    rebuilds.append(verify)
    wait_until(lambda: filled(store, "pipeline", 2), verify, "a batch of the scratch generation")

    verify.send_signal(sig)
    out, err = verify.communicate(timeout=120)

    assert verify.returncode == 128 + sig, (out, err)
    [line] = err.strip().splitlines()
    assert re.fullmatch(rf"{sig.name}: verify stopped while checking pipeline: nothing compared; its scratch "
                        r"tables were dropped; the live tables are unchanged", line), line
    assert tables(store) == before
    assert ("pipeline", 2) not in tracking(store)
