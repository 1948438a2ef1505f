"""Pure parts of ingest and retrieval: chunking, filters, fusion, fuzzy terms, Atlas."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from ragline_core.errors import InvalidArgumentError
from ragline_ingest.chunking import ChunkingConfig, chunk_text, split_sections
from ragline_retriever import ranking
from ragline_retriever.atlas import atlas_filter, pipeline
from ragline_retriever.filters import compile_filter


def words(text: str) -> int:
    return len(text.split())


def test_sections_follow_markdown_headings_but_not_code_fences():
    text = "intro\n# A\nalpha\n## B\nbeta\n```\n# not a heading\n```\n# C\ngamma"
    sections = split_sections(text)
    assert [h for h, _ in sections] == [(), ("A",), ("A", "B"), ("C",)]
    assert "# not a heading" in sections[2][1]


def test_chunks_respect_size_keep_paragraphs_and_overlap():
    # Short paragraphs are packed whole; long ones split into sentences.
    short = ["Short paragraph one.", "Short paragraph two."]
    long = [" ".join(f"Sentence {i}.{j} has five words." for j in range(20)) for i in range(3)]
    chunks = chunk_text("\n\n".join(short + long), ChunkingConfig(size=40, overlap=10), words)
    assert all(c.token_count <= 40 for c in chunks)
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert chunks[0].text.startswith("Short paragraph one.\n\nShort paragraph two.")
    joined = " ".join(c.text for c in chunks)
    for paragraph in long:  # every sentence survives
        for j in range(20):
            assert f"{paragraph.split()[1].split('.')[0]}.{j} has" in joined
    # consecutive chunks share trailing sentences (the overlap)
    assert any(
        set(a.text.split("\n\n")) & set(b.text.split("\n\n")) for a, b in itertools.pairwise(chunks)
    )


def test_a_long_sentence_without_punctuation_is_windowed():
    chunks = chunk_text(" ".join(["word"] * 500), ChunkingConfig(size=100, overlap=0), words)
    assert len(chunks) == 5 and all(c.token_count <= 100 for c in chunks)


def test_chunk_config_rejects_bad_sizes():
    with pytest.raises(ValueError, match="overlap"):
        ChunkingConfig(size=100, overlap=60)


META = {"category": "tutorial", "year": 2023, "tags": ["a", "b"], "nested": {"x": 1}}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"category": "tutorial"}, True),
        ({"category": {"$ne": "tutorial"}}, False),
        ({"year": {"$gte": 2023, "$lt": 2024}}, True),
        ({"year": {"$gt": "2020"}}, False),  # no cross-type comparisons
        ({"tags": "b"}, True),
        ({"tags": {"$in": ["z", "a"]}}, True),
        ({"tags": {"$nin": ["a"]}}, False),
        ({"missing": {"$exists": False}}, True),
        ({"nested.x": 1}, True),
        ({"$or": [{"year": 1999}, {"category": "tutorial"}]}, True),
        ({"$and": [{"year": 2023}, {"category": "recipe"}]}, False),
    ],
)
def test_filters_match_like_mongodb(spec, expected):
    predicate = compile_filter(spec)
    assert predicate is not None and predicate(META) is expected


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"$where": "sleep(1)"}, "$where"),
        ({"a": {"$regex": ".*"}}, "$regex"),
        ({"a": {"$expr": {}}}, "$expr"),
        ({"$or": []}, "$or"),
        ({"a": {"$in": "x"}}, "$in"),
        ({"a": {"$gt": None}}, "$gt"),
        ({"a": {"$exists": "yes"}}, "$exists"),
    ],
)
def test_bad_filters_are_400_naming_the_operator(spec, needle):
    with pytest.raises(InvalidArgumentError) as caught:
        compile_filter(spec)
    assert needle in caught.value.message and caught.value.reason == "BAD_FILTER"


def test_rrf_rewards_agreement():
    fused = ranking.rrf(
        [([(1, 0.9), (2, 0.8), (3, 0.7)], 1.0), ([(3, 9.0), (1, 8.0), (4, 1.0)], 1.0)], k=60
    )
    assert [slot for slot, _ in fused][:2] == [1, 3]


def test_fuzzy_terms_correct_unknown_words_only():
    surface = Counter({"sourdough": 3, "starter": 2, "bread": 5})
    vocabulary = {"sourdough": {}, "starter": {}, "bread": {}}
    terms, corrections = ranking.fuzzy_terms("sourdouhg bread", vocabulary, surface)
    assert corrections == {"sourdouhg": "sourdough"} and terms == ["sourdough", "bread"]


def test_page_tokens_belong_to_their_search():
    token = ranking.encode_page(10, "abc")
    assert ranking.decode_page(token, "abc") == 10
    with pytest.raises(InvalidArgumentError):
        ranking.decode_page(token, "other")
    with pytest.raises(InvalidArgumentError):
        ranking.decode_page("garbage!", "abc")


def test_atlas_pipeline_prefilters_tenant_collection_and_metadata():
    stages = pipeline(
        "idx",
        np.ones(4, dtype=np.float32),
        10,
        "t1",
        "docs",
        {"category": "x", "$or": [{"year": {"$gt": 2020}}]},
    )
    search = stages[0]["$vectorSearch"]
    assert search["index"] == "idx" and search["limit"] == 10 and search["numCandidates"] >= 100
    assert search["filter"] == atlas_filter(
        "t1", "docs", {"category": "x", "$or": [{"year": {"$gt": 2020}}]}
    )
    assert search["filter"]["$and"][:2] == [
        {"tenant": {"$eq": "t1"}},
        {"collection": {"$eq": "docs"}},
    ]
    assert search["filter"]["$and"][2] == {
        "metadata.category": {"$eq": "x"},
        "$or": [{"metadata.year": {"$gt": 2020}}],
    }
