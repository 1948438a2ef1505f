"""Follow-up questions → standalone search queries, and history within a token budget.

"Who created it?" after "What is Rust?" searches for "Who created it? Rust": a follow-up
(a pronoun or a very short question) borrows the content words of the previous search
query that it lacks. This is deterministic and costs no model call, so it works the same
for every provider, including the extractive one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragline_chat.domain import COMPLETE, PromptMessage, StoredMessage
from ragline_chat.text import clip_to_tokens, estimate_tokens, raw_content_words, stem

_FOLLOW_UP = re.compile(
    r"(?i)\b(it|its|it's|they|them|their|theirs|this|that|these|those|he|she|him|her|his|"
    r"hers|there|same|former|latter|above|previous)\b|^\s*(and|also|what about|how about|"
    r"why|how so|then)\b"
)
MAX_BORROWED_WORDS = 8


def is_follow_up(message: str) -> bool:
    """A pronoun or a leading "and/what about", or a very short message with no name in
    it ("And in 2019?", "why?")."""
    if _FOLLOW_UP.search(message):
        return True
    words = raw_content_words(message)
    names = [w for w in message.split()[1:] if w[:1].isupper()]
    return len(words) <= 1 and not names


def standalone_query(message: str, previous_queries: Sequence[str]) -> str:
    """The search query for `message`, given earlier search queries (newest last)."""
    if not previous_queries or not is_follow_up(message):
        return message.strip()
    have = {stem(w) for w in raw_content_words(message)}
    borrowed: list[str] = []
    for query in reversed(previous_queries):
        for word in raw_content_words(query):
            key = stem(word)
            if key not in have:
                have.add(key)
                borrowed.append(word)
        if borrowed:
            break
    return f"{message.strip()} {' '.join(borrowed[:MAX_BORROWED_WORDS])}".strip()


def bounded_history(
    messages: Sequence[StoredMessage], token_budget: int
) -> tuple[list[PromptMessage], str]:
    """The newest complete turns that fit `token_budget`, and a one-line summary of the
    older ones (their questions), which is also bounded."""
    usable = [m for m in messages if m.role == "user" or m.status == COMPLETE]
    kept: list[PromptMessage] = []
    used = 0
    cut = len(usable)
    for i in range(len(usable) - 1, -1, -1):
        m = usable[i]
        cost = estimate_tokens(m.content) + 4
        if used + cost > token_budget:
            break
        kept.append(PromptMessage("user" if m.role == "user" else "assistant", m.content))
        used += cost
        cut = i
    kept.reverse()
    # Start the kept history with a user turn.
    while kept and kept[0].role != "user":
        kept.pop(0)
    dropped = [m for m in usable[:cut] if m.role == "user"]
    summary = ""
    if dropped:
        questions = "; ".join(clip_to_tokens(m.content, 24) for m in dropped[-6:])
        summary = clip_to_tokens(
            f"(Summary of {len(dropped)} earlier question(s) in this conversation: {questions})",
            max(16, token_budget // 8),
        )
    return kept, summary
