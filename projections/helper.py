"""Filling generations in a second process, while this one fills others (a rebuild uses both CPUs).

:meth:`projections.framework.ProjectionRunner.rebuild` may hand the projections
marked ``fill_apart`` to a helper: ``python -m projections.helper``, started with
:func:`start`, builds a runner of its own from a *recipe* (a picklable callable,
:func:`runner_for` with the settings, that yields a runner over the same event
store and read-model database), fills the generations it was given with
:meth:`~projections.framework.ProjectionRunner.fill_many` - the same batches and
transactions as in the first process, so a crash of either leaves each
generation at its last committed batch - and reports the positions, or the
failure, back through a pipe. The generations are new ones that no query reads
and that only the helper writes; the first process makes them active, with the
others, once it has caught them all up (the swap stays one step of the first
process). The helper dies with the process that started it (Linux), and that
process ends the helper if its own part fails or the rebuild is stopped. It runs
in a process group of its own, so Ctrl-C in a terminal reaches only the first
process, which ends it.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import select
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from application.settings import Settings
    from projections.framework import ProjectionRunner

Recipe = Callable[[], AbstractContextManager["ProjectionRunner"]]


@contextmanager
def runner_for(settings: Settings) -> Iterator[ProjectionRunner]:
    """A runner over the event store and read models ``settings`` name (a helper's recipe, with the settings)."""
    from application import bootstrap
    from projections import build_read_models

    app = bootstrap(settings)
    try:
        read_models = build_read_models(app, settings)
        try:
            yield read_models.runner
        finally:
            read_models.close()
    finally:
        app.close()


class HelperFailed(RuntimeError):
    """The helper ended without filling its generations (not a projection's failure: see the message)."""


class Helper:
    """A helper process filling generations; :meth:`result` waits for its positions."""

    def __init__(self, recipe: Recipe, targets: dict[str, int], until: int | None = None,
                 riders: dict[str, int] | None = None) -> None:
        self.targets = targets
        read, write = os.pipe()
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tuohu's packages, as imported here
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "projections.helper", str(write), str(os.getpid())],
                stdin=subprocess.PIPE, pass_fds=(write,), env=env, process_group=0)
        finally:
            os.close(write)
        self._results = os.fdopen(read, "rb")
        assert self._process.stdin is not None
        with self._process.stdin as given:
            given.write(pickle.dumps((recipe, targets, until, riders or {})))

    def result(self, between: Callable[[], None] | None = None, interval: float = 0.1) -> dict[str, int]:
        """The helper's positions (``{projection: position}``), when it is done; raises the
        :class:`~projections.framework.ProjectionFailed` it stopped on, or :class:`HelperFailed`.

        ``between`` is called about every ``interval`` seconds while the helper works; it may raise
        to stop waiting (the caller then ends the helper with :meth:`kill`)."""
        from projections.framework import ProjectionFailed

        while between is not None:
            between()
            if select.select([self._results], [], [], interval)[0]:
                break  # the helper wrote its outcome, or ended
        with self._results as results:
            data = results.read()
        code = self._process.wait()
        if not data:
            raise HelperFailed(f"the helper filling {', '.join(self.targets)} ended with {_exit_status(code)}")
        kind, value = pickle.loads(data)  # noqa: S301 - written by our own child process
        if kind == "failed":
            raise ProjectionFailed(*value)
        if kind != "ok":
            raise HelperFailed(f"the helper filling {', '.join(self.targets)} failed: {value}")
        return value

    def running(self) -> bool:
        """Whether the helper has not ended yet."""
        return self._process.poll() is None

    def check(self) -> None:
        """Raise :class:`HelperFailed` at once if the helper has ended abnormally (killed, or
        crashed before it could report), so the rebuild stops rather than fill on for nothing."""
        code = self._process.poll()
        if code is not None and code != 0:
            raise HelperFailed(f"the helper filling {', '.join(self.targets)} ended with {_exit_status(code)}")

    def kill(self) -> None:
        """End the helper now and wait until it has ended (SIGKILL: its current batch rolls back,
        its committed batches stay)."""
        self._process.kill()
        self._process.wait()
        self._results.close()


def _exit_status(code: int) -> str:
    """``exit code 3``, or ``signal SIGTERM`` for a process a signal ended (``Popen.returncode`` < 0)."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def start(recipe: Recipe, targets: dict[str, int], until: int | None = None,
          riders: dict[str, int] | None = None) -> Helper:
    """Start a helper filling ``targets`` (``{projection: generation}``) up to ``until`` (or the head) with a
    runner from ``recipe``, writing on the way the rows of one event alone of ``riders`` (``{projection:
    generation}``) for the events it decodes (:meth:`~projections.framework.ProjectionRunner.fill_many`)."""
    return Helper(recipe, targets, until, riders)


def _die_with_parent(parent: int) -> None:
    """Have the kernel end this process when its parent ends (Linux), and end now if it already has."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the parent kills us on failure
            pass
    if os.getppid() != parent:
        os._exit(1)


def main() -> None:
    from projections.framework import ProjectionFailed

    out, parent = int(sys.argv[1]), int(sys.argv[2])
    _die_with_parent(parent)
    recipe, targets, until, riders = pickle.load(sys.stdin.buffer)  # noqa: S301 - written by our parent
    outcome: tuple[str, Any]
    try:
        with recipe() as runner:
            outcome = ("ok", runner.fill_many(targets, until=until, riders=riders))
    except ProjectionFailed as failure:
        outcome = ("failed", (failure.projection, failure.position, failure.error))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        outcome = ("error", f"{type(exc).__name__}: {exc}")
    with os.fdopen(out, "wb") as results:
        results.write(pickle.dumps(outcome))


if __name__ == "__main__":
    main()
