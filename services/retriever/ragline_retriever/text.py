"""Text analysis for keyword search: lowercase word tokens, English stopwords, Snowball
stemming (what Lucene's English analyzer does, which BM25 baselines use)."""

from __future__ import annotations

import re
from functools import lru_cache

import snowballstemmer

_WORD = re.compile(r"\w+", re.UNICODE)
# Lucene's EnglishAnalyzer default stop set.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)
_stemmer = snowballstemmer.stemmer("english")


@lru_cache(maxsize=200_000)
def stem(word: str) -> str:
    return str(_stemmer.stemWord(word))


def words(text: str) -> list[str]:
    """Lowercased word tokens (no stemming, stopwords kept): for suggestions."""
    return [w.lower() for w in _WORD.findall(text)]


def analyze(text: str) -> list[str]:
    """Index/query terms: lowercased, stopwords dropped, stemmed."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]
