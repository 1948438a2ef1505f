"""How big each scenario is, per profile: the short one fits beside `make test` in CI, the
long one is for the bench."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    # Scenario 1: documents ingested and kill -9s of the ingest service meanwhile.
    ingest_docs: int
    ingest_kills: int
    # Scenario 2: seconds of steady search load around one kill -9 of a retriever replica.
    replica_load_s: float
    # Scenario 5 / 4 / 6: seconds each component is down.
    db_down_s: float
    redis_down_s: float
    auth_down_s: float
    # Scenario 3: the services sent SIGTERM under load, one after the other.
    sigterm_services: tuple[str, ...]
    # Concurrent clients of each load.
    clients: int
    # Scenario 7: embeddings and chats per provider phase (healthy, 429, 503, slow).
    provider_requests: int
    # Scenario 8: seconds of each network phase (healed: three times as long).
    network_phase_s: float
    # Scenario 9: seconds of each step of the capacity ramp, and of the 2x overload.
    overload_step_s: float
    overload_s: float
    # Scenario 10: seconds of the soak, between two samples of every process, and of the
    # closed loop that measures the mix's capacity first.
    soak_s: float
    soak_sample_s: float
    soak_capacity_s: float


SHORT = Profile(
    name="short",
    ingest_docs=200,
    ingest_kills=2,
    replica_load_s=12.0,
    db_down_s=10.0,
    redis_down_s=10.0,
    auth_down_s=5.0,
    sigterm_services=("retriever",),
    clients=4,
    provider_requests=10,
    network_phase_s=6.0,
    overload_step_s=4.0,
    overload_s=10.0,
    soak_s=45.0,
    soak_sample_s=3.0,
    soak_capacity_s=8.0,
)

LONG = Profile(
    name="long",
    ingest_docs=2000,
    ingest_kills=5,
    replica_load_s=40.0,
    db_down_s=20.0,
    redis_down_s=30.0,
    auth_down_s=15.0,
    sigterm_services=("embedder", "retriever", "chat", "ingest", "auth"),
    clients=8,
    provider_requests=50,
    network_phase_s=20.0,
    overload_step_s=10.0,
    overload_s=30.0,
    soak_s=1800.0,
    soak_sample_s=15.0,
    soak_capacity_s=30.0,
)

PROFILES = {p.name: p for p in (SHORT, LONG)}
