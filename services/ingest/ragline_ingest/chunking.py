"""Token-aware chunking that respects headings and paragraphs.

Text is split into sections at Markdown headings, sections into paragraphs at blank lines,
and paragraphs that are too long into sentences, then word windows, then token windows (text
without spaces: Chinese, Japanese, Thai, a base64 blob), so it works for any script.
Pieces are packed into chunks of at most `size` tokens and `size * MAX_CHARS_PER_TOKEN`
characters; consecutive chunks of a section share up to `overlap` tokens of trailing
sentences so that a fact cut at a boundary is still found whole in one of them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
# Latin-style ends need a space after them (and no lowercase letter next, see
# _sentences); the full stops of CJK (U+3002, U+FF01, U+FF1F, U+FF61) and the Devanagari
# danda (U+0964) need neither.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[\u3002\uff01\uff1f\uff61\u0964])\s*")
# WordPiece counts a run of 100+ characters without spaces as one unknown token: a chunk
# also stays within this many characters per token of its budget.
MAX_CHARS_PER_TOKEN = 10

CountTokens = Callable[[str], int]


@dataclass(frozen=True)
class Chunk:
    """One chunk of a document."""

    index: int
    text: str
    # Headings above the chunk, outermost first.
    headings: tuple[str, ...]
    token_count: int


@dataclass(frozen=True)
class ChunkingConfig:
    size: int = 200
    overlap: int = 32

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ValueError("chunk size must be at least 16 tokens")
        if not 0 <= self.overlap < self.size // 2:
            raise ValueError("chunk overlap must be between 0 and half the chunk size")

    @property
    def max_chars(self) -> int:
        return self.size * MAX_CHARS_PER_TOKEN


def split_sections(text: str) -> list[tuple[tuple[str, ...], str]]:
    """(heading path, body) per Markdown section; text before any heading has no path."""
    sections: list[tuple[tuple[str, ...], str]] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []
    in_fence = False

    def flush() -> None:
        joined = "\n".join(body).strip()
        if joined:
            sections.append((tuple(h for _, h in path), joined))
        body.clear()

    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        match = None if in_fence else _HEADING.match(line)
        if match:
            flush()
            level = len(match.group(1))
            path[:] = [(lvl, h) for lvl, h in path if lvl < level] + [(level, match.group(2))]
        else:
            body.append(line)
    flush()
    return sections


def _paragraphs(body: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]


class _Budget:
    """What one piece may hold: `size` tokens (as `count` measures) and `max_chars`."""

    def __init__(self, config: ChunkingConfig, count: CountTokens) -> None:
        self.size = config.size
        self.max_chars = config.max_chars
        self.count = count

    def fits(self, text: str) -> bool:
        # Length first: counting a long text costs more than refusing it.
        return len(text) <= self.max_chars and self.count(text) <= self.size


def _pieces(paragraph: str, budget: _Budget) -> list[str]:
    """The paragraph, or its sentences, or word windows, or token windows: each fits."""
    if budget.fits(paragraph):
        return [paragraph]
    out: list[str] = []
    for sentence in _sentences(paragraph):
        if budget.fits(sentence):
            out.append(sentence)
        else:
            out.extend(_word_windows(sentence, budget))
    return out


def _sentences(paragraph: str) -> list[str]:
    """Sentences; a period followed by a lowercase letter, in any script that has case
    ("e.g. this"), does not end one."""
    out: list[str] = []
    for part in _SENTENCE_END.split(paragraph):
        if not part.strip():
            continue
        if out and part[0].islower() and out[-1][-1] in ".!?":
            out[-1] += " " + part
        else:
            out.append(part)
    return out


def _word_windows(sentence: str, budget: _Budget) -> list[str]:
    """Whole words per window; a word that does not fit alone is cut into token windows.
    Words are counted one by one (WordPiece never joins tokens across a space)."""
    out: list[str] = []
    window: list[str] = []
    tokens = chars = 0
    for word in sentence.split():
        word_tokens = budget.count(word) if len(word) <= budget.max_chars else budget.size + 1
        if window and (tokens + word_tokens > budget.size or chars + len(word) >= budget.max_chars):
            out.append(" ".join(window))
            window, tokens, chars = [], 0, 0
        if word_tokens > budget.size:
            out.extend(_token_windows(word, budget))
            continue
        window.append(word)
        tokens += word_tokens
        chars += len(word) + 1
    if window:
        out.append(" ".join(window))
    return out


def _token_windows(text: str, budget: _Budget) -> list[str]:
    """Cuts text without spaces into windows that fit. Each window's length is guessed from
    the characters per token of the last one and shrunk in proportion to its token count
    until it fits: one or two counts per window, whatever the script."""
    out: list[str] = []
    start, guess = 0, budget.size
    while start < len(text):
        n = min(len(text) - start, budget.max_chars, guess)
        while True:
            n = _grapheme_end(text, start, n)
            tokens = budget.count(text[start : start + n])
            if tokens <= budget.size or n == 1:
                break
            n = max(1, min(n - 1, n * budget.size // tokens))
        out.append(text[start : start + n])
        start += n
        guess = max(1, n * budget.size // max(tokens, 1))
    return out


def _grapheme_end(text: str, start: int, n: int) -> int:
    """`n`, moved back so that a combining mark stays with its base character."""
    while n > 1 and start + n < len(text) and unicodedata.combining(text[start + n]):
        n -= 1
    return n


def chunk_text(text: str, config: ChunkingConfig, count: CountTokens) -> list[Chunk]:
    """Splits `text` into chunks of at most config.size tokens (as `count` measures) and
    config.max_chars characters."""
    budget = _Budget(config, count)
    chunks: list[Chunk] = []
    for headings, body in split_sections(text):
        pieces = [p for para in _paragraphs(body) for p in _pieces(para, budget)]
        current: list[tuple[str, int]] = []
        used = 0
        for piece in pieces:
            tokens = count(piece)
            if current and (
                used + tokens > config.size or _chars(current) + len(piece) > config.max_chars
            ):
                chunks.append(_make(len(chunks), current, headings))
                # Carry trailing pieces (up to the overlap budget) into the next chunk.
                carried: list[tuple[str, int]] = []
                budget_left = config.overlap
                for prev, prev_tokens in reversed(current):
                    if prev_tokens > budget_left:
                        break
                    carried.insert(0, (prev, prev_tokens))
                    budget_left -= prev_tokens
                current, used = carried, sum(t for _, t in carried)
                if used + tokens > config.size or _chars(current) + len(piece) > config.max_chars:
                    current, used = [], 0
            current.append((piece, tokens))
            used += tokens
        if current:
            chunks.append(_make(len(chunks), current, headings))
    return chunks


def _chars(pieces: list[tuple[str, int]]) -> int:
    """Characters of the chunk these pieces make (joined by blank lines)."""
    return sum(len(p) + 2 for p, _ in pieces)


def _make(index: int, pieces: list[tuple[str, int]], headings: tuple[str, ...]) -> Chunk:
    return Chunk(index, "\n\n".join(p for p, _ in pieces), headings, sum(t for _, t in pieces))
