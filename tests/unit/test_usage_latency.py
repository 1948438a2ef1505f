"""The usage store's latency histogram and the p95 estimated from it."""

from __future__ import annotations

import pytest

from ragline_auth.usage import HISTOGRAM, LATENCY_BUCKETS, latency_bucket, percentile_ms


@pytest.mark.parametrize(
    ("ms", "bucket"),
    [(0, 0), (1, 0), (2, 1), (3, 2), (4, 2), (5, 3), (1000, 10), (1024, 10), (1025, 11)],
)
def test_bucket_is_the_smallest_power_of_two_at_least_the_duration(ms, bucket):
    assert latency_bucket(ms) == bucket


def test_slower_than_the_last_bound_lands_in_the_last_bucket():
    assert latency_bucket(10**9) == LATENCY_BUCKETS - 1


def _histogram(durations: list[float]) -> dict[str, float]:
    values = dict.fromkeys(HISTOGRAM, 0.0)
    for ms in durations:
        values[HISTOGRAM[latency_bucket(ms)]] += 1
    return values


def test_p95_is_within_a_factor_of_two_of_the_true_one():
    # 95 fast requests and 5 slow ones: p95 sits at the fast ones' edge, not the slow tail.
    durations = [10.0] * 90 + [40.0] * 5 + [3000.0] * 5
    p95 = percentile_ms(_histogram(durations), 0.95)
    assert 20 <= p95 <= 80  # true p95: 40 ms
    p99 = percentile_ms(_histogram(durations), 0.99)
    assert 1500 <= p99 <= 6000  # true p99: 3000 ms


def test_nothing_counted_is_zero_and_old_buckets_without_a_histogram_too():
    assert percentile_ms(dict.fromkeys(HISTOGRAM, 0.0), 0.95) == 0.0
    assert percentile_ms({"requests": 12.0, "duration_ms": 400.0}, 0.95) == 0.0
