"""The supervisor that restarts the local stack's components (ragline_stack.supervisor),
with real processes: crash loops back off, stops are never restarted, nothing is orphaned."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from ragline_stack.stack import Stack, free_port, free_port_config
from ragline_stack.supervisor import group_members, read_state, state_path
from tests.support.processes import alive, poll

SLEEP_FOREVER = [sys.executable, "-c", "import time; time.sleep(3600)"]
CRASH = [sys.executable, "-c", "import sys; sys.exit(3)"]


class Supervised:
    """A supervisor started as `make run` starts one: own session, log file, state dir."""

    def __init__(self, tmp: Path, argv: list[str], *options: str) -> None:
        self.log = tmp / "t.log"
        self.state_file = state_path(tmp, "t")
        own = ["--name", "t", "--state-dir", str(tmp), *options]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "ragline_stack.supervisor", *own, "--", *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def state(self) -> dict:
        return read_state(self.state_file) or {}

    def child(self) -> int:
        """The current child's pid, once it runs."""
        return poll(lambda: self.state().get("pid"), 30, "running a child")

    def entries(self, msg: str) -> list[dict]:
        lines = self.log.read_text().splitlines()
        return [e for e in map(json.loads, lines) if e.get("msg") == msg]

    def exited(self) -> int | None:
        return self.proc.poll()


@pytest.fixture
def supervise(tmp_path: Path) -> Iterator[Callable[..., Supervised]]:
    started: list[Supervised] = []

    def start(argv: list[str], *options: str) -> Supervised:
        sup = Supervised(tmp_path, argv, *options)
        started.append(sup)
        return sup

    yield start
    for sup in started:
        if sup.proc.poll() is None:
            os.killpg(sup.proc.pid, signal.SIGKILL)
            sup.proc.wait()


def _ts(entry: dict) -> datetime:
    return datetime.fromisoformat(entry["ts"])


def test_a_crash_loop_backs_off_doubling_to_the_cap(supervise):
    sup = supervise(CRASH, "--backoff-initial", "0.1", "--backoff-max", "0.4")
    poll(lambda: sup.state().get("restarts", 0) >= 5, 120, "restarted 5 times")
    os.kill(sup.proc.pid, signal.SIGTERM)
    assert sup.proc.wait(30) == 0

    exits = sup.entries("process exited; restarting")[:5]
    assert [e["delay_s"] for e in exits] == [0.1, 0.2, 0.4, 0.4, 0.4]
    assert [e["restart"] for e in exits] == [1, 2, 3, 4, 5]
    assert {e["exit"] for e in exits} == {"exit code 3"}
    # Each restart really waited its delay: exit logged -> next start logged.
    starts = sup.entries("process started")
    for exit_, next_start in zip(exits, starts[1:], strict=False):
        waited = (_ts(next_start) - _ts(exit_)).total_seconds()
        assert waited >= exit_["delay_s"] - 0.002, (exit_, next_start)
    state = sup.state()
    assert state["state"] == "stopped"
    assert state["last_exit"] == "exit code 3"
    assert state["restarts"] >= 5


def test_a_child_that_stayed_up_long_enough_restarts_from_the_first_delay(supervise):
    up_then_fail = [sys.executable, "-c", "import sys, time; time.sleep(0.5); sys.exit(1)"]
    sup = supervise(up_then_fail, "--backoff-initial", "0.1", "--backoff-reset", "0.3")
    poll(lambda: sup.state().get("restarts", 0) >= 3, 120, "restarted 3 times")
    exits = sup.entries("process exited; restarting")[:3]
    assert [e["delay_s"] for e in exits] == [0.1, 0.1, 0.1]
    assert all(e["uptime_s"] >= 0.3 for e in exits)


def test_a_killed_child_is_restarted_and_the_restart_is_recorded(supervise):
    sup = supervise(SLEEP_FOREVER)
    first = sup.child()
    os.kill(first, signal.SIGKILL)

    def replacement() -> int | None:
        pid = sup.state().get("pid")
        return pid if pid != first else None

    second = poll(replacement, 30, "restarted")
    assert alive(second)
    state = sup.state()
    assert state["restarts"] == 1
    assert state["last_exit"] == "killed by SIGKILL"
    assert state["last_exit_at"]
    [entry] = sup.entries("process exited; restarting")
    assert entry["pid"] == first
    assert entry["exit"] == "killed by SIGKILL"
    assert entry["delay_s"] == 0.5


@pytest.mark.parametrize("target", ["supervisor", "process group"])
def test_a_stop_signal_stops_for_good(supervise, target):
    sup = supervise(SLEEP_FOREVER)
    child = sup.child()
    if target == "supervisor":
        os.kill(sup.proc.pid, signal.SIGTERM)
    else:  # what `kill -TERM -PGID` does: the child gets it at the same time
        os.killpg(sup.proc.pid, signal.SIGTERM)
    assert sup.proc.wait(30) == 0
    assert not alive(child)
    assert group_members(sup.proc.pid) == []
    state = sup.state()
    assert state["state"] == "stopped"
    assert state["restarts"] == 0
    assert sup.entries("process exited; restarting") == []


def test_a_stop_during_the_back_off_starts_nothing_more(supervise):
    sup = supervise(CRASH, "--backoff-initial", "30")
    poll(lambda: sup.state().get("state") == "backoff", 30, "backing off")
    os.kill(sup.proc.pid, signal.SIGTERM)
    assert sup.proc.wait(10) == 0
    assert sup.state()["state"] == "stopped"
    assert len(sup.entries("process started")) == 1


def test_a_crashed_childs_own_children_die_with_it(supervise, tmp_path):
    """Workers of a service (API_WORKERS > 1) left behind would keep its port."""
    spawn_worker = (
        "import pathlib, subprocess, sys;"
        "w = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)']);"
        f"pathlib.Path({str(tmp_path / 'worker')!r}).write_text(str(w.pid)); sys.exit(1)"
    )
    sup = supervise([sys.executable, "-c", spawn_worker], "--backoff-initial", "30")
    poll(lambda: sup.state().get("state") == "backoff", 60, "crashed")
    worker = int((tmp_path / "worker").read_text())
    poll(lambda: not alive(worker), 10, "worker gone")
    assert group_members(sup.proc.pid) == [sup.proc.pid]


def test_a_killed_supervisor_takes_its_child_along(supervise):
    sup = supervise(SLEEP_FOREVER)
    child = sup.child()
    os.kill(sup.proc.pid, signal.SIGKILL)
    sup.proc.wait(10)
    poll(lambda: not alive(child), 10, "child gone")


# -- through Stack, as `make run` uses it ------------------------------------------------


@pytest.fixture
def fake_stack(tmp_path: Path) -> Iterator[Stack]:
    """A Stack object with no components: each test spawns its own fake one."""
    fake = Stack(free_port_config(tmp_path))
    yield fake
    fake.stop("fake")


def test_stack_reports_a_crash_at_start_up_at_once(fake_stack):
    stack = fake_stack
    stack._spawn("fake", CRASH)
    with pytest.raises(RuntimeError, match=r"exited during start-up \(exit code 3\)"):
        stack.wait_port("fake", free_port(), 120)


def test_stack_stop_stops_a_supervised_component_for_good(fake_stack):
    stack = fake_stack
    stack._spawn("fake", SLEEP_FOREVER)
    leader = stack.pid("fake")
    child = poll(lambda: stack.child_pid("fake"), 30, "running")
    assert leader is not None
    assert child != leader
    assert os.getpgid(child) == leader
    assert stack.restarts("fake") == 0

    os.kill(child, signal.SIGKILL)
    poll(lambda: stack.child_pid("fake") not in (None, child), 30, "restarted")
    assert stack.restarts("fake") == 1
    assert stack.supervision("fake")["last_exit"] == "killed by SIGKILL"

    stack.stop("fake")
    assert stack.pid("fake") is None
    assert stack.child_pid("fake") is None
    assert group_members(leader) == []
    assert not stack.state_path("fake").exists()
