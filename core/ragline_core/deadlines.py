"""The caller's deadline, carried from the incoming call to every outgoing one."""

from __future__ import annotations

import contextvars
import time

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "ragline_deadline", default=None
)


def set_deadline(time_remaining: float | None) -> None:
    """Records the incoming call's deadline (seconds from now) for this task."""
    _deadline.set(None if time_remaining is None else time.monotonic() + time_remaining)


def remaining(default: float) -> float:
    """Seconds left before the caller's deadline, or `default` when there is none."""
    deadline = _deadline.get()
    if deadline is None:
        return default
    return min(default, deadline - time.monotonic())
