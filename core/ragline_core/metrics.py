"""Prometheus metrics shared by every service.

Names follow Prometheus conventions (base units in names, `_total` for counters) and
labels stay bounded: method names, codes, models, providers, tenants; never raw queries
or ids. With API_WORKERS > 1 the bootstrap switches prometheus_client to multiprocess
mode before this module is imported.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)
from prometheus_client import multiprocess as prom_multiprocess

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)

RPC_REQUESTS = Counter(
    "ragline_rpc_requests_total",
    "gRPC requests handled, by method and status code.",
    ["service", "method", "code"],
)
RPC_DURATION = Histogram(
    "ragline_rpc_duration_seconds",
    "gRPC request latency.",
    ["service", "method"],
    buckets=_LATENCY_BUCKETS,
)
IN_FLIGHT_REFUSED = Counter(
    "ragline_admission_refused_total",
    "Calls refused at once with SERVER_BUSY because the process was at MAX_IN_FLIGHT.",
    ["service"],
)
CACHE_REQUESTS = Counter(
    "ragline_cache_requests_total",
    "Cache lookups by cache and result (hit, miss, error).",
    ["cache", "result"],
)
PROVIDER_REQUESTS = Counter(
    "ragline_provider_requests_total",
    "Calls to model providers by outcome (ok, retried, retry_throttled, error).",
    ["provider", "model", "outcome"],
)
PROVIDER_DURATION = Histogram(
    "ragline_provider_duration_seconds",
    "Latency of one model provider call attempt.",
    ["provider", "model"],
    buckets=_LATENCY_BUCKETS,
)
TOKENS = Counter(
    "ragline_tokens_total",
    "Model tokens by provider, model, direction (input, output) and tenant.",
    ["provider", "model", "direction", "tenant"],
)
COST = Counter(
    "ragline_cost_usd_total",
    "Estimated model spend in US dollars by provider, model and tenant.",
    ["provider", "model", "tenant"],
)
EMBEDDED_TEXTS = Counter(
    "ragline_embedded_texts_total",
    "Texts embedded, by model and whether they came from the cache.",
    ["model", "source"],
)
INGEST_DOCUMENTS = Counter(
    "ragline_ingest_documents_total",
    "Documents processed by ingest jobs, by outcome (done, unchanged, failed).",
    ["outcome"],
)
INGEST_CHUNKS = Counter("ragline_ingest_chunks_total", "Chunks written by ingest jobs.")
INGEST_JOBS = Counter(
    "ragline_ingest_jobs_total", "Ingest jobs finished, by final state.", ["state"]
)
INGEST_JOB_DURATION = Histogram(
    "ragline_ingest_job_duration_seconds",
    "Time from an ingest job's creation to its end.",
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 10800),
)
INDEX_CHUNKS = Gauge(
    "ragline_index_chunks",
    "Searchable chunks in a retriever replica's index, per collection.",
    ["tenant", "collection"],
    multiprocess_mode="max",
)

INDEX_CHECKSUM = Gauge(
    "ragline_index_chunk_ids_checksum",
    "XOR of 48-bit hashes of the chunk ids in a replica's index (equal across replicas and "
    "to the database's when they hold the same chunks), per collection.",
    ["tenant", "collection"],
    multiprocess_mode="max",
)
INDEX_GAP_CHUNKS = Gauge(
    "ragline_index_gap_chunks",
    "Chunk ids that a replica's index and the database disagree on, found by the last "
    "reconciliation (then repaired); 0 when they agree.",
    ["tenant", "collection"],
    multiprocess_mode="max",
)
INDEX_VERSION_LAG = Gauge(
    "ragline_index_version_lag",
    "Collection versions the database has and a replica's index has not applied yet.",
    ["tenant", "collection"],
    multiprocess_mode="max",
)
INDEX_REPAIRS = Counter(
    "ragline_index_repairs_total",
    "Collections a retriever replica reloaded because its index was incomplete or wrong, "
    "by reason (lost_entries, reconcile, behind_at_search).",
    ["reason"],
)


def start_metrics_server(host: str, port: int) -> None:
    """Serves /metrics; in multiprocess mode it aggregates every worker's samples."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        start_http_server(port, addr=host, registry=registry)
    else:
        start_http_server(port, addr=host)
