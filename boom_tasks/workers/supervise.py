"""``boom-workers``: Dramatiq worker processes that are replaced when they die.

Why a supervisor of our own: ``dramatiq --processes N`` stops *every* worker when
one of them dies ("Worker with PID … exited unexpectedly. Shutting down"), and
nothing restarts the pool; and Dramatiq requeues a dead worker's unacknowledged
messages only in its random maintenance, after the heartbeat timeout. So instead:

Step 1: run one ``dramatiq boom_tasks.actors --processes 1`` per slot, each in its
        own process group and with a broker id of our choosing
        (:data:`~boom_tasks.broker.WORKER_ID_ENV`), so one death stops nothing else;
Step 2: when a slot's process exits, for any reason (SIGKILL, OOM killer, crash),
        kill what is left of its group (a worker orphaned by its parent's death
        must not go on processing), then requeue the messages it held at once
        (:func:`~boom_tasks.workers.recovery.requeue_worker`);
Step 3: restart the slot after a backoff (``worker.restart_backoff_s``, doubled at
        each quick death up to ``worker.max_restart_backoff_s``);
Step 4: on SIGTERM or SIGINT, stop every slot gracefully (``worker.stop_timeout_s``,
        then SIGKILL and requeue) and exit.

In docker-compose and Kubernetes the container engine is the supervisor: run one
worker process per container (``dramatiq boom_tasks.actors --processes 1``) with a
restart policy; the broker's heartbeat timeout and maintenance settings then bound
the redelivery of a dead container's messages.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field

from boom_tasks import logs
from boom_tasks.broker import NAMESPACE, WORKER_ID_ENV
from boom_tasks.entry import EXIT_BAD_CONFIG, EXIT_OK, exit_with, whole_number
from boom_tasks.errors import BoomError
from boom_tasks.services.valkey import get_client
from boom_tasks.settings import Settings, WorkerSettings, get_settings
from boom_tasks.workers.recovery import requeue_worker

log = logging.getLogger(__name__)

#: Seconds between two looks at the children.
POLL_S = 0.2

#: Seconds to wait for the rest of a dead slot's process group to vanish after SIGKILL.
GROUP_KILL_WAIT_S = 5.0


@dataclass
class Slot:
    """One supervised worker process and its restart state."""

    index: int
    command: list[str]
    proc: subprocess.Popen | None = None
    worker_id: str = ""
    started: float = 0.0
    backoff: float = 0.0
    restart_at: float | None = 0.0
    restarts: int = 0
    exits: list[int] = field(default_factory=list)


#: ``dramatiq``'s exit code when a module fails to import (or its command line is wrong).
RET_IMPORT = 2
#: Exit codes of a worker that no restart can mend.
CANNOT_START = frozenset({RET_IMPORT, EXIT_BAD_CONFIG})


class Supervisor:
    """Keep ``len(slots)`` worker processes running until asked to stop."""

    def __init__(self, settings: Settings, commands: list[list[str]]) -> None:
        self.settings = settings
        self.worker: WorkerSettings = settings.worker
        self.slots = [Slot(i, cmd) for i, cmd in enumerate(commands)]
        self.stopping = False
        #: Dead workers whose messages could not be requeued yet (Valkey was away).
        self.unrequeued: set[str] = set()
        self.tag = f"{os.uname().nodename}-{os.getpid()}"

    def request_stop(self, *_: object) -> None:
        """Ask the loop to stop every slot and return (a signal handler)."""
        self.stopping = True

    def run(self) -> int:
        """Supervise until :meth:`request_stop`; return 0 (78 if a worker cannot start)."""
        while not self.stopping:
            now = time.monotonic()
            for slot in self.slots:
                if slot.proc is not None and slot.proc.poll() is not None:
                    if slot.proc.returncode in CANNOT_START:
                        return self._give_up(slot)
                    self._on_exit(slot, now)
                if slot.proc is None and slot.restart_at is not None and now >= slot.restart_at:
                    self._start(slot)
            for worker_id in list(self.unrequeued):
                self._requeue(worker_id)
            time.sleep(POLL_S)
        self.stop_all()
        return EXIT_OK

    def _give_up(self, slot: Slot) -> int:
        """Stop every slot and return 78: this worker would fail the same way at each restart.

        It could not import its modules or read its configuration.
        """
        assert slot.proc is not None
        code = slot.proc.returncode
        why = "a module failed to import" if code == RET_IMPORT else "the configuration is invalid"
        log.error(
            "worker slot %d: exited with code %d at start (%s; its log above says which): "
            "not restarting, stopping every worker",
            slot.index,
            code,
            why,
        )
        _kill_group(slot.proc.pid)
        self._requeue(slot.worker_id)
        slot.proc = None
        self.stop_all()
        return EXIT_BAD_CONFIG

    def _start(self, slot: Slot) -> None:
        slot.worker_id = f"{self.tag}-{slot.index}-{uuid.uuid4().hex[:12]}"
        env = {**os.environ, WORKER_ID_ENV: slot.worker_id}
        # Its own session and process group: the whole group can be killed when the
        # dramatiq parent dies and leaves its worker process orphaned.
        slot.proc = subprocess.Popen(slot.command, env=env, start_new_session=True)
        slot.started, slot.restart_at = time.monotonic(), None
        log.info("worker slot %d: started pid %d (%s)", slot.index, slot.proc.pid, slot.worker_id)

    def _on_exit(self, slot: Slot, now: float) -> None:
        assert slot.proc is not None
        pid, code, lived = slot.proc.pid, slot.proc.returncode, now - slot.started
        slot.exits.append(code)
        _kill_group(pid)
        moved = self._requeue(slot.worker_id)
        slot.backoff = next_backoff(slot.backoff, lived, self.worker)
        slot.restarts += 1
        slot.proc, slot.restart_at = None, time.monotonic() + slot.backoff
        log.error(
            "worker slot %d: pid %d exited with code %s after %.1fs; %d messages requeued; "
            "restarting in %.1fs",
            slot.index,
            pid,
            code,
            lived,
            moved,
            slot.backoff,
        )

    def _requeue(self, worker_id: str) -> int:
        """Requeue a dead worker's messages; if Valkey is away, try again next round."""
        try:
            moved = requeue_worker(get_client(self.settings.valkey), NAMESPACE, worker_id)
        except BoomError as e:
            if worker_id not in self.unrequeued:
                log.error("cannot requeue the messages of %s yet (%s); will retry", worker_id, e)
            self.unrequeued.add(worker_id)
            return 0
        self.unrequeued.discard(worker_id)
        return moved

    def stop_all(self) -> None:
        """SIGTERM every slot's group, wait ``stop_timeout_s``, SIGKILL, requeue leftovers."""
        running = [s for s in self.slots if s.proc is not None and s.proc.poll() is None]
        for slot in running:
            # The dramatiq parent only: it passes SIGTERM on to its worker once (a worker
            # that receives a second SIGTERM exits at once, without finishing its messages).
            slot.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + self.worker.stop_timeout_s
        for slot in running:
            try:
                slot.proc.wait(timeout=max(0.0, deadline - time.monotonic()))  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                log.warning("worker slot %d did not stop in time: killing it", slot.index)
        for slot in self.slots:
            if slot.proc is not None:
                _kill_group(slot.proc.pid)
                slot.proc.wait()
                self._requeue(slot.worker_id)


def next_backoff(previous: float, lived: float, worker: WorkerSettings) -> float:
    """Return the seconds to wait before restarting a process that lived ``lived`` seconds.

    The first restart, and any after a stable run (``stable_after_s``), waits
    ``restart_backoff_s``; each quick death after that doubles the wait, up to
    ``max_restart_backoff_s``, so a crash loop does not spin the machine.
    """
    if lived >= worker.stable_after_s or previous <= 0:
        return worker.restart_backoff_s
    return min(previous * 2, worker.max_restart_backoff_s)


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _kill_group(pgid: int) -> None:
    """SIGKILL what is left of a process group and wait (bounded) for it to vanish."""
    deadline = time.monotonic() + GROUP_KILL_WAIT_S
    while _signal_group(pgid, signal.SIGKILL) and time.monotonic() < deadline:
        time.sleep(0.05)


def worker_command(threads: int, queues: list[str], modules: list[str]) -> list[str]:
    """Return the command line of one supervised worker process."""
    dramatiq = os.path.join(os.path.dirname(sys.executable), "dramatiq")
    cmd = [dramatiq if os.path.exists(dramatiq) else "dramatiq", "boom_tasks.actors", *modules]
    cmd += ["--processes", "1", "--threads", str(threads)]
    return cmd + (["--queues", *queues] if queues else [])


def _check_queues(queues: list[str], settings: Settings) -> None:
    """Refuse a queue no stage declares: its workers would wait for ever, consuming nothing."""
    from boom_tasks.chain import declared_queues
    from boom_tasks.monitor.pipeline import replay_queues
    from boom_tasks.surveys import SURVEYS

    declared = {q for qs in declared_queues(SURVEYS.values(), settings).values() for q in qs}
    declared |= set(replay_queues(SURVEYS.values(), settings).values())
    unknown = sorted(set(queues) - declared)
    if unknown:
        raise BoomError(f"no stage reads queue(s) {unknown}; the queues are {sorted(declared)}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="boom-workers",
        description="Run Dramatiq worker processes, each restarted when it dies.",
    )
    p.add_argument(
        "--processes", "-p", type=whole_number(1, 64), default=2, help="worker processes (slots)"
    )
    p.add_argument(
        "--threads", "-t", type=whole_number(1, 256), default=2, help="threads per process"
    )
    p.add_argument("--queues", "-Q", nargs="*", default=[], help="only these queues")
    p.add_argument("--module", action="append", default=[], help="extra module each worker imports")
    p.add_argument("--log-level", default="INFO", type=logs.level_name)
    return p


def run(args: argparse.Namespace) -> int:
    """Supervise ``args.processes`` workers until SIGTERM or SIGINT."""
    settings = get_settings()
    _check_queues(args.queues, settings)
    command = worker_command(args.threads, args.queues, args.module)
    supervisor = Supervisor(settings, [command] * args.processes)
    signal.signal(signal.SIGTERM, supervisor.request_stop)
    signal.signal(signal.SIGINT, supervisor.request_stop)
    return supervisor.run()


def main(argv: list[str] | None = None) -> None:
    """Entry point of ``boom-workers``."""
    args = _parser().parse_args(argv)
    logs.configure(args.log_level)
    exit_with("boom-workers", lambda: run(args))
