"""python -m ragline_stack.supervisor --name NAME --state-dir DIR -- ARGV...

Runs one component of the local stack as its child and restarts it whenever it exits,
with exponential back-off, as Kubernetes restarts a pod's container: a native crash in
one service must not leave its routes down for good.

Stop or crash: a stop is SIGTERM/SIGINT to the supervisor (Stack.stop signals it; a
signal to the whole process group reaches it too). The supervisor forwards it to the
child, waits for the child and exits without restarting. Any other exit of the child,
clean or not, is restarted after the back-off.

The child stays in the supervisor's process group, so Stack.stop's SIGKILL fallback and a
SIGSTOP of the group reach it, and it gets SIGKILL if the supervisor itself dies
(PR_SET_PDEATHSIG): it is never orphaned.

Every exit is logged to stdout (the component's log) as a JSON line, and the restart
count, the last exit and its time are kept in DIR/NAME.restarts.json.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
# SIGCHLD is blocked too and waited for, so no signal handler can race the restart decision.
WAITED_SIGNALS = {*STOP_SIGNALS, signal.SIGCHLD}
_PR_SET_PDEATHSIG = 1


def state_path(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.restarts.json"


def read_state(path: Path) -> dict[str, Any] | None:
    """The supervisor's last written state, or None if there is none (yet)."""
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def iso(timestamp: float | None = None) -> str:
    """UTC time (now by default) as 2025-01-31T12:00:00.000Z."""
    when = datetime.now(UTC) if timestamp is None else datetime.fromtimestamp(timestamp, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def describe_exit(status: int) -> str:
    """'exit code 3' or 'killed by SIGSEGV (core dumped)', from a raw wait status."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"killed by {name}" + (" (core dumped)" if os.WCOREDUMP(status) else "")
    return f"exit code {os.WEXITSTATUS(status)}"


@dataclass
class Backoff:
    """Delay before the n-th restart in a row: initial * 2**(n-1), capped at maximum. A
    child that stayed up `reset_after` seconds was healthy: its crash starts over."""

    initial: float = 0.5
    maximum: float = 30.0
    reset_after: float = 60.0
    failures: int = 0

    def next_delay(self, uptime: float) -> float:
        if uptime >= self.reset_after:
            self.failures = 0
        self.failures += 1
        # The exponent is capped: a crash loop of days must not overflow a float.
        return min(self.initial * 2.0 ** min(self.failures - 1, 30), self.maximum)


@dataclass
class State:
    """What `make status` shows; written atomically after every change."""

    name: str
    supervisor_pid: int
    # starting | running | backoff | stopping | stopped
    state: str = "starting"
    pid: int | None = None
    restarts: int = 0
    started_at: str | None = None
    last_exit: str | None = None
    last_exit_at: str | None = None
    next_start_at: str | None = None


class Supervisor:
    def __init__(self, name: str, state_dir: Path, argv: Sequence[str], backoff: Backoff) -> None:
        self.name = name
        self.argv = list(argv)
        self.backoff = backoff
        self.path = state_path(state_dir, name)
        self.state = State(name=name, supervisor_pid=os.getpid())
        # Loaded before any fork, so that the child only calls prctl between fork and exec.
        self._libc = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None

    def run(self) -> int:
        signal.pthread_sigmask(signal.SIG_BLOCK, WAITED_SIGNALS)
        self._write()
        while True:
            started = time.monotonic()
            proc = self._spawn()
            if proc is None:
                status, stopped = 127 << 8, self._stop_pending()  # like a shell's "not found"
            else:
                status, stopped = self._wait(proc)
            self._kill_leftovers()
            if stopped:
                return self._stopped(describe_exit(status))
            uptime = time.monotonic() - started
            delay = self.backoff.next_delay(uptime)
            # Logged first: the state file never shows a restart the log does not.
            self._log(
                "WARNING",
                "process exited; restarting",
                pid=proc.pid if proc else None,
                exit=describe_exit(status),
                uptime_s=round(uptime, 3),
                restart=self.state.restarts + 1,
                delay_s=delay,
            )
            self._update(
                state="backoff",
                pid=None,
                restarts=self.state.restarts + 1,
                last_exit=describe_exit(status),
                last_exit_at=iso(),
                next_start_at=iso(time.time() + delay),
            )
            if self._sleep(delay):
                return self._stopped(None)

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        try:
            # stdio, environment and working directory are the supervisor's own.
            proc = subprocess.Popen(self.argv, preexec_fn=self._in_child)  # noqa: S603
        except OSError as exc:
            self._log("ERROR", "could not start process", error=str(exc), argv=self.argv)
            return None
        self._update(state="running", pid=proc.pid, started_at=iso(), next_start_at=None)
        self._log("INFO", "process started", pid=proc.pid, restarts=self.state.restarts)
        return proc

    def _in_child(self) -> None:
        """Between fork and exec: undo the supervisor's signal mask, die with it."""
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        if self._libc is not None:
            self._libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != self.state.supervisor_pid:  # it died before prctl
            os.kill(os.getpid(), signal.SIGKILL)

    def _wait(self, proc: subprocess.Popen[bytes]) -> tuple[int, bool]:
        """Waits for the child to exit; returns its wait status and whether it was stopped."""
        stopping = False
        while True:
            info = signal.sigtimedwait(WAITED_SIGNALS, 1.0)
            if info is not None and info.si_signo in STOP_SIGNALS:
                if not stopping:
                    stopping = True
                    self._update(state="stopping")
                    name = signal.Signals(info.si_signo).name
                    self._log("INFO", "stopping", pid=proc.pid, signal=name)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, info.si_signo)
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                # A signal to the whole group is pending here before the child can exit.
                return status, stopping or self._stop_pending()

    def _kill_leftovers(self) -> None:
        """A dead child's own children (API_WORKERS > 1) would keep serving its port: kill
        them, as a container's death takes all its processes. Only in a group we lead."""
        me = os.getpid()
        if os.getpgrp() != me:
            return
        for pid in group_members(me):
            if pid != me:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def _stop_pending(self) -> bool:
        if not STOP_SIGNALS & signal.sigpending():
            return False
        signal.sigtimedwait(STOP_SIGNALS, 0)
        return True

    def _sleep(self, delay: float) -> bool:
        """Sleeps out the back-off; True if a stop signal came meanwhile."""
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            if signal.sigtimedwait(STOP_SIGNALS, left) is not None:
                return True
        return False

    def _stopped(self, last_exit: str | None) -> int:
        self._update(state="stopped", pid=None, next_start_at=None)
        self._log("INFO", "stopped", exit=last_exit, restarts=self.state.restarts)
        return 0

    def _update(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self.state, key, value)
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        # The run folder may be gone (a test's temp dir): keep supervising regardless.
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(asdict(self.state), indent=2) + "\n")
            os.replace(tmp, self.path)

    def _log(self, level: str, msg: str, **fields: Any) -> None:
        entry = {
            "ts": iso(),
            "level": level,
            "service": self.name,
            "logger": "ragline.supervisor",
            "msg": msg,
            **fields,
        }
        # One write per line: the child appends to the same log file.
        with contextlib.suppress(OSError):
            os.write(sys.stdout.fileno(), (json.dumps(entry) + "\n").encode())


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "--" not in args:
        raise SystemExit("usage: python -m ragline_stack.supervisor [options] -- ARGV...")
    split = args.index("--")
    child = args[split + 1 :]
    parser = argparse.ArgumentParser(prog="ragline_stack.supervisor")
    parser.add_argument("--name", required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--backoff-initial", type=float, default=Backoff.initial)
    parser.add_argument("--backoff-max", type=float, default=Backoff.maximum)
    parser.add_argument("--backoff-reset", type=float, default=Backoff.reset_after)
    opts = parser.parse_args(args[:split])
    if not child:
        parser.error("nothing to run after --")
    backoff = Backoff(opts.backoff_initial, opts.backoff_max, opts.backoff_reset)
    return Supervisor(opts.name, opts.state_dir, child, backoff).run()


if __name__ == "__main__":
    raise SystemExit(main())
