"""A hard stop for a science actor's run: an exception raised in its thread past a limit.

A run over its ``time_budget_s`` fails its batch once it returns (``stage.py``), but a
run that never returns (a loop that does not end) would hold the science stage, and
every batch behind it, until Dramatiq's ``time_limit_ms`` (ten minutes) failed the
whole message, and again on each retry. :func:`hard_limit` stops it instead: past the
limit, :class:`ActorStopped` is raised in the running thread, the way Dramatiq's own
time limit interrupts an actor. Python code is interrupted at its next bytecode; a
call into C (a long numpy or scipy routine) only when it returns to Python.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ActorStopped(BaseException):
    """Raised in a science actor's thread when its run outlives its hard limit.

    A ``BaseException``, so that an actor's own ``except Exception`` cannot swallow it.
    """


def _raise_in(thread_id: int, exception: type[BaseException] | None) -> None:
    # None clears an exception set but not yet raised.
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exception) if exception else None
    )


@contextmanager
def hard_limit(seconds: float) -> Iterator[None]:
    """Run the block; raise :class:`ActorStopped` in it if it is still running after ``seconds``.

    Raises
    ------
    ActorStopped
        If the block ran longer than ``seconds``.
    """
    thread_id, lock = threading.get_ident(), threading.Lock()
    state = {"done": False, "fired": False}

    def fire() -> None:
        with lock:
            if not state["done"]:
                state["fired"] = True
                _raise_in(thread_id, ActorStopped)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            state["done"] = True
        timer.cancel()
        if state["fired"]:
            # Fired as the block was ending: an exception still pending must not be
            # raised later, in the stage's own code.
            _raise_in(thread_id, None)
