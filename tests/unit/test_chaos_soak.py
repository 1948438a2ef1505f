"""The soak's (fault battery scenario 10) own measuring parts: the slope that decides "RSS
grows" and the open loop that holds the load at a rate."""

from __future__ import annotations

import asyncio
import random

import pytest

from chaos.soak import paced, slope_per_min


def test_slope_is_per_minute_and_ignores_noise_around_a_flat_line():
    rng = random.Random(7)
    rising = [(t, 100 + 0.05 * t + rng.uniform(-0.5, 0.5)) for t in range(0, 600, 15)]
    assert slope_per_min(rising) == pytest.approx(3.0, abs=0.2)
    flat = [(t, 100 + rng.uniform(-2, 2)) for t in range(0, 600, 15)]
    assert abs(slope_per_min(flat)) < 0.5
    assert slope_per_min([(0, 1), (60, 2)]) == 0.0  # too few points to say


def test_open_loop_keeps_its_rate_and_skips_ticks_when_too_much_is_in_flight():
    calls: list[float] = []

    async def quick() -> None:
        calls.append(asyncio.get_running_loop().time())

    started, skipped = asyncio.run(paced([quick], rate=50, seconds=1.0, max_in_flight=10))
    assert 45 <= started <= 52 and skipped == 0

    async def stuck() -> None:
        await asyncio.sleep(0.5)

    started, skipped = asyncio.run(paced([stuck], rate=100, seconds=0.3, max_in_flight=5))
    assert started == 5 and skipped >= 20
