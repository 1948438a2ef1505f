"""python -m bench qa — answer quality on the public open-book QA set, every chat model side
by side, through the public API of a throwaway stack.

    .venv/bin/python -m bench qa [--split report|tune|all] [--questions N]
                                 [--models extractive,local] [--local-questions N] [--k 5]

The set (../shared/datasets/squad-rag, SQuAD v1.1 dev, development half): every paragraph
is ingested as a document into one collection, then each question is asked with
POST /api/v1/chat (one at a time, so latency is the service's own) and searched with
POST /api/v1/search for hit@k. The extractive answerer was tuned on the `tune` split only
(half of the articles); `report` (the other half) is the default and what docs quote.

"I don't know": the same questions asked against a collection of unrelated documents
(tests/data/chat_qa), and (for --split tune or report) against the other split's articles,
Wikipedia paragraphs like the answers' but without them, the harder case; an answer without
citations counts as abstaining.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Sequence

import httpx

from bench.stack import DEV_HEADERS, bench_stack
from tests.support import squad_qa
from tests.support.chat_qa import load_qa

# The local model answers in seconds on 2 cores: it gets fewer questions unless asked.
SLOW_MODELS = {"local"}
COLUMNS = (
    ("hit@1", "{:.3f}"),
    ("hit@k", "{:.3f}"),
    ("citation accuracy", "{:.3f}"),
    ("answer recall", "{:.3f}"),
    ("exact match", "{:.3f}"),
    ("F1", "{:.3f}"),
    ("median tokens", "{:.0f}"),
    ("p50 s", "{:.3f}"),
    ("p95 s", "{:.3f}"),
)


def parse(args: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench qa")
    p.add_argument("--split", choices=squad_qa.SPLITS, default=squad_qa.REPORT)
    p.add_argument("--questions", type=int, default=0, help="0 = every question of the split")
    p.add_argument("--models", default="", help="comma-separated; default every available one")
    p.add_argument("--local-questions", type=int, default=100)
    p.add_argument("--wrong-collection-questions", type=int, default=100)
    p.add_argument("--k", type=int, default=5)
    return p.parse_args(list(args))


def available_models(client: httpx.Client) -> list[str]:
    reply = client.get("/api/v1/chat-models")
    reply.raise_for_status()
    return [m["name"] for m in reply.json()["models"] if m.get("available")]


Row = tuple[str, int, dict[str, float], float, float | None]


def table(rows: list[Row], k: int) -> str:
    head = (
        ["model", "questions"]
        + [n.replace("hit@k", f"hit@{k}") for n, _ in COLUMNS]
        + ["IDK wrong coll.", "IDK other articles"]
    )
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for model, n, row, idk, idk_other in rows:
        cells = [model, str(n)] + [fmt.format(row[name]) for name, fmt in COLUMNS]
        cells.append(f"{idk:.2f}")
        cells.append("-" if idk_other is None else f"{idk_other:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def other_articles(qa: squad_qa.QaSet, split: str) -> list[squad_qa.Paragraph]:
    """The paragraphs of the articles the other split asks about (none for "all")."""
    if split == squad_qa.ALL:
        return []
    other = squad_qa.REPORT if split == squad_qa.TUNE else squad_qa.TUNE
    articles = {q.article for q in qa.split(other)}
    return [p for p in qa.paragraphs if p.article in articles]


def main(args: Sequence[str]) -> None:
    opts = parse(args)
    if not squad_qa.available():
        raise SystemExit(f"the QA set is not at {squad_qa.DATASET}")
    qa = squad_qa.load()
    questions = squad_qa.sample(qa.split(opts.split), opts.questions)
    wrong_docs = load_qa()["documents"]
    with (
        bench_stack() as stack,
        httpx.Client(base_url=stack.cfg.base_url, timeout=300, headers=DEV_HEADERS) as client,
    ):
        collection = f"squad-{uuid.uuid4().hex[:6]}"
        started = time.perf_counter()
        paragraph_of = squad_qa.ingest(client, collection, qa.paragraphs)
        print(f"ingested {len(qa.paragraphs)} paragraphs in {time.perf_counter() - started:.0f} s")
        wrong = f"unrelated-{uuid.uuid4().hex[:6]}"
        squad_qa.ingest(
            client,
            wrong,
            [
                squad_qa.Paragraph(f"x#{i}", d["title"], d["content"])
                for i, d in enumerate(wrong_docs)
            ],
        )
        others = other_articles(qa, opts.split)
        other = f"other-articles-{uuid.uuid4().hex[:6]}"
        if others:
            squad_qa.ingest(client, other, others)
        models = [m for m in opts.models.split(",") if m] or available_models(client)
        hits = squad_qa.retrieval_hits(client, collection, questions, paragraph_of, opts.k)
        rows = []
        for model in models:
            asked = questions
            if model in SLOW_MODELS and opts.local_questions:
                asked = squad_qa.sample(questions, opts.local_questions)
            started = time.perf_counter()
            scores = squad_qa.run_model(client, collection, model, asked, paragraph_of, hits)
            unanswerable = squad_qa.sample(asked, opts.wrong_collection_questions)
            idk = squad_qa.abstentions(client, wrong, unanswerable, model)
            idk_other = squad_qa.abstentions(client, other, unanswerable, model) if others else None
            print(
                f"{model}: {len(asked)} questions in {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )
            rows.append((model, len(asked), scores.row(), idk, idk_other))
    print(
        f"\nsplit {opts.split!r} of the development half ({len(questions)} questions, "
        f"{len(qa.paragraphs)} paragraphs in one collection; the extractive answerer was tuned "
        f"on 'tune' only); IDK = share answered without citations against unrelated documents "
        "(product pages) and against the other split's Wikipedia articles\n"
    )
    print(table(rows, opts.k))
