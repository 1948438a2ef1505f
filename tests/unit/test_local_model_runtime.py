"""The local model's isolation without llama.cpp: the CPU check, the pipe protocol, and the
supervised worker (the real worker code around a scripted model,
tests/support/fake_local_worker.py) crashing, restarting, cancelling and failing its
self-test, also as the chat service sees it."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from ragline_chat.domain import ChatInput, Delta, Done, ErrorEvent, Passage, PromptMessage
from ragline_chat.local_runtime import protocol
from ragline_chat.local_runtime.cpu import REQUIRED_CPU_FLAGS, cpu_flags, cpu_problem
from ragline_chat.models import ModelRegistry
from ragline_chat.providers.base import Chunk, GenerationRequest
from ragline_chat.providers.extractive import ExtractiveProvider
from ragline_chat.providers.local import LocalProvider
from ragline_chat.service import ChatService, Limits
from ragline_core.errors import UnavailableError

ALL_FLAGS = "fpu sse sse2 ssse3 sse4_1 sse4_2 avx avx2 fma f16c bmi1 bmi2 popcnt"
NO_AVX2 = ALL_FLAGS.replace(" avx2", "").replace(" fma", "")
NO_AVX2_REASON = (
    "this CPU lacks avx2, fma: the local model's runtime needs sse4_2 avx avx2 fma f16c bmi2"
)
ROOT = Path(__file__).resolve().parents[2]


def cpuinfo(tmp_path: Path, flags: str, processors: int = 2) -> str:
    path = tmp_path / "cpuinfo"
    path.write_text("".join(f"processor\t: {i}\nflags\t\t: {flags}\n\n" for i in range(processors)))
    return str(path)


# -- CPU check ---------------------------------------------------------------------------------
def test_the_required_flags_match_the_build_script():
    script = (ROOT / "scripts/install_llama_cpp.sh").read_text()
    [line] = [x for x in script.splitlines() if x.startswith("REQUIRED_CPU_FEATURES=")]
    assert line.split("=", 1)[1].strip('"').split() == list(REQUIRED_CPU_FLAGS)


def test_a_cpu_missing_features_is_named(tmp_path):
    assert cpu_problem(cpuinfo(tmp_path, ALL_FLAGS)) is None
    assert cpu_problem(cpuinfo(tmp_path, NO_AVX2)) == NO_AVX2_REASON
    # Every processor must have a flag (heterogeneous cores).
    mixed = tmp_path / "mixed"
    mixed.write_text(f"flags\t: {ALL_FLAGS}\n\nflags\t: {NO_AVX2}\n")
    assert cpu_problem(str(mixed)) == NO_AVX2_REASON
    # No flags line at all (not x86): everything is missing.
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd\n")
    assert cpu_problem(str(arm)).startswith("this CPU lacks sse4_2, avx, avx2, fma, f16c, bmi2")
    # Nothing to read (not Linux): the self-test alone decides.
    assert cpu_problem(str(tmp_path / "absent")) is None
    assert cpu_flags("flags : a b\nflags : b c\n") == {"b"}


# -- protocol ----------------------------------------------------------------------------------
def test_protocol_lines_round_trip_and_bad_lines_are_rejected():
    message = protocol.generate(3, 'say "hi"\n<|im_end|>', 16, 0.2)
    line = protocol.encode(message)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert protocol.decode(line) == message
    for bad in (b"not json\n", b"[1, 2]\n", b'{"id": 1}\n'):
        with pytest.raises(protocol.ProtocolError):
            protocol.decode(bad)
    assert protocol.describe_exit(-signal.SIGSEGV) == "signal SIGSEGV"
    assert protocol.describe_exit(1) == "exit code 1"


# -- the supervised worker ---------------------------------------------------------------------
def request(text: str, max_tokens: int = 5) -> GenerationRequest:
    return GenerationRequest(
        model=ModelRegistry().resolve("local"),
        messages=[PromptMessage("user", text)],
        max_tokens=max_tokens,
        temperature=0.0,
        question=text,
        passages=[],
    )


async def collect(stream: AsyncIterator[Chunk]) -> list[Chunk]:
    return [chunk async for chunk in stream]


async def eventually(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout}s")
        await asyncio.sleep(0.05)
    return value


@pytest.fixture
async def make_provider(tmp_path) -> AsyncIterator[Callable[..., LocalProvider]]:
    made: list[LocalProvider] = []

    def make(*worker_args: str, flags: str = ALL_FLAGS) -> LocalProvider:
        provider = LocalProvider(
            None,
            1,
            2048,
            cpuinfo_path=cpuinfo(tmp_path, flags),
            worker_command=[sys.executable, "-m", "tests.support.fake_local_worker", *worker_args],
        )
        made.append(provider)
        return provider

    yield make
    for provider in made:
        await provider.close()


async def test_answers_stream_from_the_worker(make_provider):
    local = make_provider()
    local.start()
    assert local.unavailable_reason == "loading" and not local.configured
    # A request during loading waits for it (up to its timeout) instead of failing.
    chunks = await collect(local.stream(request("hello"), 60))
    assert local.configured and local.error is None
    assert "".join(c.text for c in chunks) == "w0 w1 w2 w3 w4 "
    assert chunks[-1].finish_reason == "length" and chunks[-1].completion_tokens == 5


async def test_a_crash_mid_answer_fails_it_and_the_worker_is_restarted(make_provider):
    local = make_provider()
    await asyncio.to_thread(local.load)
    first = local.supervisor.worker
    assert first is not None
    got: list[str] = []

    async def answer() -> None:
        async for chunk in local.stream(request("CRASH please"), 10):
            got.append(chunk.text)

    with pytest.raises(UnavailableError) as caught:
        await answer()
    assert got == ["w0 ", "w1 "]
    assert caught.value.reason == "MODEL_CRASHED"
    assert "crashed (signal SIGSEGV)" in caught.value.message
    assert not local.configured  # marked restarting before the error reached us
    second = await eventually(lambda: local.supervisor.worker, "restarted")
    assert second.pid != first.pid and local.configured
    chunks = await collect(local.stream(request("again"), 10))
    assert "".join(c.text for c in chunks) == "w0 w1 w2 w3 w4 "


async def test_a_request_during_a_restart_waits_for_it(make_provider):
    local = make_provider()
    await asyncio.to_thread(local.load)
    worker = local.supervisor.worker
    assert worker is not None
    os.kill(worker.pid, signal.SIGKILL)  # dies while idle: no answer is affected
    await eventually(lambda: not local.configured, "noticed")
    assert local.unavailable_reason == "restarting after a crash (signal SIGKILL)"
    chunks = await collect(local.stream(request("after"), 60))
    assert chunks[-1].completion_tokens == 5


async def test_a_cancelled_answer_stops_within_a_token(make_provider):
    local = make_provider()
    await asyncio.to_thread(local.load)
    stream = local.stream(request("a long one", max_tokens=400), 10)  # 20 s if not stopped
    assert (await anext(stream)).text == "w0 "
    started = time.monotonic()
    await stream.aclose()  # the client went away
    # The worker acknowledged the cancel (aclose waits for it) after at most a token or two.
    assert time.monotonic() - started < 2
    worker = local.supervisor.worker
    chunks = await collect(local.stream(request("next"), 10))
    assert chunks[-1].completion_tokens == 5 and local.supervisor.worker is worker


@pytest.mark.parametrize(
    ("worker_args", "reason"),
    [
        (("--self-test", "crash"), "self-test crashed (signal SIGSEGV)"),
        (("--self-test", "silent"), "self-test failed: the model produced no tokens"),
        (("--fatal",), "the model could not be loaded (RuntimeError)"),
    ],
)
async def test_a_failed_start_leaves_the_model_unavailable_with_the_reason(
    make_provider, worker_args, reason
):
    local = make_provider(*worker_args)
    await asyncio.to_thread(local.load)
    assert not local.configured and local.unavailable_reason == reason
    with pytest.raises(UnavailableError) as caught:
        await collect(local.stream(request("hi"), 5))
    assert caught.value.reason == "PROVIDER_NOT_CONFIGURED" and reason in caught.value.message


async def test_a_cpu_without_avx2_never_starts_the_worker(make_provider):
    local = make_provider(flags=NO_AVX2)
    await asyncio.to_thread(local.load)
    assert not local.configured and local.unavailable_reason == NO_AVX2_REASON
    assert local.supervisor.worker is None
    with pytest.raises(UnavailableError) as caught:
        await collect(local.stream(request("hi"), 5))
    assert NO_AVX2_REASON in caught.value.message


# -- as the chat service sees it ---------------------------------------------------------------
class OnePassage:
    async def search(self, tenant, query, collection, limit, filters) -> list[Passage]:
        text = "Kestrel is a programming language created by Ines Varga in 2017."
        return [Passage(1, "c1", "d1", "Kestrel", text, 0.9, 0)]


def chat_service(local: LocalProvider, fallbacks: list[str]) -> ChatService:
    return ChatService(
        ModelRegistry(),
        {"extractive": ExtractiveProvider(), "local": local},
        None,  # type: ignore[arg-type]  # nothing is stored (persist=False)
        OnePassage(),
        Limits(keepalive_seconds=30),
        "extractive",
        fallbacks,
        "default",
    )


def ask(message: str) -> ChatInput:
    return ChatInput(message=message, model="local", max_tokens=8, persist=False)


async def test_the_service_reports_a_crash_unary_and_in_band(make_provider):
    local = make_provider()
    await asyncio.to_thread(local.load)
    service = chat_service(local, ["extractive"])
    # After the first token: no fallback any more; unary fails with 503 MODEL_CRASHED.
    with pytest.raises(UnavailableError) as caught:
        await service.chat(ask("Who made Kestrel? CRASH"), "t1")
    assert caught.value.reason == "MODEL_CRASHED"
    await eventually(lambda: local.configured, "restarted")
    # A stream ends with an in-band error event.
    events = [e async for e in service.stream(ask("Who made Kestrel? CRASH"), "t1")]
    assert any(isinstance(e, Delta) for e in events)
    assert isinstance(events[-1], ErrorEvent) and not any(isinstance(e, Done) for e in events)
    assert events[-1].reason == "MODEL_CRASHED" and events[-1].code == 14  # UNAVAILABLE
    await eventually(lambda: local.configured, "restarted")
    # Before the first token the fallback order still applies.
    answer = await service.chat(ask("Who made Kestrel? CRASHNOW"), "t1")
    assert answer.model == "extractive" and "Kestrel" in answer.answer
    await eventually(lambda: local.configured, "restarted")
    assert (await service.chat(ask("Who made Kestrel?"), "t1")).model == "local"


async def test_without_fallback_a_crash_before_the_first_token_is_503(make_provider):
    local = make_provider()
    await asyncio.to_thread(local.load)
    with pytest.raises(UnavailableError) as caught:
        await chat_service(local, []).chat(ask("Who made Kestrel? CRASHNOW"), "t1")
    assert caught.value.reason == "MODEL_CRASHED"
