"""Detached server processes: start them, find them again by pid file, stop them.

The servers outlive the ``ops/services.py`` run that started them (pytest starts
them from a subprocess and then uses them), so everything here works from the
pid file and ``/proc`` rather than from a ``Popen`` object.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

#: The local servers listen on loopback only: they have no authentication.
BIND_HOST = "127.0.0.1"

#: Seconds between two probes while waiting for a server to start or stop.
POLL_INTERVAL_S = 0.25

#: Seconds to wait for a process to vanish after SIGKILL.
KILL_WAIT_S = 5.0


class ServiceError(RuntimeError):
    """A local server could not be installed, configured, started or stopped."""


def spawn(cmd: list[str], out: Path, pidfile: Path, cwd: Path) -> int:
    """Start ``cmd`` in its own session, detached from this process, and record its pid.

    Parameters
    ----------
    cmd
        The server's command line.
    out
        File that receives the server's stdout and stderr (appended to).
    pidfile
        File the pid is written to.
    cwd
        Working directory of the server.

    Returns
    -------
    int
        The server's pid.

    Raises
    ------
    ServiceError
        If the executable cannot be run.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("ab") as sink:
        try:
            # A new session keeps the server alive when the caller (a pytest fixture's
            # subprocess, a terminal) exits or receives Ctrl-C.
            proc = subprocess.Popen(
                cmd,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as e:
            raise ServiceError(f"cannot run {cmd[0]}: {e}") from None
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def alive(pid: int, marker: str) -> bool:
    """Return whether ``pid`` runs (not a zombie) with ``marker`` in its command line.

    The marker check keeps a pid recycled by an unrelated process from passing
    for our server.
    """
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():  # no procfs (macOS): existence is all we can tell
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X") and marker.encode() in cmdline


def read_pid(pidfile: Path, marker: str) -> int | None:
    """Return the pid recorded in ``pidfile`` if that server still runs.

    A stale pid file (process gone, or the pid now belongs to something else)
    is removed.
    """
    try:
        pid = int(pidfile.read_text().split()[0])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, IndexError):
        pid = -1
    if pid > 0 and alive(pid, marker):
        return pid
    logger.info("removing stale pid file %s", pidfile)
    pidfile.unlink(missing_ok=True)
    return None


def stop(pid: int, marker: str, timeout_s: float) -> bool:
    """Stop a server: SIGTERM, wait up to ``timeout_s``, then SIGKILL.

    Returns
    -------
    bool
        True if the server ignored SIGTERM and had to be killed.
    """
    _signal(pid, signal.SIGTERM)
    if wait_for(lambda: not alive(pid, marker), timeout_s):
        return False
    _signal(pid, signal.SIGKILL)
    if not wait_for(lambda: not alive(pid, marker), KILL_WAIT_S):
        raise ServiceError(f"pid {pid} survived SIGKILL")
    return True


def _signal(pid: int, sig: signal.Signals) -> None:
    # The server leads its own process group (start_new_session): signal the group so
    # helper processes it may have forked go too.
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def wait_for(check: Callable[[], bool], timeout_s: float) -> bool:
    """Call ``check`` until it returns True or ``timeout_s`` pass; return its last answer."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S)
    return True


def port_open(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Return whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 30) -> str:
    """Return the last ``lines`` lines of a log file, or a note that it is missing."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path``, so two ``up``/``down`` runs never interleave."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info("waiting for another ops/services.py run to finish (%s)", path)
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
