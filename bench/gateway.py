"""Gateway overhead: a cheap endpoint through Envoy with no auth, an API key and a JWT.

    .venv/bin/python -m bench gateway [--seconds 5] [--concurrency 32] [--rounds 3]

One throwaway stack; five more Envoy processes beside the stack's own, rendered from the
same template with different switches (and no burst bucket), all in front of the same
services:
  - `none`:    no authentication, no rate limits (GatewayConfig.auth_enabled=False).
  - `api key`: the auth service's answer for the key, reused by the gateway's key cache
               (envoy/key_cache.lua) for GATEWAY_KEY_CACHE_TTL (1 s).
  - `api key, no key cache`: ext_authz to the auth service on every request.
  - `jwt`:     a JWT from POST /api/v1/tokens, verified by Envoy's jwt_authn (no auth call).
The authenticated columns run without the global limiter (its cost is the separate
`+ratelimit` rows; the bench stack raises every limit 1000-fold so none is reached).
Columns are interleaved round by round, each round starting one column later, so a noisy
shared machine (and whatever the previous column left running) hits each alike.
Requests/s and p50/p99 latency of GET /api/v1/embedding-models (served by the embedder from
memory) at a fixed concurrency, high enough (32) to saturate the machine: the ratios are
then what auth costs in throughput, not in the latency of a half-idle system. On 2 cores
the embedder's single event loop bounds throughput, so the total server CPU per request
(with its ratio to `none`) is the steadier measure of a column's cost.

The load comes from bombardier (Go, `scripts/install_go_tools.sh bombardier`): an httpx
client in this process needed about as much CPU per request as Envoy and the embedder
together, so on 2 cores it capped the `none` column and flattened every ratio. The CPU
columns say where the servers' time went (CPU µs per request, in total and per component).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.stack import DEV_HEADERS, bench_stack
from ragline_core.caller import IDENTITY_HEADER, Authenticator, Caller, InternalTokens
from ragline_stack.envoy_config import CHAT_HTTP, GatewayConfig, render
from ragline_stack.stack import ROOT, Stack, free_port

PATH = "/api/v1/embedding-models"
ENVOY = Path(sys.executable).parent / "envoy"
BOMBARDIER = ROOT / ".bin" / "bombardier"
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class Cell:
    """One column's measurements over the rounds."""

    rps: list[float] = dataclasses.field(default_factory=list)
    p50_ms: list[float] = dataclasses.field(default_factory=list)
    p99_ms: list[float] = dataclasses.field(default_factory=list)
    # Server CPU seconds per request, per component.
    cpu: dict[str, list[float]] = dataclasses.field(default_factory=dict)


def _session_cpu() -> dict[int, float]:
    """CPU seconds used so far by each session (every component runs in its own)."""
    used: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        session = int(fields[3])
        used[session] = used.get(session, 0.0) + (int(fields[11]) + int(fields[12])) / _TICKS
    return used


def _load(
    base_url: str,
    headers: dict[str, str],
    seconds: float,
    concurrency: int,
    body_file: Path | None = None,
    path: str = PATH,
) -> tuple[int, float, float, float]:
    """requests done, requests/s, p50 and p99 latency in ms (a POST of `body_file` if any)."""
    argv = [str(BOMBARDIER), "-c", str(concurrency), "-d", f"{seconds}s", "-l", "-p", "r"]
    argv += ["-o", "json"]
    if body_file is not None:
        argv += ["-m", "POST", "-f", str(body_file), "-H", "content-type: application/json"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, base_url + path], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)["result"]
    done = sum(result[f"req{n}xx"] for n in range(1, 6)) + result["others"]
    if result["req2xx"] != done or result.get("errors"):
        raise SystemExit(f"requests failed against {base_url}: {out.stdout}")
    pct = result["latency"]["percentiles"]
    return done, done / result["timeTakenSeconds"], pct["50"] / 1000, pct["99"] / 1000


def _extra_envoy(stack: Stack, name: str, **switches: Any) -> tuple[subprocess.Popen[bytes], str]:
    gateway = dataclasses.replace(
        _gateway(stack),
        api_port=free_port(),
        admin_port=free_port(),
        metrics_port=free_port(),
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
        # Its own session, so its CPU is counted apart (_session_cpu).
        start_new_session=True,
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
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--body-check-only", action="store_true", help="only the unknown-field check's cost"
    )
    parser.add_argument("--mtls-only", action="store_true", help="only mutual TLS's cost")
    parser.add_argument(
        "--sdk-only", action="store_true", help="only the Python SDK's cost on a REST search"
    )
    parser.add_argument("--requests", type=int, default=200, help="per SDK column per round")
    args = parser.parse_args(argv)
    if args.sdk_only:
        from bench import sdk

        with bench_stack() as stack:
            times = sdk.measure(stack, args.rounds, args.requests)
        sdk.report(times, args.rounds, args.requests)
        return
    if not BOMBARDIER.exists():
        subprocess.run(["scripts/install_go_tools.sh", "bombardier"], cwd=ROOT, check=True)
    from bench import mtls  # here: it imports this module's load helpers

    if args.mtls_only:
        mtls.report(mtls.measure(args), args)
        return
    with bench_stack() as stack:
        # No authentication: every request acts as one tenant, with a token minted here
        # (the services verify it as they verify the auth service's).
        fixed = InternalTokens(stack.cfg.env()["INTERNAL_TOKEN_KEYS"].split(",")).mint(
            Caller("bench", "bench", ("embeddings",)), ttl_s=86_400
        )
        if args.body_check_only:
            _print_body_check(_body_check(stack, fixed, args), args)
            return
        plain, plain_url = _extra_envoy(stack, "noauth", auth_enabled=False, static_identity=fixed)
        authed, authed_url = _extra_envoy(stack, "auth", ratelimit_enabled=False)
        uncached, uncached_url = _extra_envoy(
            stack, "auth-nocache", ratelimit_enabled=False, key_cache=False
        )
        bare, bare_url = _extra_envoy(
            stack, "auth-nolog", ratelimit_enabled=False, usage_logging=False
        )
        limited, limited_url = _extra_envoy(stack, "auth-limit")
        extra = (plain, authed, uncached, bare, limited)
        components: dict[str, list[int | None]] = {
            "envoy": [p.pid for p in extra],
            "auth": [stack.pid("auth")],
            "embedder": [stack.pid("embedder")],
            "ferretdb": [stack.pid("ferretdb")],
            "other": [stack.pid(n) for n in ("redis", "ratelimit", "retriever", "chat", "ingest")],
        }
        try:
            _wait_ready(plain_url, {})
            _wait_ready(authed_url, DEV_HEADERS)
            _wait_ready(uncached_url, DEV_HEADERS)
            _wait_ready(bare_url, DEV_HEADERS)
            _wait_ready(limited_url, DEV_HEADERS)
            token = httpx.post(
                authed_url + "/api/v1/tokens", json={}, headers=DEV_HEADERS, timeout=10
            ).json()["access_token"]
            jwt_headers = {"Authorization": f"Bearer {token}"}
            _wait_ready(authed_url, jwt_headers)
            targets = {
                "none": (plain_url, {}),
                "api key": (authed_url, DEV_HEADERS),
                "jwt": (authed_url, jwt_headers),
                "api key, no key cache": (uncached_url, DEV_HEADERS),
                "api key, no usage log": (bare_url, DEV_HEADERS),
                "jwt, no usage log": (bare_url, jwt_headers),
                "api key +ratelimit": (limited_url, DEV_HEADERS),
                "jwt +ratelimit": (limited_url, jwt_headers),
            }
            cells = {name: Cell() for name in targets}
            names = list(targets)
            for round_no in range(args.rounds):
                shift = round_no % len(names)
                for name in names[shift:] + names[:shift]:
                    url, headers = targets[name]
                    before = _session_cpu()
                    done, rps, p50, p99 = _load(url, headers, args.seconds, args.concurrency)
                    # Usage entries still in flight are the sink's work for this cell.
                    time.sleep(1.5)
                    after = _session_cpu()
                    cell = cells[name]
                    cell.rps.append(rps)
                    cell.p50_ms.append(p50)
                    cell.p99_ms.append(p99)
                    for comp, pids in components.items():
                        used = sum(after.get(p, 0) - before.get(p, 0) for p in pids if p)
                        cell.cpu.setdefault(comp, []).append(used / done)
        finally:
            for proc in extra:
                proc.terminate()
                proc.wait(10)
        body_cells = _body_check(stack, fixed, args)
        from bench import sdk

        sdk_times = sdk.measure(stack, args.rounds, args.requests)
    _print(cells, args, list(components))
    _print_body_check(body_cells, args)
    sdk.report(sdk_times, args.rounds, args.requests)
    mtls.report(mtls.measure(args), args)


# POST bodies for the unknown-field check (envoy/json_fields.lua): a small request, and a
# large one whose string the scan must skip, escapes and all (the embedder answers both from
# its cache after the first call).
_BODIES = {
    "small (70 B)": {"texts": ["What does Envoy do?"], "model": "all-MiniLM-L6-v2"},
    "large (64 KiB)": {"texts": ['Envoy "transcodes" JSON.\n' * 2600]},
}
_EMBEDDINGS = "/api/v1/embeddings"


def _body_check(stack: Stack, identity: str, args: argparse.Namespace) -> dict[str, Cell]:
    """Envoy's CPU per POST with the unknown-field check on and off (no auth, so Envoy's
    own work is mostly the body: buffer, the Lua filter, the transcoder)."""
    envoys = {
        on: _extra_envoy(
            stack,
            f"fields-{on}",
            auth_enabled=False,
            static_identity=identity,
            json_field_check=on,
        )
        for on in (True, False)
    }
    cells: dict[str, Cell] = {}
    try:
        for _, url in envoys.values():
            _wait_ready(url, {})
        for label, body in _BODIES.items():
            body_file = stack.cfg.run_dir / f"body-{len(cells)}.json"
            body_file.write_text(json.dumps(body))
            httpx.post(envoys[True][1] + _EMBEDDINGS, json=body, timeout=60).raise_for_status()
            for on in (True, False):
                cells[f"{label}, check {'on' if on else 'off'}"] = Cell()
            for round_no in range(args.rounds):
                order = (True, False) if round_no % 2 == 0 else (False, True)
                for on in order:
                    proc, url = envoys[on]
                    before = _session_cpu()
                    done, rps, p50, p99 = _load(
                        url, {}, args.seconds, args.concurrency, body_file, _EMBEDDINGS
                    )
                    after = _session_cpu()
                    cell = cells[f"{label}, check {'on' if on else 'off'}"]
                    cell.rps.append(rps)
                    cell.p50_ms.append(p50)
                    cell.p99_ms.append(p99)
                    used = after.get(proc.pid, 0) - before.get(proc.pid, 0)
                    cell.cpu.setdefault("envoy", []).append(used / done)
    finally:
        for proc, _ in envoys.values():
            proc.terminate()
            proc.wait(10)
    return cells


def _print_body_check(cells: dict[str, Cell], args: argparse.Namespace) -> None:
    med = statistics.median
    print(
        f"\nPOST {_EMBEDDINGS} without auth, unknown-field check on/off, concurrency "
        f"{args.concurrency}, {args.rounds} rounds x {args.seconds:g}s (median of rounds)\n"
    )
    print(f"{'body':<28}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'Envoy CPU µs/req':>18}")
    for name, cell in cells.items():
        print(
            f"{name:<28}{med(cell.rps):>8.0f}{med(cell.p50_ms):>8.2f}{med(cell.p99_ms):>8.2f}"
            f"{med(cell.cpu['envoy']) * 1e6:>18.0f}"
        )


def _total_cpu(cell: Cell) -> float:
    """Median over the rounds of all servers' CPU seconds per request."""
    rounds = zip(*cell.cpu.values(), strict=True)
    totals: list[float] = [sum(per_component) for per_component in rounds]
    return statistics.median(totals)


def _print(cells: dict[str, Cell], args: argparse.Namespace, components: list[str]) -> None:
    med = statistics.median
    base = med(cells["none"].rps)
    print(
        f"\nGET {PATH} through Envoy, bombardier, concurrency {args.concurrency}, "
        f"{args.rounds} rounds x {args.seconds:g}s per cell (median of rounds)\n"
    )
    cpu_cols = "".join(f"{c:>10}" for c in components)
    base_cpu = _total_cpu(cells["none"])
    print(f"{'':<57}server CPU µs per request")
    print(
        f"{'auth':<24}{'req/s':>8}{'vs none':>9}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'total':>8}{'vs none':>9}{cpu_cols}"
    )
    for name, cell in cells.items():
        value = med(cell.rps)
        total = _total_cpu(cell)
        cpu = "".join(f"{med(cell.cpu[c]) * 1e6:>10.0f}" for c in components)
        print(
            f"{name:<24}{value:>8.0f}{value / base - 1:>+9.1%}{med(cell.p50_ms):>8.2f}"
            f"{med(cell.p99_ms):>8.2f}{total * 1e6:>8.0f}{total / base_cpu - 1:>+9.1%}{cpu}"
        )
    print("\ntargets: jwt >= -10% of none, api key >= -35% of none")
    _print_identity_cost()


def _print_identity_cost(calls: int = 2000) -> None:
    """What the signed identity costs a service per call, in this process: verifying a
    token it has not seen (once per token), one it remembers (every other call), and
    minting one for an outgoing call (once per half lifetime)."""
    keys = ["b" * 48]
    auth = Authenticator(InternalTokens(keys), None)
    who = Caller("bench", "key_bench", ("embeddings", "search"), "standard", "api_key")
    fresh = [auth.internal.mint(who, ttl_s=60 + i) for i in range(calls)]

    def per_call(run: Callable[[int], object]) -> float:
        started = time.perf_counter()
        for i in range(calls):
            run(i)
        return (time.perf_counter() - started) / calls * 1e6

    async def measure() -> tuple[float, float]:
        loop_started = time.perf_counter()
        for token in fresh:
            await auth.caller([(IDENTITY_HEADER, token)])
        first = (time.perf_counter() - loop_started) / calls * 1e6
        loop_started = time.perf_counter()
        for token in fresh:
            await auth.caller([(IDENTITY_HEADER, token)])
        return first, (time.perf_counter() - loop_started) / calls * 1e6

    first, remembered = asyncio.run(measure())
    mint = per_call(lambda i: auth.internal.mint(who))
    print(
        f"\nsigned identity per service call (in process, µs): verify a new token {first:.0f}, "
        f"a remembered one {remembered:.1f}; mint for an outgoing call {mint:.0f}"
    )


if __name__ == "__main__":
    main()
