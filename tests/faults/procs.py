"""Start, find and kill the processes of a fault test: supervised workers, the bridge."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def start_supervisor(
    processes: int, threads: int = 1, env: dict[str, str] | None = None, log: Path | None = None
) -> subprocess.Popen:
    """Start ``boom-workers`` with the fault hooks loaded in each worker process."""
    cmd = [str(BIN / "boom-workers"), "--processes", str(processes), "--threads", str(threads)]
    cmd += ["--module", "tests.faults.hooks"]
    out = log.open("ab") if log else subprocess.DEVNULL
    return subprocess.Popen(
        cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT
    )


def stop_supervisor(proc: subprocess.Popen, timeout: float = 90) -> None:
    """SIGTERM the supervisor and wait; SIGKILL it and its process tree if it lingers."""
    tree = _tree(proc.pid)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        for p in [*tree, *_tree(proc.pid)]:
            _kill(p.pid)
        proc.wait()


def _tree(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def children(pid: int) -> list[int]:
    """Return the pids of ``pid``'s living children (a killed one not yet reaped is not)."""
    try:
        kids = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    out = []
    for c in kids:
        with contextlib.suppress(psutil.NoSuchProcess):
            if c.status() != psutil.STATUS_ZOMBIE:
                out.append(c.pid)
    return out


def slot_parents(supervisor: subprocess.Popen) -> list[int]:
    """Return the pids of the supervisor's children (one ``dramatiq`` parent per slot)."""
    try:
        return [c.pid for c in psutil.Process(supervisor.pid).children()]
    except psutil.NoSuchProcess:
        return []


def worker_pids(supervisor: subprocess.Popen) -> list[int]:
    """Return the pids of the worker processes proper (the ``dramatiq`` parents' children)."""
    return [w for parent in slot_parents(supervisor) for w in children(parent)]


def sigkill(pid: int) -> float:
    """SIGKILL ``pid``; return the time of the kill."""
    _kill(pid)
    return time.time()


def wait_for(what: str, check: Callable[[], object], timeout: float, every: float = 0.2) -> object:
    """Return ``check()``'s first truthy value, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
