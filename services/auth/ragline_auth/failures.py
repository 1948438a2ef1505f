"""Failed API-key attempts per client address, per auth replica.

An address that presents more than `limit` unknown keys within `window_s` seconds is
answered 429 until its window ends, without a key lookup: each unknown key cost a read of
the key store, and random keys were a cheap way to load it. Revoked and expired keys do
not count (they are real keys, cached after one read). Memory is bounded: the least
recently failing addresses are forgotten first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

MAX_ADDRESSES = 10_000


class FailedAttempts:
    def __init__(
        self,
        limit: int,
        window_s: float,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_addresses = max_addresses
        self.clock = clock
        # address -> (window start, failures in the window)
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def blocked_for(self, address: str) -> float | None:
        """Seconds until `address` may try again, or None when it may now."""
        if self.limit <= 0 or not address:
            return None
        window = self._windows.get(address)
        if window is None:
            return None
        left = window[0] + self.window_s - self.clock()
        return left if window[1] >= self.limit and left > 0 else None

    def record(self, address: str) -> None:
        """Counts one failed attempt from `address`."""
        if self.limit <= 0 or not address:
            return
        now = self.clock()
        start, count = self._windows.get(address, (now, 0))
        if now - start >= self.window_s:
            start, count = now, 0
        self._windows[address] = (start, count + 1)
        self._windows.move_to_end(address)
        while len(self._windows) > self.max_addresses:
            self._windows.popitem(last=False)
