"""The answer span of a sentence: the few words of it that answer a factoid question.

No model: the question's type ("who", "when", "how many", ...) says what kind of words the
answer is (a name, a date, a number), the question's own words say where in the sentence
it is asked about (the answer sits next to them, and never repeats them), and the answer is
a whole phrase of the sentence, cut at punctuation and at the question's words.
Scoring weights were tuned on half of the development QA set's articles only
(docs/chat.md, "Which keyless model is the default").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ragline_chat.text import STOPWORDS, stem

_TOKEN = re.compile(r"[^\W_](?:[\w'\u2019.\-]*[^\W_])?|[^\w\s]")
_BREAK = frozenset(',;:()[]"!?\u201c\u201d\u2014\u2013')
_MONTHS = frozenset(
    "january february march april may june july august september october november december".split()  # noqa: SIM905
)
_NUMBER_WORDS = frozenset(
    """one two three four five six seven eight nine ten eleven twelve thirteen fourteen
    fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy
    eighty ninety hundred thousand million billion trillion dozen half several first second
    third fourth fifth sixth seventh eighth ninth tenth""".split()  # noqa: SIM905
)
# Words a phrase may not start or end with (the answer is the phrase they introduce).
_EDGE = STOPWORDS | frozenset("also its their his her which who whose whom that".split())  # noqa: SIM905

# Question types: what kind of words answer them.
PERSON = "person"
PLACE = "place"
DATE = "date"
NUMBER = "number"
REASON = "reason"
THING = "thing"


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int

    @property
    def lower(self) -> str:
        return self.text.lower()

    @property
    def is_break(self) -> bool:
        return self.text in _BREAK

    @property
    def is_word(self) -> bool:
        return self.text[0].isalnum()

    @property
    def is_number(self) -> bool:
        t = self.lower.rstrip(".")
        return any(ch.isdigit() for ch in t) or t in _NUMBER_WORDS

    @property
    def is_year(self) -> bool:
        t = self.text.rstrip("s")
        return t.isdigit() and len(t) in (3, 4)

    @property
    def is_capitalised(self) -> bool:
        return self.text[0].isupper()


def tokens(text: str) -> list[Token]:
    return [Token(m.group(0), m.start(), m.end()) for m in _TOKEN.finditer(text)]


def question_type(question: str) -> str:
    q = question.lower()
    if re.search(
        r"\bhow (many|much|long|far|old|large|big|tall|high|often|fast)\b", q
    ) or re.search(r"\b(what|which) (percentage|percent|number|amount|proportion|fraction)\b", q):
        return NUMBER
    if re.search(
        r"\bwhen\b|\b(what|which) (year|years|century|decade|date|day|month|time|period|era)\b", q
    ) or re.search(r"\bin what (year|century|decade)\b", q):
        return DATE
    if re.search(r"\bwho(m|se)?\b", q) or re.search(
        r"\b(what|which) (person|man|woman|king|leader|author|scientist|emperor)\b", q
    ):
        return PERSON
    if re.search(r"\bwhere\b", q) or re.search(
        r"\b(what|which) (city|country|state|place|region|continent|area|town|location"
        r"|river|island|county|nation|province)\b",
        q,
    ):
        return PLACE
    if re.search(r"\bwhy\b", q):
        return REASON
    return THING


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    score: float


def _type_fit(kind: str, span: list[Token]) -> float:
    """How well the span's words look like the kind of answer asked for (0..1)."""
    words = [t for t in span if t.is_word]
    if not words:
        return 0.0
    if kind == NUMBER:
        return 1.0 if any(t.is_number for t in words) else 0.0
    if kind == DATE:
        if any(t.is_year or t.lower in _MONTHS for t in words):
            return 1.0
        return 0.5 if any(t.is_number or t.lower.endswith("century") for t in words) else 0.0
    if kind in (PERSON, PLACE):
        caps = sum(t.is_capitalised for t in words) / len(words)
        return caps if words[0].is_capitalised else caps / 2
    return 0.5


_PREFERRED = {NUMBER: 2.0, DATE: 2.0, PERSON: 2.0, PLACE: 2.0, THING: 3.0, REASON: 6.0}


@dataclass
class Weights:
    """Chosen by a coordinate search on the tune split (tests/support/squad_qa.py)."""

    fit: float = 3.0
    near: float = 2.0
    far: float = 0.5
    length: float = 0.2
    phrase: float = 1.2


WEIGHTS = Weights()


def best_span(question: str, sentence: str, max_words: int = 12) -> Span | None:
    """The best answer span of `sentence` for `question` (offsets into `sentence`)."""
    toks = tokens(sentence)
    if not toks:
        return None
    asked = {
        stem(w)
        for w in re.findall(r"[A-Za-z0-9][A-Za-z0-9'-]*", question)
        if w.lower() not in STOPWORDS
    }
    in_question = [t.is_word and stem(t.text) in asked for t in toks]
    anchors = [i for i, hit in enumerate(in_question) if hit]
    kind = question_type(question)
    preferred = _PREFERRED[kind]
    best: Span | None = None
    n = len(toks)
    for i in range(n):
        if not _edge_ok(toks[i]) or in_question[i]:
            continue
        for j in range(i, min(n, i + max_words * 2)):
            t = toks[j]
            if t.is_break or in_question[j]:
                break
            if not _edge_ok(t):
                continue
            span = toks[i : j + 1]
            words = sum(x.is_word for x in span)
            if words > max_words:
                break
            fit = _type_fit(kind, span)
            gaps = [a - j if a > j else i - a for a in anchors]
            distance = min(gaps, default=n)
            near = sum(1 / g for g in gaps) / max(1, len(anchors))
            w = WEIGHTS
            score = (
                w.fit * fit
                + w.near * near
                - w.far * math.log1p(distance)
                - w.length * abs(math.log(words / preferred))
                + w.phrase * _is_phrase(toks, i, j, in_question)
            )
            if best is None or score > best.score:
                best = Span(toks[i].start, toks[j].end, score)
    return best


def _edge_ok(t: Token) -> bool:
    return t.is_word and t.lower not in _EDGE


def _is_phrase(toks: list[Token], i: int, j: int, in_question: list[bool]) -> float:
    """1 when the span is bounded on both sides by punctuation, the question's words, a
    function word or the sentence's ends: a whole phrase rather than part of one."""
    left = i == 0 or toks[i - 1].is_break or in_question[i - 1] or toks[i - 1].lower in _EDGE
    right = (
        j == len(toks) - 1
        or toks[j + 1].is_break
        or in_question[j + 1]
        or toks[j + 1].lower in _EDGE
    )
    return (left + right) / 2
