"""Chunking text in any script, with or without spaces, by the real tokenizer."""

from __future__ import annotations

import pytest

from ragline_ingest.chunking import ChunkingConfig, chunk_text
from ragline_ingest.service import TokenCounter

CONFIG = ChunkingConfig()  # 200 tokens, the service's default
EMBEDDER_MAX_TEXT_CHARS = 100_000


@pytest.fixture(scope="module")
def count() -> TokenCounter:
    return TokenCounter()


@pytest.mark.parametrize(
    ("text", "at_least"),
    [
        # 132,000 characters with no space or full stop: one 132,000-character chunk before,
        # which the embedder refused ("texts[0] is 132014 characters; the limit is 100000").
        ("检索增强生成是一种技术" * 12000, 600),
        # Short enough for the embedder, but one chunk embedded only to 256 tokens before.
        ("检索增强生成是一种技术" * 100, 5),
        ("こんにちは世界、元気ですか" * 2000, 100),
        ("สวัสดีครับ" * 3000, 10),  # Thai: no spaces; WordPiece sees unknown runs
        ("x" * 100_000, 40),  # a blob without spaces counts as one token
        ("https://example.com/" + "a1b2" * 20_000, 10),
    ],
)
def test_text_without_spaces_falls_back_to_token_windows(count, text, at_least):
    chunks = chunk_text(text, CONFIG, count)
    assert len(chunks) >= at_least
    for chunk in chunks:
        assert count(chunk.text) <= CONFIG.size and chunk.token_count <= CONFIG.size
        assert len(chunk.text) <= CONFIG.max_chars < EMBEDDER_MAX_TEXT_CHARS
    # Nothing lost, nothing repeated (pieces packed into one chunk are joined by a blank line).
    assert "".join(c.text for c in chunks).replace("\n\n", "") == text


def test_cjk_sentences_end_at_full_stops(count):
    text = "".join(f"第{i}句话讲检索增强生成。" for i in range(200))
    chunks = chunk_text(text, CONFIG, count)
    assert len(chunks) > 5 and all(c.token_count <= CONFIG.size for c in chunks)
    # Chunks break after a full stop, never inside a sentence.
    assert all(c.text.endswith("。") for c in chunks)
    joined = "".join(c.text for c in chunks)
    assert all(f"第{i}句话" in joined for i in range(200))


def test_combining_marks_stay_with_their_letter(count):
    text = "e\u0301" * 5000  # "é" as a letter and a combining accent
    chunks = chunk_text(text, CONFIG, count)
    assert len(chunks) > 1
    assert all(c.text.startswith("e") and c.text.endswith("\u0301") for c in chunks)


def test_spaced_scripts_still_chunk_at_sentences(count):
    text = " ".join(f"Предложение номер {i} про поиск." for i in range(300))
    chunks = chunk_text(text, CONFIG, count)
    assert len(chunks) > 1 and all(c.token_count <= CONFIG.size for c in chunks)
    assert all(c.text.rstrip().endswith(".") for c in chunks)
