"""Extractive answers and citations: which passage sentences support an answer.

Every quote is a verbatim span of its chunk's text, so a client can find it in the chunk.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ragline_chat.domain import Citation, Passage
from ragline_chat.prompt import looks_like_injection
from ragline_chat.spans import REASON, best_span, question_type
from ragline_chat.text import Sentence, content_words, sentences

_MARKER = re.compile(r"\[(\d{1,2})(?:\s*,\s*(\d{1,2}))*\]")
_MARKER_NUMBERS = re.compile(r"\d{1,2}")
# No span score separated right spans from wrong ones on the tune split, so any span is
# taken; a sentence shares at least one content word with the question (as before).
MIN_SPAN_SCORE = -10.0
MIN_SHARED_FRACTION = 0.0
# Sentences by overlap alone picked one holding the answer for 68% of the tune split's
# questions; adding the question's cosine with each (keyless MiniLM) picked 72%, and the
# extractive answer held a gold span for 81% instead of 76% at the same length. Chosen by
# a sweep on the tune split (docs/chat.md): the weight of the cosine, how many candidates,
# and how close to the best a second sentence must score to be added.
CANDIDATES = 8
DENSE_WEIGHT = 1.5
DENSE_SECOND_RATIO = 0.7
LEXICAL_SECOND_RATIO = 0.6


@dataclass(frozen=True)
class Candidate:
    passage: Passage
    sentence: Sentence
    score: float


def _idf(passages: Sequence[Passage]) -> dict[str, float]:
    # Over sentences, not passages: a passage's topic ("the Zephyr X2") recurs in most of
    # its sentences, while the word a question turns on ("weigh") picks out one.
    docs = [set(content_words(s.text)) for p in passages for s in sentences(p.text)]
    df: Counter[str] = Counter()
    for words in docs:
        df.update(words)
    n = len(docs)
    return {w: math.log(1 + (n + 1) / (c + 0.5)) for w, c in df.items()}


def rank_sentences(question: str, passages: Sequence[Passage]) -> list[Candidate]:
    """Passage sentences by how well they answer `question` (best first)."""
    query = set(content_words(question))
    if not query:
        return []
    idf = _idf(passages)
    out: list[Candidate] = []
    for rank, p in enumerate(passages):
        # Words of the title name the passage's topic; the rest of the question says
        # what about it is asked, so they decide between its sentences.
        topic = set(content_words(p.title))
        for s in sentences(p.text):
            if looks_like_injection(s.text) or len(s.text) < 12:
                continue
            words = content_words(s.text)
            if not words:
                continue
            overlap = query & set(words)
            if not overlap:
                continue
            score = sum(idf.get(w, 1.0) * (0.3 if w in topic else 1.0) for w in overlap)
            # Prefer focused sentences and higher-ranked passages.
            score = score / (1 + 0.02 * len(words)) + 0.15 / (1 + rank)
            out.append(Candidate(p, s, score))
    out.sort(key=lambda c: c.score, reverse=True)
    return out


def extractive_answer(
    question: str,
    passages: Sequence[Passage],
    max_sentences: int = 2,
    concise: bool = False,
    similarities: Sequence[float] | None = None,
) -> tuple[str, list[Citation]]:
    """The best supporting sentences, each followed by its citation marker; with `concise`,
    the answer span of the best sentence with its marker ("Denver Broncos [1]", the
    sentence being the citation's quote), except for "why" questions. ("", []) when no
    sentence is relevant: the caller says it does not know. Every citation is the exact
    sentence its marker stands for.

    `similarities`, when given, are the question's cosines with `candidates(question,
    passages)` in order (the keyless embedding model's): the sentences are then chosen by
    word overlap and meaning together."""
    ranked = candidates(question, passages)
    if not ranked or not _relevant(question, ranked[0]):
        return "", []
    ratio = LEXICAL_SECOND_RATIO
    if similarities is not None:
        ranked, ratio = rerank(ranked, similarities), DENSE_SECOND_RATIO
    top = ranked[0]
    if concise and question_type(question) != REASON:
        span = best_span(question, top.sentence.text)
        if span is not None and span.score >= MIN_SPAN_SCORE:
            text = top.sentence.text[span.start : span.end]
            return f"{text} [{top.passage.number}]", [Citation.of(top.passage, top.sentence.text)]
    best = top.score
    chosen = [c for c in ranked[:max_sentences] if c.score >= ratio * best]
    parts: list[str] = []
    citations: dict[tuple[str, str], Citation] = {}
    for c in chosen:
        parts.append(f"{c.sentence.text} [{c.passage.number}]")
        citations.setdefault(
            (c.passage.chunk_id, c.sentence.text), Citation.of(c.passage, c.sentence.text)
        )
    return " ".join(parts), list(citations.values())


def candidates(question: str, passages: Sequence[Passage]) -> list[Candidate]:
    """The sentences an extractive answer is chosen from, best by word overlap first."""
    return rank_sentences(question, passages)[:CANDIDATES]


def rerank(ranked: Sequence[Candidate], similarities: Sequence[float]) -> list[Candidate]:
    """Candidates by overlap (relative to the best) plus DENSE_WEIGHT x cosine, best first."""
    if len(similarities) != len(ranked):
        raise ValueError(f"{len(similarities)} similarities for {len(ranked)} candidates")
    best = ranked[0].score or 1.0
    scored = [
        Candidate(c.passage, c.sentence, c.score / best + DENSE_WEIGHT * sim)
        for c, sim in zip(ranked, similarities, strict=True)
    ]
    return sorted(scored, key=lambda c: c.score, reverse=True)


def _relevant(question: str, best: Candidate) -> bool:
    """Whether the best sentence shares enough of the question to answer it."""
    asked = set(content_words(question))
    shared = asked & set(content_words(best.sentence.text + " " + best.passage.title))
    return len(shared) >= max(1, MIN_SHARED_FRACTION * len(asked))


def _best_quote(passage: Passage, claim: str) -> str:
    claim_words = set(content_words(claim))
    best, best_score = "", -1.0
    for s in sentences(passage.text):
        if looks_like_injection(s.text):
            continue
        score = len(claim_words & set(content_words(s.text)))
        if score > best_score:
            best, best_score = s.text, score
    return best


def cite(answer: str, passages: Sequence[Passage]) -> list[Citation]:
    """Citations for a generated answer.

    Markers like [2] name passages directly; the quote is the passage sentence closest to
    the answer sentence carrying the marker. Without markers, answer sentences that share
    enough content words with a passage sentence cite it.
    """
    by_number = {p.number: p for p in passages}
    out: dict[int, Citation] = {}
    for s in sentences(answer):
        for m in _MARKER.finditer(s.text):
            for n in _MARKER_NUMBERS.findall(m.group(0)):
                p = by_number.get(int(n))
                if p is not None and p.number not in out:
                    quote = _best_quote(p, s.text)
                    if quote:
                        out[p.number] = Citation.of(p, quote)
    if out:
        return [out[k] for k in sorted(out)]
    for s in sentences(answer):
        words = set(content_words(s.text))
        if len(words) < 2:
            continue
        ranked = rank_sentences(s.text, passages)
        if not ranked:
            continue
        top = ranked[0]
        shared = words & set(content_words(top.sentence.text))
        if len(shared) >= max(2, len(words) // 2) and top.passage.number not in out:
            out[top.passage.number] = Citation.of(top.passage, top.sentence.text)
    return [out[k] for k in sorted(out)]
