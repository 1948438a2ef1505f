"""Token-aware chunking that respects headings and paragraphs.

Text is split into sections at Markdown headings, sections into paragraphs at blank lines,
and paragraphs that are too long into sentences (and, failing that, token windows).
Pieces are packed into chunks of at most `size` tokens; consecutive chunks of a section
share up to `overlap` tokens of trailing sentences so that a fact cut at a boundary is
still found whole in one of them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")

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


def _pieces(paragraph: str, size: int, count: CountTokens) -> list[str]:
    """The paragraph, or its sentences, or token-sized word windows: each within `size`."""
    if count(paragraph) <= size:
        return [paragraph]
    out: list[str] = []
    for sentence in _SENTENCE_END.split(paragraph):
        if count(sentence) <= size:
            out.append(sentence)
            continue
        words = sentence.split()
        window: list[str] = []
        for word in words:
            window.append(word)
            if count(" ".join(window)) > size:
                window.pop()
                if window:
                    out.append(" ".join(window))
                window = [word]
        if window:
            out.append(" ".join(window))
    return out


def chunk_text(text: str, config: ChunkingConfig, count: CountTokens) -> list[Chunk]:
    """Splits `text` into chunks of at most config.size tokens (as `count` measures)."""
    chunks: list[Chunk] = []
    for headings, body in split_sections(text):
        pieces = [p for para in _paragraphs(body) for p in _pieces(para, config.size, count)]
        current: list[tuple[str, int]] = []
        used = 0
        for piece in pieces:
            tokens = count(piece)
            if current and used + tokens > config.size:
                chunks.append(_make(len(chunks), current, headings))
                # Carry trailing pieces (up to the overlap budget) into the next chunk.
                carried: list[tuple[str, int]] = []
                budget = config.overlap
                for prev, prev_tokens in reversed(current):
                    if prev_tokens > budget:
                        break
                    carried.insert(0, (prev, prev_tokens))
                    budget -= prev_tokens
                current, used = carried, sum(t for _, t in carried)
                if used + tokens > config.size:
                    current, used = [], 0
            current.append((piece, tokens))
            used += tokens
        if current:
            chunks.append(_make(len(chunks), current, headings))
    return chunks


def _make(index: int, pieces: list[tuple[str, int]], headings: tuple[str, ...]) -> Chunk:
    return Chunk(index, "\n\n".join(p for p, _ in pieces), headings, sum(t for _, t in pieces))
