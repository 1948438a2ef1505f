"""Gateway overhead: a cheap endpoint through Envoy with no auth, an API key and a JWT.

    .venv/bin/python -m bench gateway [--seconds 5] [--concurrency 8] [--rounds 3]

One throwaway stack; two more Envoy processes beside the stack's own, rendered from the
same template with different switches, all in front of the same services:
  - `none`:    no authentication, no rate limits (GatewayConfig.auth_enabled=False).
  - `api key`: ext_authz to the auth service on every request.
  - `jwt`:     a JWT from POST /api/v1/tokens, verified by Envoy's jwt_authn (no auth call).
Both authenticated columns run without the global limiter (its cost is the separate
`+ratelimit` rows, measured on the stack's own Envoy). Columns are interleaved round by
round so a noisy shared machine hits each alike. Requests/s and p50/p99 latency of
GET /api/v1/embedding-models (served by the embedder from memory) at a fixed concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from bench.stack import DEV_HEADERS, bench_stack
from ragline_stack.envoy_config import CHAT_HTTP, GatewayConfig, render
from ragline_stack.stack import ROOT, Stack, free_port

PATH = "/api/v1/embedding-models"
ENVOY = Path(sys.executable).parent / "envoy"


async def _load(
    base_url: str, headers: dict[str, str], seconds: float, concurrency: int
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    errors = 0
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits) as client:
        await client.get(PATH)

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                reply = await client.get(PATH)
                if reply.status_code != 200:
                    errors += 1
                    statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
                latencies.append(time.perf_counter() - started)

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - begin
    if errors:
        raise SystemExit(f"{errors} requests failed against {base_url}: {statuses}")
    return len(latencies) / elapsed, latencies


def _extra_envoy(stack: Stack, name: str, **switches: bool) -> tuple[subprocess.Popen[bytes], str]:
    gateway = dataclasses.replace(
        _gateway(stack),
        api_port=free_port(),
        admin_port=free_port(),
        # The per-instance burst bucket must not throttle the load generator.
        burst_max_tokens=1_000_000,
        burst_tokens_per_s=1_000_000,
        **switches,
    )
    path = stack.cfg.run_dir / f"envoy-{name}.yaml"
    path.write_text(render(gateway))
    log = open(stack.cfg.log_dir / f"envoy-{name}.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            str(ENVOY),
            "-c",
            str(path),
            "--disable-hot-restart",
            "--log-level",
            "warn",
            "--base-id",
            str(gateway.api_port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    log.close()
    return proc, f"http://127.0.0.1:{gateway.api_port}"


def _gateway(stack: Stack) -> GatewayConfig:
    """The stack's own gateway settings (as Stack.write_envoy_config renders them)."""
    return GatewayConfig(
        api_port=stack.cfg.api_port,
        admin_port=stack.cfg.admin_port,
        descriptor_path=ROOT / "gen" / "ragline.binpb",
        service_addrs={
            **{s: stack.cfg.service_addr(s) for s in stack.cfg.service_ports},
            CHAT_HTTP: f"127.0.0.1:{stack.cfg.chat_http_port}",
        },
        request_timeout_s=stack.cfg.request_timeout_s,
        max_request_bytes=stack.cfg.max_request_bytes,
        ratelimit_addr=f"127.0.0.1:{stack.cfg.ratelimit_port}",
    )


def _wait_ready(base_url: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base_url + PATH, headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{base_url} not ready")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="gateway auth overhead")
    parser.add_argument("--seconds", type=float, default=5.0, help="per cell per round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with bench_stack() as stack:
        plain, plain_url = _extra_envoy(stack, "noauth", auth_enabled=False)
        authed, authed_url = _extra_envoy(stack, "auth", ratelimit_enabled=False)
        bare, bare_url = _extra_envoy(
            stack, "auth-nolog", ratelimit_enabled=False, usage_logging=False
        )
        try:
            _wait_ready(plain_url, {})
            _wait_ready(authed_url, DEV_HEADERS)
            _wait_ready(bare_url, DEV_HEADERS)
            token = httpx.post(
                authed_url + "/api/v1/tokens", json={}, headers=DEV_HEADERS, timeout=10
            ).json()["access_token"]
            jwt_headers = {"Authorization": f"Bearer {token}"}
            _wait_ready(authed_url, jwt_headers)
            cells = {
                "none": (plain_url, {}),
                "api key": (authed_url, DEV_HEADERS),
                "jwt": (authed_url, jwt_headers),
                "api key, no usage log": (bare_url, DEV_HEADERS),
                "jwt, no usage log": (bare_url, jwt_headers),
                "api key +ratelimit": (stack.cfg.base_url, DEV_HEADERS),
                "jwt +ratelimit": (stack.cfg.base_url, jwt_headers),
            }
            rps: dict[str, list[float]] = {name: [] for name in cells}
            lat: dict[str, list[float]] = {name: [] for name in cells}
            for _ in range(args.rounds):
                for name, (url, headers) in cells.items():
                    r, times = asyncio.run(_load(url, headers, args.seconds, args.concurrency))
                    rps[name].append(r)
                    lat[name] += times
        finally:
            for proc in (plain, authed, bare):
                proc.terminate()
                proc.wait(10)
    base = statistics.median(rps["none"])
    print(
        f"\nGET {PATH} through Envoy, concurrency {args.concurrency}, "
        f"{args.rounds} rounds x {args.seconds:g}s per cell (median of rounds)\n"
    )
    print(f"{'auth':<24}{'req/s':>9}{'vs none':>9}{'p50 ms':>9}{'p99 ms':>9}")
    for name in cells:
        value = statistics.median(rps[name])
        q = statistics.quantiles(lat[name], n=100)
        print(
            f"{name:<24}{value:>9.0f}{value / base - 1:>+9.1%}{q[49] * 1000:>9.2f}"
            f"{q[98] * 1000:>9.2f}"
        )
    print("\ntargets: jwt >= -10% of none, api key >= -35% of none")


if __name__ == "__main__":
    main()
