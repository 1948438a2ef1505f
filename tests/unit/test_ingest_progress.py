"""A job's owner counts progress in memory; generations never repeat."""

from __future__ import annotations

import itertools

from ragline_ingest.jobs import MAX_STORED_ERRORS, Item, Outcome, Tally, zero_progress
from ragline_ingest.store import new_generation


def item(index: int) -> Item:
    return Item("job", index, f"d{index}", "", "text", {}, "hash")


def test_tally_counts_each_outcome_and_keeps_the_first_errors_in_order():
    tally = Tally(zero_progress())
    tally.add([(item(3), Outcome("failed", error="boom")), (item(1), Outcome("done", chunks=4))])
    saved = tally.add(
        [(item(2), Outcome("unchanged")), (item(0), Outcome("failed", error="bad pdf"))]
    )
    assert saved["documents_done"] == 2  # done + unchanged
    assert saved["documents_unchanged"] == 1
    assert saved["documents_failed"] == 2
    assert saved["chunks_done"] == 4
    assert [e["index"] for e in saved["errors"]] == [0, 3]
    assert saved["errors"][0] == {"index": 0, "document_id": "d0", "message": "bad pdf"}


def test_tally_stores_at_most_the_error_limit():
    tally = Tally(zero_progress())
    saved = tally.add(
        [(item(i), Outcome("failed", error="x")) for i in range(MAX_STORED_ERRORS + 20)]
    )
    assert saved["documents_failed"] == MAX_STORED_ERRORS + 20
    assert len(saved["errors"]) == MAX_STORED_ERRORS


def test_generations_strictly_increase_even_within_a_microsecond():
    generations = [new_generation() for _ in range(10_000)]
    assert all(b > a for a, b in itertools.pairwise(generations))
