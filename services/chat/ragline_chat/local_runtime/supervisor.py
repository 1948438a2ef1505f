"""Starts the local model worker, proves it with a self-test, watches it and restarts it.

Threads, not the event loop: a worker outlives any one event loop (the bench drives the
provider from several `asyncio.run` calls), and its pipes are plain blocking files.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ragline_chat.local_runtime import protocol

log = logging.getLogger("ragline.chat.local")

# Loading imports llama.cpp and maps the weights: seconds, longer on a busy machine.
LOAD_TIMEOUT = 180.0
# The self-test: a few tokens of a fixed prompt, through the same path answers take.
SELF_TEST_PROMPT = "<|im_start|>user\nSay hello.<|im_end|>\n<|im_start|>assistant\n"
SELF_TEST_TOKENS = 4
SELF_TEST_TIMEOUT = 120.0
# Restart delays after a crash double from BASE up to MAX; a worker that served for
# STABLE_AFTER seconds starts the count again.
RESTART_BACKOFF_BASE = 0.5
RESTART_BACKOFF_MAX = 30.0
STABLE_AFTER = 60.0
# A failed start (load or self-test) is retried too, but slowly: it rarely fixes itself.
START_RETRY_BASE = 5.0
START_RETRY_MAX = 300.0
# How long a stopping worker may take to exit on its own before it is killed.
STOP_GRACE = 5.0

Listener = Callable[[protocol.Message], None]


@dataclass(frozen=True)
class Availability:
    available: bool
    # Why it is not available ("" when it is).
    reason: str = ""
    # Loading or restarting: over by itself soon, so a request may wait for it.
    transient: bool = False


READY = Availability(True)
LOADING = Availability(False, "loading", transient=True)
NOT_STARTED = Availability(False, "not started")


def backoff(attempt: int, base: float, cap: float) -> float:
    """base, 2·base, 4·base, … up to cap."""
    return float(min(cap, base * 2 ** min(attempt, 30)))


class StartFailed(Exception):
    """The worker did not load or failed its self-test; the message says why."""


class WorkerProcess:
    """One running worker: its pipes, and a thread that hands every message the worker
    writes to the current listener (and, when its output ends, an `exited` message)."""

    def __init__(
        self,
        command: Sequence[str],
        listener: Listener | None = None,
        on_exit: Callable[[WorkerProcess], None] | None = None,
    ) -> None:
        self._listener = listener
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self.returncode: int | None = None
        self.exited = threading.Event()
        # Our own interpreter running our own module; stderr is shared with the service so
        # the worker's log lines land in the service's log.
        self._proc = subprocess.Popen(  # noqa: S603
            list(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.pid = self._proc.pid
        self._reader = threading.Thread(
            target=self._read, name=f"local-worker-{self.pid}", daemon=True
        )
        self._reader.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                message = protocol.decode(line)
            except protocol.ProtocolError as exc:
                log.warning("local model worker wrote a bad line", extra={"error": str(exc)})
                continue
            self._deliver(message)
        self._proc.stdout.close()
        returncode = self._proc.wait()
        # Under the lock: a listener that registers now either is told here or sees
        # `exited` set in listen().
        with self._lock:
            self.returncode = returncode
            self.exited.set()
            listener = self._listener
        # Before the listener hears it: whoever learns of the crash from an answer must find
        # the model already marked as restarting, not hand its next request to a dead worker.
        if self._on_exit is not None:
            self._on_exit(self)
        if listener is not None:
            listener(protocol.exited(returncode))

    def _deliver(self, message: protocol.Message) -> None:
        with self._lock:
            listener = self._listener
        if listener is not None:
            listener(message)

    def listen(self, listener: Listener | None) -> None:
        """Sends the worker's messages to `listener` from now on; one that arrives after
        the worker died still hears about it."""
        with self._lock:
            self._listener = listener
            dead = self.exited.is_set()
        if dead and listener is not None and self.returncode is not None:
            listener(protocol.exited(self.returncode))

    def send(self, message: protocol.Message) -> bool:
        """False when the worker is gone (its `exited` message follows)."""
        assert self._proc.stdin is not None
        with self._send_lock:
            try:
                self._proc.stdin.write(protocol.encode(message))
                self._proc.stdin.flush()
            except (OSError, ValueError):
                return False
        return True

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Closes its stdin (the worker exits after the current token), kills it if it
        takes longer than `grace`, and waits for its output to end."""
        assert self._proc.stdin is not None
        with self._send_lock, contextlib.suppress(OSError):
            self._proc.stdin.close()
        try:
            self._proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self._reader.join(grace)


class WorkerSupervisor:
    """Keeps one worker running: start → self-test → ready; on its death, restart after a
    back-off. `availability` says where it stands, with the reason when not ready."""

    def __init__(
        self,
        command: Sequence[str],
        preflight: Callable[[], str | None] = lambda: None,
        on_change: Callable[[Availability], None] | None = None,
    ) -> None:
        self._command = list(command)
        self._preflight = preflight
        # Hears every change of availability (called from the supervising thread).
        self.on_change = on_change
        self._state = threading.Condition()
        self._availability = NOT_STARTED
        self._worker: WorkerProcess | None = None
        self._starting: WorkerProcess | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def availability(self) -> Availability:
        with self._state:
            return self._availability

    @property
    def worker(self) -> WorkerProcess | None:
        """The ready worker, if any."""
        with self._state:
            return self._worker

    def start(self) -> None:
        if self._thread is not None:
            return
        self._set(LOADING)
        self._thread = threading.Thread(target=self._run, name="local-supervisor", daemon=True)
        self._thread.start()

    def disable(self, reason: str) -> None:
        """Never starts a worker; the model stays unavailable with `reason`."""
        self._set(Availability(False, reason))

    def settle(self, timeout: float | None = None) -> Availability:
        """Waits until the model is ready or failed (not loading or restarting)."""
        with self._state:
            self._state.wait_for(lambda: not self._availability.transient, timeout)
            return self._availability

    def wait_ready(self, timeout: float) -> WorkerProcess | None:
        """The ready worker, waiting up to `timeout` s while it loads or restarts."""
        with self._state:
            self._state.wait_for(lambda: not self._availability.transient, timeout)
            return self._worker if self._availability.available else None

    def stop(self) -> None:
        """Stops supervising and stops the worker (blocking)."""
        self._stopping.set()
        with self._state:
            workers = [w for w in (self._worker, self._starting) if w is not None]
        for worker in workers:
            worker.stop()
        if self._thread is not None:
            self._thread.join(STOP_GRACE)
        self._set(Availability(False, "stopped"), None)

    # -- the supervising thread ---------------------------------------------------------
    def _set(self, availability: Availability, worker: WorkerProcess | None = None) -> None:
        with self._state:
            changed = availability != self._availability
            self._availability = availability
            self._worker = worker
            self._state.notify_all()
        if changed and self.on_change is not None:
            self.on_change(availability)

    def _run(self) -> None:
        try:
            self._supervise()
        except Exception:
            log.exception("local chat model supervisor failed")
            self._set(Availability(False, "the local model's supervisor failed"))

    def _supervise(self) -> None:
        problem = self._preflight()
        if problem:
            log.warning("local chat model unavailable", extra={"reason": problem})
            self._set(Availability(False, problem))
            return
        start_failures = 0
        crashes = 0
        pending = LOADING
        while not self._stopping.is_set():
            self._set(pending)
            started = time.monotonic()
            try:
                worker = self._start_worker()
            except StartFailed as exc:
                if self._stopping.is_set():
                    return
                delay = backoff(start_failures, START_RETRY_BASE, START_RETRY_MAX)
                start_failures += 1
                log.error(
                    "local chat model failed to start; unavailable",
                    extra={"reason": str(exc), "retry_in_s": delay},
                )
                self._set(Availability(False, str(exc)))
                self._stopping.wait(delay)
                pending = LOADING
                continue
            start_failures = 0
            log.info(
                "local chat model ready",
                extra={"pid": worker.pid, "start_s": round(time.monotonic() - started, 2)},
            )
            self._set(READY, worker)
            ready_at = time.monotonic()
            worker.exited.wait()
            if self._stopping.is_set():
                return
            if time.monotonic() - ready_at >= STABLE_AFTER:
                crashes = 0
            delay = backoff(crashes, RESTART_BACKOFF_BASE, RESTART_BACKOFF_MAX)
            crashes += 1
            pending = _restarting(worker)
            log.error(
                "local chat model worker died; restarting it",
                extra={
                    "pid": worker.pid,
                    "exit": protocol.describe_exit(worker.returncode),
                    "restart_in_s": delay,
                },
            )
            self._set(pending)  # again: it may have died before it was marked ready
            self._stopping.wait(delay)

    def _exited(self, worker: WorkerProcess) -> None:
        """On the worker's reader thread, as soon as the ready worker's output ends."""
        with self._state:
            if self._worker is not worker or self._stopping.is_set():
                return  # still starting (the start-up reports it) or being stopped
        self._set(_restarting(worker))

    def _start_worker(self) -> WorkerProcess:
        inbox: queue.Queue[protocol.Message] = queue.Queue()
        try:
            worker = WorkerProcess(self._command, inbox.put, self._exited)
        except OSError as exc:
            raise StartFailed(f"could not start the model runtime: {exc.strerror}") from exc
        with self._state:
            self._starting = worker
        if self._stopping.is_set():  # stop() came while it was being spawned
            worker.stop(0)
            raise StartFailed("stopped")
        log.info("local chat model worker started", extra={"pid": worker.pid})
        try:
            self._await_load(worker, inbox)
            self._self_test(worker, inbox)
        except BaseException:
            worker.kill()
            worker.stop()
            raise
        finally:
            with self._state:
                self._starting = None
        worker.listen(None)
        return worker

    def _await_load(self, worker: WorkerProcess, inbox: queue.Queue[protocol.Message]) -> None:
        message = _next(inbox, LOAD_TIMEOUT, f"did not load within {LOAD_TIMEOUT:.0f} s")
        kind = message.get("event")
        if kind == protocol.FATAL:
            raise StartFailed(str(message.get("message", "the model could not be loaded")))
        if kind == protocol.EXITED:
            how = protocol.describe_exit(message["returncode"])
            raise StartFailed(f"the model runtime died while loading ({how})")
        if kind != protocol.LOADED:
            raise StartFailed(f"unexpected first message from the worker: {kind}")

    def _self_test(self, worker: WorkerProcess, inbox: queue.Queue[protocol.Message]) -> None:
        worker.send(protocol.generate(0, SELF_TEST_PROMPT, SELF_TEST_TOKENS, 0.0))
        deadline = time.monotonic() + SELF_TEST_TIMEOUT
        while True:
            left = deadline - time.monotonic()
            message = _next(inbox, left, f"self-test took over {SELF_TEST_TIMEOUT:.0f} s")
            kind = message.get("event")
            if kind == protocol.EXITED:
                how = protocol.describe_exit(message["returncode"])
                raise StartFailed(f"self-test crashed ({how})")
            if kind == protocol.ERROR:
                raise StartFailed(f"self-test failed: {message.get('message', '')}")
            if kind == protocol.DONE:
                if int(message.get("completion_tokens", 0)) < 1:
                    raise StartFailed("self-test failed: the model produced no tokens")
                return


def _restarting(worker: WorkerProcess) -> Availability:
    how = protocol.describe_exit(worker.returncode)
    return Availability(False, f"restarting after a crash ({how})", transient=True)


def _next(inbox: queue.Queue[protocol.Message], timeout: float, late: str) -> protocol.Message:
    try:
        return inbox.get(timeout=max(0.0, timeout))
    except queue.Empty:
        raise StartFailed(late) from None
