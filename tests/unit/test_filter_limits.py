"""Search filters stay cheap: capped lists and size, set lookups, short error messages."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ragline_core.corpus import StoredChunk
from ragline_core.errors import MAX_MESSAGE_CHARS, InvalidArgumentError
from ragline_retriever.filters import (
    MAX_FILTER_BYTES,
    MAX_LIST_VALUES,
    check_encoded_size,
    compile_filter,
)
from ragline_retriever.index import CollectionIndex, IndexParams


def _rejected(spec: dict[str, object]) -> InvalidArgumentError:
    with pytest.raises(InvalidArgumentError) as caught:
        compile_filter(spec)
    return caught.value


def test_a_list_over_the_cap_is_400_naming_the_limit():
    error = _rejected({"tag": {"$in": [f"t{i}" for i in range(MAX_LIST_VALUES + 1)]}})
    assert error.reason == "FILTER_TOO_LARGE"
    assert f"tag.$in has {MAX_LIST_VALUES + 1} values; the limit is {MAX_LIST_VALUES}" in (
        error.message
    )
    assert compile_filter({"tag": {"$nin": [f"t{i}" for i in range(MAX_LIST_VALUES)]}})


def test_a_filter_over_the_size_cap_is_400_naming_the_limit():
    # 900 KB of $in values: the request that held the retriever for 5.3 s.
    values = [f"value-{i:08d}" for i in range(60_000)]
    error = _rejected({"$or": [{"tag": {"$in": values[i::100]}} for i in range(60)]})
    assert error.reason == "FILTER_TOO_LARGE"
    assert f"the limit is {MAX_FILTER_BYTES}" in error.message
    # Before conversion from protobuf, a cheap guard on the encoded size.
    check_encoded_size(8 * MAX_FILTER_BYTES)
    with pytest.raises(InvalidArgumentError, match="bytes encoded"):
        check_encoded_size(8 * MAX_FILTER_BYTES + 1)


@pytest.mark.parametrize(
    ("spec", "metadata", "expected"),
    [
        ({"n": {"$in": [1, "a"]}}, {"n": 1.0}, True),
        ({"n": {"$in": [1]}}, {"n": True}, False),  # a bool is not a number
        ({"n": {"$in": [True]}}, {"n": 1}, False),
        ({"n": {"$in": [None]}}, {"n": None}, True),
        ({"tags": {"$in": ["x", "b"]}}, {"tags": ["a", "b"]}, True),
        ({"tags": {"$in": [["a", "b"]]}}, {"tags": ["a", "b"]}, True),
        ({"tags": {"$in": ["z"]}}, {"tags": ["a", "b"]}, False),
        ({"obj": {"$in": ["a"]}}, {"obj": {"a": 1}}, False),
        ({"gone": {"$nin": ["a"]}}, {}, True),
        ({"tags": {"$nin": ["b"]}}, {"tags": ["a", "b"]}, False),
    ],
)
def test_in_lists_keep_their_meaning(spec, metadata, expected):
    predicate = compile_filter(spec)
    assert predicate is not None and predicate(metadata) is expected


def _index(chunks: int) -> CollectionIndex:
    index = CollectionIndex(4, IndexParams())
    vector = np.ones(4, dtype=np.float32) / 2
    for i in range(chunks):
        chunk = StoredChunk(f"c{i}", f"d{i}", 1, 0, "t", "text", {"tag": f"t{i % 50}"}, vector)
        index.replace_document(f"d{i}", [chunk])
    return index


def _mask_seconds(index: CollectionIndex, values: list[str]) -> float:
    predicate = compile_filter({"tag": {"$in": values}})
    start = time.perf_counter()
    allowed = index.mask(predicate)
    elapsed = time.perf_counter() - start
    assert allowed.sum() == len(index.chunks) // 50  # only t7 matches
    return elapsed


def test_a_full_list_costs_about_what_one_value_costs():
    """The mask runs on the event loop: a $in list is a set lookup per chunk, never a
    comparison per value (1000 values took ~1000x one value before)."""
    index = _index(5000)
    values = [f"x{i}" for i in range(MAX_LIST_VALUES - 1)] + ["t7"]
    one = min(_mask_seconds(index, ["t7"]) for _ in range(3))
    full = min(_mask_seconds(index, values) for _ in range(3))
    assert full < 5 * one + 0.05, (one, full)


def test_error_messages_do_not_echo_unbounded_input():
    error = _rejected({"$" + "x" * 60_000: 1})
    assert len(error.message) < 300 and "60001 characters" in error.message
    error = _rejected({"field": {"$" + "y" * 50_000: 1}})
    assert len(error.message) < 300
    assert len(InvalidArgumentError("z" * 10 * MAX_MESSAGE_CHARS).message) == MAX_MESSAGE_CHARS


def test_the_filter_runs_once_per_document_not_per_chunk():
    index = CollectionIndex(4, IndexParams())
    vector = np.ones(4, dtype=np.float32) / 2
    for d in range(30):
        metadata = {"tag": f"t{d % 3}"}
        chunks = [
            StoredChunk(f"c{d}-{k}", f"d{d}", 1, k, "t", "x", metadata, vector) for k in range(10)
        ]
        index.replace_document(f"d{d}", chunks)
    index.remove_document("d0")
    calls = []
    predicate = compile_filter({"tag": "t1"})
    assert predicate is not None

    def counted(metadata: dict[str, object]) -> bool:
        calls.append(1)
        return predicate(metadata)

    allowed = index.mask(counted)
    assert len(calls) == 29  # documents, not the 290 live chunks
    assert allowed.sum() == 10 * 10  # the ten documents tagged t1, every chunk of each
    assert allowed[index.slots_of["d1"]].all() and not allowed[index.slots_of["d2"]].any()
