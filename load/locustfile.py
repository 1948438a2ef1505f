"""Load test of the documented endpoints with a realistic mix (make load).

Each simulated user is a client app: mostly searches and chats, some embeddings, the
occasional ingest and health check. A collection is seeded once at the start. The summary
printed at the end gives requests/s, p50/p95/p99 and the error rate per endpoint.
"""

from __future__ import annotations

import os
import random
import uuid

from locust import HttpUser, between, events, task

API_KEY = os.environ.get("RAGLINE_API_KEY", "dev-key-1")
HEADERS = {"Authorization": f"Bearer {API_KEY}"}
COLLECTION = os.environ.get("RAGLINE_LOAD_COLLECTION", f"load-{uuid.uuid4().hex[:8]}")
TOPICS = [
    "vector databases",
    "envoy proxy",
    "python packaging",
    "sourdough bread",
    "kubernetes autoscaling",
    "prometheus alerts",
    "tomato soup",
    "grpc streaming",
]
SEED = [
    {
        "title": t.title(),
        "content": f"A short guide to {t}. " * 20,
        "metadata": {"topic": t.split()[0]},
    }
    for t in TOPICS
]


@events.test_start.add_listener
def seed(environment, **_kwargs):
    import httpx

    reply = httpx.post(
        f"{environment.host}/api/v1/ingest",
        headers=HEADERS,
        timeout=120,
        json={"collection": COLLECTION, "documents": SEED},
    )
    reply.raise_for_status()


@events.quitting.add_listener
def summary(environment, **_kwargs):
    stats = environment.stats
    print(
        f"\n{'endpoint':<34}{'requests':>9}{'req/s':>8}{'p50 ms':>8}{'p95 ms':>8}"
        f"{'p99 ms':>8}{'errors':>8}"
    )
    for entry in sorted(stats.entries.values(), key=lambda e: e.name):
        print(
            f"{entry.method + ' ' + entry.name:<34}{entry.num_requests:>9}"
            f"{entry.total_rps:>8.1f}{entry.get_response_time_percentile(0.5):>8.0f}"
            f"{entry.get_response_time_percentile(0.95):>8.0f}"
            f"{entry.get_response_time_percentile(0.99):>8.0f}"
            f"{entry.fail_ratio:>8.1%}"
        )
    total = stats.total
    print(
        f"{'total':<34}{total.num_requests:>9}{total.total_rps:>8.1f}"
        f"{total.get_response_time_percentile(0.5):>8.0f}"
        f"{total.get_response_time_percentile(0.95):>8.0f}"
        f"{total.get_response_time_percentile(0.99):>8.0f}{total.fail_ratio:>8.1%}"
    )


class ApiUser(HttpUser):
    wait_time = between(0.5, 2.0)

    @task(10)
    def search(self):
        self.client.post(
            "/api/v1/search",
            headers=HEADERS,
            name="/api/v1/search",
            json={"query": random.choice(TOPICS), "collection": COLLECTION, "limit": 5},
        )

    @task(3)
    def search_filtered(self):
        self.client.post(
            "/api/v1/search",
            headers=HEADERS,
            name="/api/v1/search (filter)",
            json={
                "query": random.choice(TOPICS),
                "collection": COLLECTION,
                "filters": {"topic": {"$in": ["vector", "envoy"]}},
            },
        )

    @task(5)
    def chat(self):
        self.client.post(
            "/api/v1/chat",
            headers=HEADERS,
            name="/api/v1/chat",
            json={
                "message": f"What is {random.choice(TOPICS)}?",
                "collection": COLLECTION,
                "model": "extractive",
            },
        )

    @task(5)
    def embed(self):
        self.client.post(
            "/api/v1/embeddings",
            headers=HEADERS,
            name="/api/v1/embeddings",
            json={"text": f"{random.choice(TOPICS)} {random.random()}"},
        )

    @task(2)
    def embed_batch(self):
        self.client.post(
            "/api/v1/embeddings",
            headers=HEADERS,
            name="/api/v1/embeddings (batch 16)",
            json={"texts": [f"{t} {random.random()}" for t in TOPICS * 2]},
        )

    @task(1)
    def ingest(self):
        self.client.post(
            "/api/v1/ingest",
            headers=HEADERS,
            name="/api/v1/ingest",
            json={
                "collection": COLLECTION,
                "documents": [{"title": "note", "content": f"Load test note {uuid.uuid4().hex}."}],
            },
        )

    @task(1)
    def health(self):
        self.client.get("/health", name="/health")
