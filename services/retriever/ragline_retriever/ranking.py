"""Fusion, fuzzy matching, facets and pagination: the pure parts of search."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from rapidfuzz import fuzz, process

from ragline_core.errors import InvalidArgumentError
from ragline_retriever.text import STOPWORDS, stem, words

Ranked = list[tuple[int, float]]


def rrf(lists: Sequence[tuple[Ranked, float]], k: int) -> Ranked:
    """Weighted reciprocal rank fusion: sum of weight / (k + rank) over the lists."""
    scores: dict[int, float] = {}
    for ranked, weight in lists:
        for rank, (slot, _) in enumerate(ranked, start=1):
            scores[slot] = scores.get(slot, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: -item[1])


def fuzzy_terms(
    query: str, vocabulary: dict[str, Any], surface: Counter[str]
) -> tuple[list[str], dict[str, str]]:
    """Query terms for BM25; a word unknown to the collection is replaced by the closest
    known word (edit similarity ≥ 80), and the replacement is reported."""
    terms: list[str] = []
    corrections: dict[str, str] = {}
    for word in words(query):
        if word in STOPWORDS:
            continue
        term = stem(word)
        if term not in vocabulary and len(word) >= 4 and surface:
            match = process.extractOne(word, surface.keys(), scorer=fuzz.ratio, score_cutoff=80)
            if match is not None:
                corrections[word] = match[0]
                term = stem(match[0])
        terms.append(term)
    return terms, corrections


def facet_counts(
    metadatas: Iterable[dict[str, Any]], fields: Sequence[str], top: int = 20
) -> dict[str, list[tuple[str, int]]]:
    out: dict[str, list[tuple[str, int]]] = {}
    for field in fields:
        counts: Counter[str] = Counter()
        for metadata in metadatas:
            value = metadata.get(field)
            values = value if isinstance(value, list) else [value]
            for v in values:
                if v is None or isinstance(v, dict | list):
                    continue
                counts[json.dumps(v) if not isinstance(v, str) else v] += 1
        out[field] = counts.most_common(top)
    return out


def encode_page(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([offset, fingerprint]).encode()).decode()


def decode_page(token: str, fingerprint: str) -> int:
    """The offset a page token points at; it must come from the same search."""
    if not token:
        return 0
    try:
        offset, stamp = json.loads(base64.urlsafe_b64decode(token.encode()))
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
    except (ValueError, TypeError):
        raise InvalidArgumentError("page_token is not valid", field="page_token") from None
    if stamp != fingerprint:
        raise InvalidArgumentError("page_token belongs to a different search", field="page_token")
    return offset


def suggestions(prefix: str, surface: Counter[str], titles: Counter[str], limit: int) -> list[str]:
    """Completions of the last word of `prefix` from the vocabulary, plus matching titles."""
    lowered = prefix.lower()
    head, _, last = lowered.rpartition(" ")
    out: list[str] = []
    for title, _count in titles.most_common():
        if title.lower().startswith(lowered):
            out.append(title)
        if len(out) >= limit:
            return out
    if last:
        words_ = sorted(
            (w for w in surface if w.startswith(last) and w != last), key=lambda w: -surface[w]
        )
        for word in words_:
            completion = f"{head} {word}".strip() if head else word
            if completion not in out:
                out.append(completion)
            if len(out) >= limit:
                break
    return out
