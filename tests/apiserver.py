"""A real ``boom-api`` process for the API tests, and the ``boom`` command they provision with."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent


def boom(env: dict[str, str], *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    """Run ``boom ARGS`` (e.g. ``users add``) in ``env``; return the finished process."""
    return subprocess.run(
        [str(BIN / "boom"), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _wait_up(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"boom-api exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    pytest.fail(f"boom-api did not answer within 60 s:\n{log.read_text()}")


@contextmanager
def running_api(env: dict[str, str], port: int, log: Path) -> Iterator[str]:
    """Start ``boom-api --port PORT`` in ``env`` (its output in ``log``); yield its URL."""
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(BIN / "boom-api"), "--port", str(port)], env=env, stdout=out, stderr=out
        )
    try:
        _wait_up(url, proc, log)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
