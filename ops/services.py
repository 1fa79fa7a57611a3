"""Install, start, health-check and stop the local servers of the configuration in force.

    python ops/services.py up|down|status [--only valkey,kafka,mongo]

The configuration is ``$BOOM_CONFIG`` or config/default.yaml: it gives the ports
and ``local.data_dir``, the folder of each server's data, log and pid file.

up
    Step 1: reuse every server that already answers on its port.
    Step 2: start the others detached (they outlive this command), Kafka's jars
            resolved from Maven Central the first time.
    Step 3: wait until each answers; on failure exit 1 and show the end of its log.
down
    SIGTERM each server by its pid file, SIGKILL after a grace period.
status
    One line per server; exit 0 only if all of them are up, 3 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from _process import ServiceError, alive, locked, read_pid, spawn, stop, tail, wait_for
from _servers import FACTORIES, Service

from boom_tasks.errors import ConfigError
from boom_tasks.settings import DEFAULT_CONFIG, load_settings

logger = logging.getLogger("services")

#: Exit status of ``status`` when a server is down (as LSB init scripts' "not running").
EXIT_NOT_RUNNING = 3


def up(services: list[Service]) -> int:
    """Start the servers that are not already up and wait until all of them answer.

    Parameters
    ----------
    services
        The servers to bring up, in start order.

    Returns
    -------
    int
        0 if every server answers, 1 otherwise.
    """
    waiting: list[tuple[Service, int, float]] = []
    failed = 0
    # Launch everything first, then wait: the servers start in parallel.
    for svc in services:
        try:
            pid = _launch(svc)
        except ServiceError as e:
            logger.error("%s: %s", svc.name, e)
            failed += 1
            continue
        if pid is not None:
            waiting.append((svc, pid, time.monotonic()))
    failed += sum(not _wait_healthy(svc, pid, since) for svc, pid, since in waiting)
    return 1 if failed else 0


def _launch(svc: Service) -> int | None:
    """Start ``svc`` unless it already answers; return the pid to wait for, if any."""
    if svc.healthy():
        logger.info("%s: already up on %s, reusing it", svc.name, svc.address)
        return None
    pid = read_pid(svc.pidfile, svc.marker)
    if pid is not None:  # started earlier and not answering yet: don't start a second one
        logger.info("%s: pid %d is running but not answering yet; waiting for it", svc.name, pid)
        return pid
    cmd = svc.prepare()
    pid = spawn(cmd, svc.output, svc.pidfile, cwd=svc.home)
    logger.info("%s: started pid %d on %s (log %s)", svc.name, pid, svc.address, svc.log)
    return pid


def _wait_healthy(svc: Service, pid: int, since: float) -> bool:
    """Wait until ``svc``, launched at ``since``, answers; on failure log why and its logs."""
    left = since + svc.start_timeout_s - time.monotonic()
    # Stop waiting as soon as the process is gone: its log says why.
    wait_for(lambda: not alive(pid, svc.marker) or svc.healthy(), left)
    if svc.healthy():
        logger.info("%s: up on %s after %.1f s", svc.name, svc.address, time.monotonic() - since)
        return True
    if alive(pid, svc.marker):
        why = f"pid {pid} did not answer within {svc.start_timeout_s:.0f} s (still running)"
    else:
        why = f"pid {pid} exited"
        svc.pidfile.unlink(missing_ok=True)
    files = dict.fromkeys((svc.output, svc.log))  # one file for most servers, two for Kafka
    logs = "\n".join(f"--- last lines of {p} ---\n{tail(p)}" for p in files)
    logger.error("%s: failed to start on %s: %s\n%s", svc.name, svc.address, why, logs)
    return False


def down(services: list[Service]) -> int:
    """Stop the servers started by ``up`` (found by their pid files).

    A server that answers without a pid file was started by someone else and is
    left alone.

    Returns
    -------
    int
        0 if every server with a pid file stopped, 1 otherwise.
    """
    failed = 0
    for svc in reversed(services):
        pid = read_pid(svc.pidfile, svc.marker)
        if pid is None:
            if svc.healthy():
                logger.warning(
                    "%s: answers on %s but has no pid file in %s; not ours, left running",
                    svc.name,
                    svc.address,
                    svc.home,
                )
            else:
                logger.info("%s: not running", svc.name)
            continue
        try:
            killed = stop(pid, svc.marker, svc.stop_timeout_s)
        except ServiceError as e:
            logger.error("%s: %s", svc.name, e)
            failed += 1
            continue
        svc.pidfile.unlink(missing_ok=True)
        how = f" (killed: no exit {svc.stop_timeout_s:.0f} s after SIGTERM)" if killed else ""
        logger.info("%s: stopped pid %d%s", svc.name, pid, how)
    return 1 if failed else 0


def status(services: list[Service]) -> int:
    """Print one line per server: name, up or down, address, pid.

    Returns
    -------
    int
        0 if every server answers, :data:`EXIT_NOT_RUNNING` otherwise.
    """
    all_up = True
    for svc in services:
        healthy = svc.healthy()
        pid = read_pid(svc.pidfile, svc.marker)
        owner = f"pid {pid}" if pid is not None else "no pid file"
        print(f"{svc.name:<7} {'up' if healthy else 'down':<5} {svc.address:<22} {owner}")
        all_up &= healthy
    return 0 if all_up else EXIT_NOT_RUNNING


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FACTORIES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown service {', '.join(unknown) or text!r}; choose from {','.join(FACTORIES)}"
        )
    return [n for n in FACTORIES if n in names]  # start order, whatever the order given


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = argparse.ArgumentParser(
        prog="ops/services.py", description="Local Valkey, Kafka and MongoDB servers."
    )
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument(
        "--only", type=_names, default=list(FACTORIES), help="comma-separated subset"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="services: %(message)s")
    try:
        settings = load_settings()
    except ConfigError as e:
        logger.error("%s", e)
        return 2
    services = [FACTORIES[name](settings) for name in args.only]
    if args.action == "status":
        return status(services)
    home = settings.local.path()
    config = os.environ.get("BOOM_CONFIG") or DEFAULT_CONFIG
    logger.info("%s: configuration %s, data in %s", args.action, config, home)
    with locked(home / "services.lock"):
        return up(services) if args.action == "up" else down(services)


if __name__ == "__main__":
    sys.exit(main())
