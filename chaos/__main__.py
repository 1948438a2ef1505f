"""python -m chaos [--profile short|long] [--scenario NAME ...] [--no-doc]

Starts a stack on free loopback ports, runs the scenarios one after the other on it, prints
the results table, updates docs/reliability.md, stops everything it started and exits 1
if any invariant was violated (or a scenario could not run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from chaos.harness import chaos_stack, recorder, seed_decoy
from chaos.invariants import Verdict
from chaos.profiles import PROFILES, Profile
from chaos.report import row, update_doc
from chaos.scenarios import SCENARIOS as FAULTS
from chaos.scenarios import Result
from chaos.soak import soak

SCENARIOS = {**FAULTS, "soak": soak}

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


async def run(profile: Profile, names: list[str], base_url: str, cs: object) -> list[Result]:
    results: list[Result] = []
    async with recorder(base_url) as rec:
        await seed_decoy(rec)
        for name in names:
            started = time.monotonic()
            print(f"chaos: {name} ...", file=sys.stderr, flush=True)
            try:
                result = await SCENARIOS[name](cs, rec, profile)  # type: ignore[arg-type]
            except Exception as exc:
                traceback.print_exc()
                result = Result(
                    name,
                    "-",
                    "-",
                    "did not complete",
                    [Verdict("ran", False, f"{type(exc).__name__}: {exc}"[:300])],
                )
            result.seconds = time.monotonic() - started
            print(
                f"chaos: {name} {'ok' if result.ok else 'VIOLATED'} in {result.seconds:.0f}s",
                file=sys.stderr,
                flush=True,
            )
            results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="short")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted(SCENARIOS),
        help="run only these (repeatable); default: all, in priority order",
    )
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/reliability.md")
    parser.add_argument("--keep", action="store_true", help="keep the run folder (logs)")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    # Stopped from outside (SIGTERM): unwind, so the stack's processes are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    names = args.scenario or list(SCENARIOS)
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    with chaos_stack(keep=args.keep) as cs:
        print(f"chaos: stack up in {cs.cfg.run_dir}", file=sys.stderr, flush=True)
        results = asyncio.run(run(profile, names, cs.cfg.base_url, cs))
    load = f"{load_before:.1f}→{os.getloadavg()[0]:.1f} ({os.cpu_count()} cores)"
    date = datetime.now(UTC).strftime("%Y-%m-%d")
    rows = [
        row(
            r.scenario,
            r.fault,
            r.load,
            f"{r.figures} ({r.seconds:.0f}s)",
            "; ".join([*(v.cell() for v in r.verdicts), *(t.target_cell() for t in r.targets)]),
            profile.name,
            date,
            load,
        )
        for r in results
    ]
    print(
        f"\nchaos {profile.name}: {len(results)} scenarios in {time.monotonic() - started:.0f}s, "
        f"load {load}\n"
    )
    for r in results:
        print(
            f"{r.scenario}: {'ok' if r.ok else 'VIOLATED'}\n  fault: {r.fault}\n  load: {r.load}"
            f"\n  figures: {r.figures}"
        )
        for v in r.verdicts:
            print(f"  {'ok ' if v.ok else 'BAD'} {v.name}: {v.detail}")
        for t in r.targets:
            print(f"  target {t.name}: {'met' if t.ok else 'MISSED'} ({t.detail})")
    if not args.no_doc:
        update_doc(DOC, rows)
        print(f"\nupdated {DOC}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
