"""The version watermark and the gap count behind a replica's consistency checks."""

from __future__ import annotations

from ragline_core.changefeed import Change
from ragline_core.corpus import DocumentState as S
from ragline_retriever.registry import gap_chunks
from ragline_retriever.watermark import VersionWatermark


def test_a_later_version_does_not_cover_an_earlier_one_still_missing():
    mark = VersionWatermark(10)
    mark.record(12, 1)  # the writer of 11 bumped first but publishes later
    assert mark.version == 10 and mark.highest_seen == 12 and mark.gap
    mark.record(11, 1)
    assert mark.version == 12 and not mark.gap


def test_a_version_counts_only_once_all_its_entries_are_applied():
    mark = VersionWatermark(0)
    mark.record(1, 3)
    mark.record(1, 3)
    assert mark.version == 0 and mark.gap
    mark.record(1, 3)
    assert mark.version == 1 and not mark.gap


def test_old_and_repeated_entries_change_nothing():
    mark = VersionWatermark(5)
    mark.record(4, 1)
    mark.record(5, 2)
    assert mark.version == 5 and not mark.gap
    mark.record(6, 0)  # an entry from a writer that did not say its batch size
    assert mark.version == 6


def test_change_entries_carry_their_batch_through_redis_fields():
    change = Change("upsert", "t", "c", "d", 7, 42, chunks=3, batch=5)
    raw = {k.encode(): v.encode() for k, v in change.fields().items()}
    assert Change.from_fields(raw) == change
    del raw[b"batch"]  # written by an older ingest
    assert Change.from_fields(raw).batch == 0


def test_gap_counts_chunk_ids_one_side_lacks():
    db = {"a": S(1, 3), "b": S(2, 2), "c": S(5, 1)}
    assert gap_chunks(dict(db), db) == 0
    assert gap_chunks({"a": S(1, 3), "b": S(2, 2)}, db) == 1  # c missing
    assert gap_chunks({**db, "z": S(9, 4)}, db) == 4  # z deleted in the database
    assert gap_chunks({**db, "a": S(0, 2)}, db) == 5  # a stale: 2 old ids + 3 new ones
    assert gap_chunks({**db, "a": S(1, 2)}, db) == 1  # same generation, one chunk short
