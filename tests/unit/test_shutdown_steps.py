"""A service's shutdown ends even when one step hangs or fails: the step is given up and
named in the log (the fault battery, chaos/, once saw a retriever never exit after SIGTERM)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ragline_core import server


async def test_a_hanging_step_is_given_up_and_named(monkeypatch, caplog):
    monkeypatch.setattr(server, "STEP_TIMEOUT_S", 0.05)
    never = asyncio.get_running_loop().create_future()
    with caplog.at_level(logging.WARNING, logger=server.log.name):
        await asyncio.wait_for(server._bounded("redis", never), 5)
    [record] = [r for r in caplog.records if r.getMessage() == "shutdown step timed out"]
    assert record.step == "redis"  # type: ignore[attr-defined]
    assert never.cancelled()


async def test_a_failing_step_does_not_stop_the_next(monkeypatch, caplog):
    async def boom() -> None:
        raise ConnectionError("gone")

    with caplog.at_level(logging.WARNING, logger=server.log.name):
        await server._bounded("mongodb", boom())
    assert [r.step for r in caplog.records] == ["mongodb"]  # type: ignore[attr-defined]


async def test_a_step_within_its_grace_is_awaited(monkeypatch):
    monkeypatch.setattr(server, "STEP_TIMEOUT_S", 0.01)
    done = []

    async def slow() -> None:
        await asyncio.sleep(0.1)
        done.append(True)

    await server._bounded("grpc server", slow(), grace=1.0)
    assert done == [True]


@pytest.fixture(autouse=True)
def _propagate(monkeypatch):
    # The service logger may be configured not to propagate; caplog needs it to.
    monkeypatch.setattr(server.log, "propagate", True)
