"""What `make status` shows per component: pids, up or not, restarts, last exit."""

from __future__ import annotations

import contextlib
import socket
from dataclasses import dataclass
from datetime import UTC, datetime

from ragline_stack.stack import Stack


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    # The process group leader (the supervisor) and the component's own process.
    pid: int | None
    service_pid: int | None
    # yes | starting (port not open yet) | restarting (back-off) | stopping | no
    up: str
    restarts: int
    last_exit: str | None
    last_exit_at: str | None
    next_start_at: str | None


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def component_status(stack: Stack, name: str) -> ComponentStatus:
    state = stack.supervision(name) or {}
    pid, child = stack.pid(name), stack.child_pid(name)
    if child is not None:
        up = "yes" if _listening(stack.port(name)) else "starting"
    elif pid is None:
        up = "no"
    elif state.get("state") == "backoff":
        up = "restarting"
    else:
        up = str(state.get("state") or "starting")  # starting, stopping
    return ComponentStatus(
        name=name,
        pid=pid,
        service_pid=child,
        up=up,
        restarts=int(state.get("restarts", 0)),
        last_exit=state.get("last_exit"),
        last_exit_at=state.get("last_exit_at"),
        next_start_at=state.get("next_start_at"),
    )


def _ago(iso: str | None) -> str:
    if not iso:
        return ""
    seconds = (datetime.now(UTC) - datetime.fromisoformat(iso)).total_seconds()
    return f"{seconds:.0f}s ago" if seconds < 120 else f"{seconds / 60:.0f}m ago"


def render(statuses: list[ComponentStatus]) -> str:
    rows = [("component", "pid", "service pid", "up", "restarts", "last exit")]
    for s in statuses:
        last = "-"
        if s.last_exit:
            last = f"{s.last_exit}, {s.last_exit_at} ({_ago(s.last_exit_at)})"
        up = s.up
        if up == "restarting" and s.next_start_at:
            up += f" at {s.next_start_at[11:19]}"
        rows.append(
            (s.name, str(s.pid or "-"), str(s.service_pid or "-"), up, str(s.restarts), last)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in rows
    )
