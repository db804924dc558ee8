"""Stopping the TTP's fallback between blocks of its work (Ctrl-C must not wait for it).

The fallback runs on a thread beside the BSN tokens' mapping (:mod:`pseudonymisation.ttp`). A
thread cannot be interrupted: on Ctrl-C the main thread sets the run's stop event, and the
fallback stops at its next check, one block of comparisons or one blocking key later, instead
of finishing its work (about 20 s at nivel size) before the command can exit. A check reads one
flag: it does not slow the fallback.

    with stop_on(event):      # on the fallback's thread
        ...                   # checkpoint() between blocks; a thread pool passes current() on
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

__all__ = ["Stopped", "checkpoint", "current", "stop_on"]

_STOP: ContextVar[threading.Event | None] = ContextVar("pfl_fallback_stop", default=None)


class Stopped(Exception):  # noqa: N818 (an outcome asked for, not an error)
    """The run was asked to stop (Ctrl-C in the command); nothing of the fallback is used."""


@contextmanager
def stop_on(event: threading.Event) -> Iterator[None]:
    """Checks on this thread (and on pools given :func:`current`) stop when ``event`` is set."""
    token = _STOP.set(event)
    try:
        yield
    finally:
        _STOP.reset(token)


def current() -> threading.Event | None:
    """This thread's stop event, for the workers of a thread pool (contexts do not pass to them)."""
    return _STOP.get()


def checkpoint(event: threading.Event | None = None) -> None:
    """Raise :class:`Stopped` if the run was asked to stop (``event``, or this thread's)."""
    event = _STOP.get() if event is None else event
    if event is not None and event.is_set():
        raise Stopped
