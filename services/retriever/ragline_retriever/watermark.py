"""Which versions of a collection a replica has applied in full.

Every announcement bumps the collection's version by exactly one and publishes `batch`
entries carrying it (ragline_core.changefeed). Entries of different versions can arrive
out of order, so "the highest version seen" says nothing about the ones before it: the
watermark is the highest version V such that every version up to V was applied in full.
A version seen above the watermark while one below it is missing is a gap; a gap that is
still there once the replica has read the whole feed (IndexRegistry) means entries were lost.
"""

from __future__ import annotations


class VersionWatermark:
    def __init__(self, version: int) -> None:
        # Everything up to here is in the index (a load read the database at this version).
        self.version = version
        self._partial: dict[int, int] = {}  # version -> entries applied so far
        self._complete: set[int] = set()  # versions above the watermark applied in full

    def record(self, version: int, batch: int) -> None:
        """One entry of `version` (one of `batch`) was applied."""
        if version <= self.version:
            return
        seen = self._partial.get(version, 0) + 1
        # An entry of an older writer (batch 0) stands for its version alone.
        if seen >= max(batch, 1):
            self._partial.pop(version, None)
            self._complete.add(version)
        else:
            self._partial[version] = seen
        while self.version + 1 in self._complete:
            self.version += 1
            self._complete.remove(self.version)

    @property
    def highest_seen(self) -> int:
        return max([self.version, *self._partial, *self._complete])

    @property
    def gap(self) -> bool:
        """Entries were applied above a version not (fully) applied yet."""
        return bool(self._partial or self._complete)
