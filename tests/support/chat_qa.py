"""The labelled chat QA set (tests/data/chat_qa/qa.json) and how answers are scored."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QA_PATH = Path(__file__).resolve().parents[1] / "data" / "chat_qa" / "qa.json"


def load_qa() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(QA_PATH.read_text())
    return data


@dataclass
class Score:
    questions: int = 0
    correct: int = 0
    # Answers with at least one citation, all of whose quotes are verbatim in their chunk.
    cited: int = 0
    # ... and which cite the gold document.
    cited_gold: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / max(1, self.questions)

    @property
    def citation_correctness(self) -> float:
        return self.cited_gold / max(1, self.questions)


def score_answer(
    score: Score,
    question: dict[str, Any],
    body: dict[str, Any],
    chunk_texts: dict[str, str],
    title_of_document: dict[str, str],
) -> bool:
    """Adds one answer (a POST /api/v1/chat response body) to `score`; True if correct."""
    score.questions += 1
    answer = body["answer"].lower()
    correct = any(e.lower() in answer for e in question["expected"])
    score.correct += correct
    citations = body.get("citations", [])
    verbatim = bool(citations) and all(
        c["quote"] and c["quote"] in chunk_texts.get(c["chunk_id"], "") for c in citations
    )
    if verbatim:
        score.cited += 1
        if any(title_of_document.get(c["document_id"]) == question["document"] for c in citations):
            score.cited_gold += 1
    return correct
