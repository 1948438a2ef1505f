"""Small text tools: sentences with verbatim spans, content words, token estimates."""

from __future__ import annotations

import re
from dataclasses import dataclass

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n|\n(?=\s*[-*•\d])")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'-]*")

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his how i if in
    into is it its itself just me more most my myself no nor not now of off on once only or
    other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up
    very was we were what when where which while who whom why will with would you your yours
    yourself yourselves tell give please explain describe say know many much also does did
    done use used using one ones""".split()  # noqa: SIM905
)


@dataclass(frozen=True)
class Sentence:
    """A sentence and where it sits in its text (text[start:end] == sentence)."""

    text: str
    start: int
    end: int


def sentences(text: str) -> list[Sentence]:
    """Splits `text` into sentences whose text is a verbatim span of the input."""
    out: list[Sentence] = []
    pos = 0
    for match in [*_SENTENCE_END.finditer(text), None]:
        end = match.start() if match else len(text)
        # Keep closing quotes/brackets that the lookbehind left after the stop.
        raw = text[pos:end]
        stripped = raw.strip()
        if stripped:
            start = pos + raw.index(stripped)
            out.append(Sentence(stripped, start, start + len(stripped)))
        if match:
            pos = match.end()
    return out


def stem(word: str) -> str:
    """A crude stemmer, enough to match "indexes" with "index" and "running" with "run"."""
    w = word.lower().strip("'-")
    for suffix in ("ies", "ing", "ed", "es", "s"):
        if len(w) > len(suffix) + 2 and w.endswith(suffix):
            w = w[: -len(suffix)] + ("y" if suffix == "ies" else "")
            if suffix in ("ing", "ed") and len(w) > 3 and w[-1] == w[-2] and w[-1] not in "aeiouls":
                w = w[:-1]  # "repotted" -> "repot"
            break
    return w


def content_words(text: str) -> list[str]:
    """Stemmed words of `text` that carry meaning (no stopwords)."""
    return [stem(w) for w in _WORD.findall(text) if w.lower() not in STOPWORDS and len(w) > 1]


def raw_content_words(text: str) -> list[str]:
    """Unstemmed content words, in order, for building search queries."""
    return [w for w in _WORD.findall(text) if w.lower() not in STOPWORDS and len(w) > 1]


def estimate_tokens(text: str) -> int:
    """About four characters per token (English); used for budgets, not billing."""
    return max(1, (len(text) + 3) // 4) if text else 0


def clip_to_tokens(text: str, tokens: int) -> str:
    """Cuts `text` to about `tokens` tokens, at a word boundary."""
    limit = tokens * 4
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    return cut[: space if space > limit // 2 else limit]
