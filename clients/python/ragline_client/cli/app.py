"""The `ragline` command: the API from a terminal, on the Python SDK.

Every command has `--help`; reads take `--json` for scripts. The gateway and the key come
from `--base-url`/`RAGLINE_URL` (or the SDK's `RAGLINE_BASE_URL`) and
`--api-key`/`RAGLINE_API_KEY`. Exit codes by error class are in `exits.Exit`."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from ragline_client import _core as core
from ragline_client import models as m
from ragline_client._version import __version__
from ragline_client.client import Client

from . import ingest as ing
from .exits import Exit
from .output import (
    enum_name,
    err,
    fields_table,
    out,
    plain,
    print_json,
    table,
    when,
)

app = typer.Typer(
    name="ragline",
    help="The ragline RAG API from a terminal: ingest, search, chat and administration.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
collections_app = typer.Typer(help="List, show and delete collections.", no_args_is_help=True)
documents_app = typer.Typer(help="List, show and delete documents.", no_args_is_help=True)
jobs_app = typer.Typer(help="Show and watch ingest jobs.", no_args_is_help=True)
keys_app = typer.Typer(help="Manage API keys (admin scope).", no_args_is_help=True)
app.add_typer(collections_app, name="collections")
app.add_typer(documents_app, name="documents")
app.add_typer(jobs_app, name="jobs")
app.add_typer(keys_app, name="keys")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
CollectionOpt = Annotated[
    str, typer.Option("--collection", "-c", help="The collection.", show_default=False)
]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", "-n", min=1, help="Show at most this many.")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


@dataclass(frozen=True)
class Settings:
    base_url: str | None
    api_key: str | None
    grpc: bool
    timeout: float
    retries: int


@contextmanager
def client_of(ctx: typer.Context) -> Iterator[Client]:
    s = ctx.find_object(Settings) or Settings(None, None, False, 60.0, 3)
    with Client(
        s.base_url, s.api_key, prefer_grpc=s.grpc, timeout=s.timeout, max_retries=s.retries
    ) as client:
        yield client


def _version(value: bool) -> None:
    if value:
        out.print(f"ragline {__version__} (ragline-client, API v1)")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            envvar=["RAGLINE_URL", "RAGLINE_BASE_URL"],
            help="The gateway's URL (env RAGLINE_URL, then RAGLINE_BASE_URL; "
            "default http://localhost:8000).",
            show_envvar=False,
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="RAGLINE_API_KEY",
            help="The API key or a token (env RAGLINE_API_KEY).",
            show_envvar=False,
        ),
    ] = None,
    grpc: Annotated[
        bool, typer.Option("--grpc", help="Speak native gRPC to the gateway instead of REST.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds each request may take.")
    ] = 60.0,
    retries: Annotated[
        int,
        typer.Option(
            "--retries",
            min=0,
            help="Retries of a 429 (after Retry-After) or 503; 0 fails at once (exit 6 or 7).",
        ),
    ] = 3,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = Settings(base_url, api_key, grpc, timeout, retries)


def _take(items: Iterator[Any] | Any, limit: int | None) -> list[Any]:
    taken: list[Any] = []
    for item in items:
        if limit is not None and len(taken) >= limit:
            break
        taken.append(item)
    return taken


def _confirm(what: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        err.print(f"error: usage: {what} needs --yes when not run from a terminal")
        raise typer.Exit(Exit.USAGE)
    if not typer.confirm(f"{what}?", default=False, err=True):
        raise typer.Exit(Exit.UNEXPECTED)


def _parse_filters(values: list[str] | None) -> dict[str, Any] | None:
    if not values:
        return None
    filters: dict[str, Any] = {}
    for raw in values:
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{raw!r} is not KEY=VALUE", param_hint="--filter")
        try:
            filters[key] = json.loads(value)
        except ValueError:
            filters[key] = value  # a bare word is a string
    return filters


# -- ingest and jobs ---------------------------------------------------------------------------
@app.command()
def ingest(
    ctx: typer.Context,
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Files and folders to ingest.", exists=True, show_default=False, metavar="PATH..."
        ),
    ],
    collection: CollectionOpt,
    pattern: Annotated[
        list[str] | None,
        typer.Option(
            "--pattern",
            "-p",
            help="Glob of the files to take from folders (repeatable) "
            f"(default: {' '.join(core.DEFAULT_PATTERNS)}).",
            show_default=False,
        ),
    ] = None,
    recursive: Annotated[
        bool, typer.Option("--recursive/--no-recursive", help="Look into subfolders.")
    ] = True,
    embedding_model: Annotated[
        str | None, typer.Option("--embedding-model", help="The collection's embedding model.")
    ] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait/--no-wait", help="Watch the jobs until done, or only submit them."),
    ] = True,
    progress: Annotated[
        bool | None,
        typer.Option(
            "--progress/--no-progress",
            help="The live progress bar (default: when stderr is a terminal).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Ingest files and folders into a collection (live progress bar, summary table).

    Text files (.txt, .md) go in batches, other formats (.html, .pdf, .docx) one upload
    each; a document's id comes from its path, so running it again updates the documents.
    Exits 8 when some documents failed."""
    files = ing.collect(paths, pattern or core.DEFAULT_PATTERNS, recursive)
    if not files:
        err.print("error: usage: no files to ingest (check the paths and --pattern)")
        raise typer.Exit(Exit.USAGE)
    run = ing.IngestRun(collection, files)
    show = err.is_terminal if progress is None else progress
    start = time.monotonic()
    with client_of(ctx) as client:
        if show:
            with ing.ProgressView.make(err) as bar:
                view = ing.ProgressView(bar, collection, len(files))
                worker = ing.Ingester(
                    client, run, embedding_model=embedding_model, on_change=view.update
                )
                worker.submit()
                if wait:
                    worker.watch()
        else:
            worker = ing.Ingester(
                client, run, embedding_model=embedding_model, on_change=lambda _: None
            )
            worker.submit()
            if wait:
                worker.watch()
    elapsed = time.monotonic() - start
    totals = run.totals()
    failures = run.failures()
    if as_json:
        print_json(
            {
                "collection": collection,
                **totals,
                "elapsed_seconds": round(elapsed, 3),
                "jobs": [
                    {"job_id": j.job_id, "files": [f.name for f in j.files], "job": plain(j.job)}
                    for j in run.jobs
                ],
                "failures": [{"file": f, "error": e} for f, e in failures],
            }
        )
    else:
        rows = []
        for j in run.jobs:
            job = j.job or m.Job(job_id=j.job_id)
            rows.append(
                [
                    j.job_id,
                    enum_name(job.state, "JOB_STATE_"),
                    len(j.files),
                    job.documents_done - job.documents_unchanged,
                    job.documents_unchanged,
                    ing._failed_of(job, len(j.files)),
                    job.chunks_done,
                ]
            )
        summary = table(
            f"Ingest into {collection}: {len(files)} files in {elapsed:.1f}s",
            ["job", "state", "files", "ingested", "unchanged", "failed", "chunks"],
            rows,
        )
        summary.add_section()
        summary.add_row(
            "total",
            "",
            str(totals["files"]),
            str(totals["documents_done"] - totals["documents_unchanged"]),
            str(totals["documents_unchanged"]),
            str(totals["documents_failed"]),
            str(totals["chunks"]),
            style="bold",
        )
        out.print(summary)
        if failures:
            out.print(table("Failed", ["file", "error"], failures))
        if not wait:
            err.print(f"submitted; follow with: ragline jobs watch {run.jobs[0].job_id}")
    if failures or any(j.job and j.job.state is m.JobState.FAILED for j in run.jobs):
        raise typer.Exit(Exit.INGEST_FAILED)


def _job_table(job: m.Job) -> Any:
    return fields_table(
        f"Job {job.job_id}",
        [
            ("collection", job.collection),
            ("state", enum_name(job.state, "JOB_STATE_")),
            ("documents", f"{job.documents_done} done of {job.documents_total}"),
            ("unchanged", f"{job.documents_unchanged} (of the done ones)"),
            ("failed", job.documents_failed),
            ("chunks", job.chunks_done),
            ("failure", job.failure_reason),
            ("created", when(job.create_time)),
            ("updated", when(job.update_time)),
        ]
        + [(f"error #{e.index}", f"{e.document_id}: {e.message}") for e in job.errors],
    )


@jobs_app.command("get")
def jobs_get(ctx: typer.Context, job_id: str, as_json: JsonOpt = False) -> None:
    """Show an ingest job and its progress."""
    with client_of(ctx) as client:
        job = client.get_job(job_id)
    print_json(job) if as_json else out.print(_job_table(job))


@jobs_app.command("watch")
def jobs_watch(
    ctx: typer.Context,
    job_id: str,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each state as a line of JSON.")
    ] = False,
) -> None:
    """Follow a job until it has finished (a progress bar on a terminal).

    Exits 8 when the job failed or some documents did."""
    with client_of(ctx) as client:
        if as_json or not err.is_terminal:
            printed: list[m.Job] = []

            def line(job: m.Job) -> None:
                if as_json:
                    sys.stdout.write(json.dumps(plain(job)) + "\n")
                    sys.stdout.flush()
                printed.append(job)

            job = client.wait_for_job(job_id, on_progress=line)
            if not printed or printed[-1] != job:  # the final state came from a GetJob
                line(job)
        else:
            with ing.ProgressView.make(err) as bar:
                first = client.get_job(job_id)  # the bar's total before the first frame
                task = bar.add_task(
                    f"job {job_id}", total=first.documents_total or 1, failed=0, chunks=0
                )

                def frame(job: m.Job) -> None:
                    bar.update(
                        task,
                        total=job.documents_total or 1,
                        completed=job.documents_done + job.documents_failed,
                        failed=job.documents_failed,
                        chunks=job.chunks_done,
                        refresh=True,
                    )

                job = client.wait_for_job(job_id, on_progress=frame)
                frame(job)
    if not as_json:
        out.print(_job_table(job))
    if job.state is m.JobState.FAILED or job.documents_failed:
        raise typer.Exit(Exit.INGEST_FAILED)


# -- search and chat ---------------------------------------------------------------------------
MODES = {
    "hybrid": m.SearchMode.HYBRID,
    "dense": m.SearchMode.DENSE,
    "keyword": m.SearchMode.KEYWORD,
}


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to look for.", show_default=False)],
    collection: CollectionOpt,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", help="How many hits (the API's limit).")
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option("--mode", help="hybrid (the API's default), dense or keyword."),
    ] = None,
    rerank: Annotated[
        bool | None,
        typer.Option("--rerank/--no-rerank", help="Rerank the hits.", show_default=False),
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            "-f",
            help="Metadata filter KEY=VALUE (repeatable); VALUE is JSON when it parses: "
            "year=2016, year='{\"$gte\": 2010}'.",
            show_default=False,
        ),
    ] = None,
    facets: Annotated[
        list[str] | None,
        typer.Option("--facet", help="Count the hits by this metadata field (repeatable)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search a collection: hits best first as a table (or --json)."""
    search_mode = None
    if mode is not None:
        if mode.lower() not in MODES:
            raise typer.BadParameter(
                f"{mode!r} is not one of {', '.join(MODES)}", param_hint="--mode"
            )
        search_mode = MODES[mode.lower()]
    with client_of(ctx) as client:
        results = client.search(
            query,
            collection,
            limit=limit,
            filters=_parse_filters(filters),
            rerank=rerank,
            mode=search_mode,
            facets=facets,
        )
    if as_json:
        print_json(results)
        return
    rows = [
        [i, f"{h.score:.3f}", h.title, h.document_id, h.chunk_index, h.text]
        for i, h in enumerate(results.hits, 1)
    ]
    title = f"{len(results.hits)} hits ({enum_name(results.mode, 'SEARCH_MODE_')}"
    title += ", reranked)" if results.reranked else ")"
    out.print(table(title, ["#", "score", "title", "document", "chunk", "text"], rows))
    for facet in results.facets:
        out.print(
            table(
                f"facet {facet.field}",
                ["value", "count"],
                [[v.value, v.count] for v in facet.values],
            )
        )
    for wrong, right in results.corrections.items():
        err.print(f"note: searched {right!r} for {wrong!r}")


def _print_citations(citations: list[m.Citation]) -> None:
    if not citations:
        return
    out.print("\n[bold]Sources[/bold]")
    for c in citations:
        quote = c.quote if len(c.quote) <= 200 else c.quote[:197] + "..."
        out.print(f"  [{c.index}] {c.title} ({c.document_id}, chunk {c.chunk_index}): “{quote}”")


@app.command()
def chat(
    ctx: typer.Context,
    message: Annotated[str, typer.Argument(help="Your question.", show_default=False)],
    collection: Annotated[
        str | None, typer.Option("--collection", "-c", help="Ground the answer in it.")
    ] = None,
    conversation: Annotated[
        str | None, typer.Option("--conversation", help="Continue this conversation (its id).")
    ] = None,
    model: Annotated[str | None, typer.Option("--model", help="The chat model.")] = None,
    stream: Annotated[
        bool, typer.Option("--stream/--no-stream", help="Print the answer as it is written.")
    ] = True,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", help="How many chunks to ground it in.")
    ] = None,
    filters: Annotated[
        list[str] | None,
        typer.Option("--filter", "-f", help="Metadata filter KEY=VALUE (repeatable)."),
    ] = None,
    temperature: Annotated[float | None, typer.Option("--temperature")] = None,
    max_tokens: Annotated[int | None, typer.Option("--max-tokens")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole answer as JSON (no streaming).")
    ] = False,
) -> None:
    """Ask a question: the answer streams in, then its sources and conversation id.

    Continue the conversation with --conversation ID."""
    args: dict[str, Any] = {
        "conversation_id": conversation,
        "model": model,
        "collection": collection,
        "filters": _parse_filters(filters),
        "limit": limit,
        "temperature": temperature,
        "max_tokens": max_tokens,
    }
    with client_of(ctx) as client:
        if stream and not as_json:
            answer = client.chat_stream(message, **args)
            for text in answer.text():
                sys.stdout.write(text)
                sys.stdout.flush()
            sys.stdout.write("\n")
            response = answer.response()
        else:
            response = client.chat(message, **args)
            if not as_json:
                out.print(response.answer, markup=False)
    if as_json:
        print_json(response)
        return
    _print_citations(response.citations)
    # The id alone is not dimmed: it is what you copy to continue.
    out.print(
        f"\nconversation: {response.conversation_id} [dim]· model: {response.model}"
        " · continue it with --conversation[/dim]"
    )


# -- collections and documents -------------------------------------------------------------
@collections_app.command("list")
def collections_list(ctx: typer.Context, limit: LimitOpt = None, as_json: JsonOpt = False) -> None:
    """The collections of your tenant."""
    with client_of(ctx) as client:
        items = _take(client.list_collections(), limit)
    if as_json:
        print_json(items)
        return
    rows = [
        [c.name, c.document_count, c.chunk_count, c.embedding_model, c.dimensions] for c in items
    ]
    out.print(table(None, ["name", "documents", "chunks", "embedding model", "dims"], rows))


@collections_app.command("get")
def collections_get(ctx: typer.Context, name: str, as_json: JsonOpt = False) -> None:
    """Show a collection."""
    with client_of(ctx) as client:
        c = client.get_collection(name)
    if as_json:
        print_json(c)
        return
    out.print(
        fields_table(
            f"Collection {c.name}",
            [
                ("documents", c.document_count),
                ("chunks", c.chunk_count),
                ("embedding model", c.embedding_model),
                ("dimensions", c.dimensions),
            ],
        )
    )


@collections_app.command("delete")
def collections_delete(
    ctx: typer.Context, name: str, yes: YesOpt = False, as_json: JsonOpt = False
) -> None:
    """Delete a collection and all its documents."""
    _confirm(f"Delete collection {name} and all its documents", yes)
    with client_of(ctx) as client:
        result = client.delete_collection(name)
    if as_json:
        print_json(result)
    else:
        out.print(f"deleted collection {name} ({result.documents_deleted} documents)")


@documents_app.command("list")
def documents_list(
    ctx: typer.Context, collection: CollectionOpt, limit: LimitOpt = None, as_json: JsonOpt = False
) -> None:
    """The documents of a collection."""
    with client_of(ctx) as client:
        items = _take(client.list_documents(collection), limit)
    if as_json:
        print_json(items)
        return
    rows = [[d.document_id, d.title, d.chunk_count, json.dumps(d.metadata)] for d in items]
    out.print(table(None, ["document", "title", "chunks", "metadata"], rows))


@documents_app.command("get")
def documents_get(
    ctx: typer.Context, document_id: str, collection: CollectionOpt, as_json: JsonOpt = False
) -> None:
    """Show a document with its text."""
    with client_of(ctx) as client:
        d = client.get_document(collection, document_id)
    if as_json:
        print_json(d)
        return
    out.print(
        fields_table(
            f"Document {d.document_id}",
            [
                ("collection", d.collection),
                ("title", d.title),
                ("chunks", d.chunk_count),
                ("metadata", json.dumps(d.metadata)),
            ],
        )
    )
    out.print(d.content, markup=False)


@documents_app.command("delete")
def documents_delete(
    ctx: typer.Context,
    document_id: str,
    collection: CollectionOpt,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete a document and its chunks."""
    _confirm(f"Delete document {document_id} from {collection}", yes)
    with client_of(ctx) as client:
        result = client.delete_document(collection, document_id)
    if as_json:
        print_json(result)
    else:
        out.print(f"deleted document {document_id} ({result.chunks_deleted} chunks)")


# -- keys and usage ----------------------------------------------------------------------------
def _key_rows(keys: list[m.ApiKey]) -> list[list[Any]]:
    return [
        [
            k.key_id,
            k.name,
            k.tenant,
            " ".join(k.scopes),
            k.tier,
            enum_name(k.state, "API_KEY_STATE_"),
            k.prefix,
            when(k.create_time),
            when(k.expire_time),
            when(k.last_used_time),
        ]
        for k in keys
    ]


KEY_COLUMNS = [
    "key id",
    "name",
    "tenant",
    "scopes",
    "tier",
    "state",
    "prefix",
    "created",
    "expires",
    "last used",
]


def _print_secret(key: str) -> None:
    out.print(f"key: {key}", markup=False)
    err.print("[yellow]This is the only time the key is shown: store it now.[/yellow]")


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option("--tenant", help="The key's tenant.", show_default=False)],
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            "-s",
            help="A scope (repeatable): search, ingest, chat, embeddings, admin, ...",
            show_default=False,
        ),
    ],
    name: Annotated[str | None, typer.Option("--name", help="A label for people.")] = None,
    tier: Annotated[str | None, typer.Option("--tier", help="The rate-limit tier.")] = None,
    environment: Annotated[
        str | None, typer.Option("--environment", help="live (default) or test.")
    ] = None,
    ttl: Annotated[
        int | None, typer.Option("--ttl", min=1, help="Seconds until the key expires.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key; its secret is printed once."""
    env = f"KEY_ENVIRONMENT_{environment.upper()}" if environment else None
    with client_of(ctx) as client:
        created = client.create_api_key(
            tenant, scope, name=name, tier=tier, environment=env, ttl_seconds=ttl
        )
    if as_json:
        print_json(created)
        return
    out.print(table("Created", KEY_COLUMNS, _key_rows([created.api_key])))
    _print_secret(created.key)


@keys_app.command("list")
def keys_list(
    ctx: typer.Context,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's keys.")] = None,
    limit: LimitOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The API keys (never their secrets)."""
    with client_of(ctx) as client:
        keys = _take(client.list_api_keys(tenant=tenant), limit)
    if as_json:
        print_json(keys)
    else:
        out.print(table(None, KEY_COLUMNS, _key_rows(keys)))


@keys_app.command("get")
def keys_get(ctx: typer.Context, key_id: str, as_json: JsonOpt = False) -> None:
    """Show an API key's record."""
    with client_of(ctx) as client:
        key = client.get_api_key(key_id)
    if as_json:
        print_json(key)
    else:
        out.print(table(None, KEY_COLUMNS, _key_rows([key])))


@keys_app.command("rotate")
def keys_rotate(
    ctx: typer.Context,
    key_id: str,
    grace: Annotated[
        int | None,
        typer.Option("--grace", min=0, help="Seconds the old key keeps working."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Replace a key with a new one; the new secret is printed once."""
    with client_of(ctx) as client:
        rotated = client.rotate_api_key(key_id, grace_period_seconds=grace)
    if as_json:
        print_json(rotated)
        return
    keys = [rotated.api_key] + ([rotated.previous] if rotated.previous else [])
    out.print(table("Rotated (new, then previous)", KEY_COLUMNS, _key_rows(keys)))
    _print_secret(rotated.key)


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context, key_id: str, yes: YesOpt = False, as_json: JsonOpt = False
) -> None:
    """Revoke a key at once."""
    _confirm(f"Revoke key {key_id}", yes)
    with client_of(ctx) as client:
        key = client.revoke_api_key(key_id)
    if as_json:
        print_json(key)
    else:
        out.print(table("Revoked", KEY_COLUMNS, _key_rows([key])))


def _since(value: str) -> datetime:
    """`7d`, `12h`, `30m` before now, or an ISO 8601 time (UTC when it has no zone)."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if value[-1:] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is neither like 7d/12h/30m nor ISO 8601") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _stats_row(label: str, s: m.UsageStats) -> list[Any]:
    return [
        label,
        s.requests,
        s.errors,
        s.tokens_in,
        s.tokens_out,
        f"{s.cost_usd:.6f}",
        f"{s.cache_hit_rate:.0%}" if s.cache_lookups else "",
    ]


@app.command()
def usage(
    ctx: typer.Context,
    by: Annotated[str, typer.Option("--by", help="day or hour.")] = "day",
    since: Annotated[
        str | None,
        typer.Option("--since", help="Start: 7d, 12h, 30m ago, or an ISO 8601 time."),
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="End: as --since (default: now).")
    ] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Another tenant's usage (admin).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Requests, errors, tokens and cost by day or hour, and by endpoint."""
    if by not in ("day", "hour"):
        raise typer.BadParameter(f"{by!r} is not day or hour", param_hint="--by")
    with client_of(ctx) as client:
        result = client.get_usage(
            tenant=tenant,
            start_time=_since(since) if since else None,
            end_time=_since(until) if until else None,
            granularity=f"GRANULARITY_{by.upper()}",
        )
    if as_json:
        print_json(result)
        return
    columns = ["requests", "errors", "tokens in", "tokens out", "cost usd", "cache hit"]
    fmt = "%Y-%m-%d" if by == "day" else "%Y-%m-%d %H:00"
    rows = [
        _stats_row(p.start_time.strftime(fmt) if p.start_time else "", p.stats)
        for p in result.series
    ]
    span = f"{when(result.start_time)} to {when(result.end_time)}"
    t = table(f"Usage of {result.tenant} by {by}, {span} UTC", [by, *columns], rows)
    t.add_section()
    t.add_row(*(str(v) for v in _stats_row("total", result.total)), style="bold")
    out.print(t)
    out.print(
        table(
            "By endpoint",
            ["endpoint", *columns],
            [_stats_row(e.endpoint, e.stats) for e in result.endpoints],
        )
    )


@app.command()
def health(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """The gateway's view of the services (no key needed)."""
    with client_of(ctx) as client:
        h = client.health()
    if as_json:
        print_json(h)
        return
    out.print(
        table(
            f"{h.status} (version {h.version})",
            ["component", "status"],
            sorted(h.components.items()),
        )
    )
    if h.status != "SERVING":
        raise typer.Exit(Exit.UNAVAILABLE)
