"""The public open-book QA set (../shared/datasets/squad-rag, SQuAD v1.1 dev, CC BY-SA 4.0):
loading, the tuning/report split, SQuAD's answer scoring, and a run through the public API.

Used by `python -m bench qa` and by tests/e2e/test_qa_quality.py. The set's README defines
the scores; they are computed here exactly so (SQuAD's normalisation: lower-case, strip
punctuation and articles, collapse spaces), after removing citation markers like "[1]"
from the answer (they are pointers to citations, not words of the answer).
"""

from __future__ import annotations

import json
import re
import statistics
import string
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
DATASET = ROOT.parent / "shared" / "datasets" / "squad-rag"

# The development half's articles are split in two by sorted name, alternately: the
# extractive answerer was tuned on TUNE only; REPORT is what its figures are quoted on.
TUNE = "tune"
REPORT = "report"
ALL = "all"
SPLITS = (TUNE, REPORT, ALL)

_MARKER = re.compile(r"\s*\[\d{1,2}(?:\s*,\s*\d{1,2})*\]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation)


@dataclass(frozen=True)
class Paragraph:
    id: str
    title: str
    text: str

    @property
    def article(self) -> str:
        return self.id.split("#", 1)[0]


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    answers: tuple[str, ...]
    paragraph_id: str

    @property
    def article(self) -> str:
        return self.paragraph_id.split("#", 1)[0]


@dataclass(frozen=True)
class QaSet:
    paragraphs: list[Paragraph]
    questions: list[Question]

    def articles(self) -> list[str]:
        return sorted({p.article for p in self.paragraphs})

    def split(self, name: str) -> list[Question]:
        """The questions of one part (TUNE, REPORT or ALL), in file order."""
        if name == ALL:
            return list(self.questions)
        tune = set(self.articles()[::2])
        want = name == TUNE
        return [q for q in self.questions if (q.article in tune) == want]


def available(path: Path = DATASET) -> bool:
    return (path / "corpus.jsonl").is_file() and (path / "questions.jsonl").is_file()


def load(path: Path = DATASET) -> QaSet:
    paragraphs = [
        Paragraph(d["_id"], d["title"], d["text"])
        for d in map(json.loads, (path / "corpus.jsonl").read_text().splitlines())
    ]
    questions = [
        Question(d["_id"], d["question"], tuple(d["answers"]), d["paragraph_id"])
        for d in map(json.loads, (path / "questions.jsonl").read_text().splitlines())
    ]
    return QaSet(paragraphs, questions)


def sample(questions: Sequence[Question], n: int) -> list[Question]:
    """`n` questions spread evenly over the list (every article represented), deterministic."""
    if n <= 0 or n >= len(questions):
        return list(questions)
    step = len(questions) / n
    return [questions[int(i * step)] for i in range(n)]


# -- SQuAD scoring (the official evaluate-v1.1 normalisation) -------------------------------------
def strip_markers(answer: str) -> str:
    return _MARKER.sub("", answer).strip()


def normalize(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> bool:
    return normalize(prediction) == normalize(gold)


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains(prediction: str, gold: str) -> bool:
    """Answer recall: the normalised gold span occurs in the normalised answer (as words)."""
    g = normalize(gold)
    return bool(g) and f" {g} " in f" {normalize(prediction)} "


# -- scores of one model ------------------------------------------------------------------------
@dataclass
class Scores:
    model: str
    questions: int = 0
    hit1: int = 0
    hitk: int = 0
    cited_gold: int = 0
    recall: int = 0
    em: int = 0
    f1: float = 0.0
    abstained: int = 0
    lengths: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    errors: int = 0

    def rate(self, count: float) -> float:
        return count / max(1, self.questions)

    def row(self) -> dict[str, float]:
        s = sorted(self.seconds) or [0.0]
        return {
            "hit@1": self.rate(self.hit1),
            "hit@k": self.rate(self.hitk),
            "citation accuracy": self.rate(self.cited_gold),
            "answer recall": self.rate(self.recall),
            "exact match": self.rate(self.em),
            "F1": self.rate(self.f1),
            "abstained": self.rate(self.abstained),
            "median tokens": statistics.median(self.lengths) if self.lengths else 0.0,
            "p50 s": statistics.median(s),
            "p95 s": s[min(len(s) - 1, round(0.95 * (len(s) - 1)))],
        }


def score_answer(
    scores: Scores, q: Question, body: dict[str, Any], paragraph_of: dict[str, str]
) -> None:
    """Adds one POST /api/v1/chat response to `scores`."""
    answer = strip_markers(body["answer"])
    citations = body.get("citations", [])
    scores.questions += 1
    if not citations:
        scores.abstained += 1
    scores.cited_gold += any(
        paragraph_of.get(c["document_id"]) == q.paragraph_id for c in citations
    )
    scores.recall += any(contains(answer, g) for g in q.answers)
    scores.em += any(exact_match(answer, g) for g in q.answers)
    scores.f1 += max(token_f1(answer, g) for g in q.answers)
    scores.lengths.append(len(answer.split()))


# -- through the public API ---------------------------------------------------------------------
def ingest(
    client: httpx.Client, collection: str, paragraphs: Sequence[Paragraph], batch: int = 50
) -> dict[str, str]:
    """Ingests each paragraph as a document (its id in metadata); returns document id ->
    paragraph id once every job succeeded and the last paragraph is searchable."""
    paragraph_of: dict[str, str] = {}
    jobs: list[str] = []
    for start in range(0, len(paragraphs), batch):
        part = paragraphs[start : start + batch]
        reply = client.post(
            "/api/v1/ingest",
            json={
                "collection": collection,
                "documents": [
                    {"title": p.title, "content": p.text, "metadata": {"paragraph_id": p.id}}
                    for p in part
                ],
            },
        )
        reply.raise_for_status()
        body = reply.json()
        paragraph_of.update(zip(body["document_ids"], (p.id for p in part), strict=True))
        jobs.append(body["job_id"])
    deadline = time.monotonic() + 600
    for job_id in jobs:
        while True:
            job = client.get(f"/api/v1/jobs/{job_id}").json()
            if job["state"] == "JOB_STATE_SUCCEEDED":
                break
            if job["state"] == "JOB_STATE_FAILED" or time.monotonic() > deadline:
                raise RuntimeError(f"ingest job {job_id}: {job}")
            time.sleep(0.3)
    # The retriever follows the database: wait until the last paragraph is found.
    last = paragraphs[-1]
    while time.monotonic() < deadline:
        hits = search(client, collection, last.text[:200], 5)
        if any(paragraph_of.get(h["document_id"]) == last.id for h in hits):
            return paragraph_of
        time.sleep(0.3)
    raise RuntimeError(f"{collection} never became searchable")


def search(client: httpx.Client, collection: str, query: str, k: int) -> list[dict[str, Any]]:
    reply = client.post(
        "/api/v1/search", json={"query": query, "collection": collection, "limit": k}
    )
    reply.raise_for_status()
    hits: list[dict[str, Any]] = reply.json()["hits"]
    return hits


def chat(
    client: httpx.Client, collection: str, model: str, question: str
) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    reply = client.post(
        "/api/v1/chat",
        json={"message": question, "collection": collection, "model": model, "temperature": 0},
    )
    elapsed = time.perf_counter() - started
    reply.raise_for_status()
    body: dict[str, Any] = reply.json()
    return body, elapsed


def retrieval_hits(
    client: httpx.Client,
    collection: str,
    questions: Sequence[Question],
    paragraph_of: dict[str, str],
    k: int,
) -> dict[str, tuple[bool, bool]]:
    """Question id -> (gold paragraph is the first hit, gold paragraph in the top k)."""
    out: dict[str, tuple[bool, bool]] = {}
    for q in questions:
        found = [
            paragraph_of.get(h["document_id"]) for h in search(client, collection, q.question, k)
        ]
        out[q.id] = (found[:1] == [q.paragraph_id], q.paragraph_id in found)
    return out


def run_model(
    client: httpx.Client,
    collection: str,
    model: str,
    questions: Sequence[Question],
    paragraph_of: dict[str, str],
    hits: dict[str, tuple[bool, bool]],
    progress: Callable[[int], None] | None = None,
) -> Scores:
    """Asks every question once (one at a time, as latency is part of the score)."""
    scores = Scores(model)
    for i, q in enumerate(questions):
        body, seconds = chat(client, collection, model, q.question)
        score_answer(scores, q, body, paragraph_of)
        scores.seconds.append(seconds)
        first, within = hits[q.id]
        scores.hit1 += first
        scores.hitk += within
        if progress is not None:
            progress(i + 1)
    return scores


def abstentions(
    client: httpx.Client,
    collection: str,
    questions: Sequence[Question],
    model: str,
    workers: int = 1,
) -> float:
    """Share of questions answered with no citation ("I don't know") when asked against a
    collection that does not hold their answers."""

    def one(q: Question) -> bool:
        body, _ = chat(client, collection, model, q.question)
        return not body.get("citations")

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(one, questions))
    return sum(results) / max(1, len(results))
