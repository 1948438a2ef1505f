"""python -m ragline_stack up|down|status — the local stack behind `make run`/`make stop`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from dotenv import dotenv_values

from ragline_stack.stack import ROOT, Stack, StackConfig
from ragline_stack.status import component_status, render


def config_from_env() -> StackConfig:
    """Ports from the environment (and .env via the Makefile), defaults otherwise."""
    cfg = StackConfig(run_dir=Path(os.environ.get("RAGLINE_RUN_DIR", ROOT / "run")))
    cfg.api_port = int(os.environ.get("API_PORT", cfg.api_port))
    cfg.admin_port = int(os.environ.get("ENVOY_ADMIN_PORT", cfg.admin_port))
    cfg.envoy_metrics_port = int(os.environ.get("ENVOY_METRICS_PORT", cfg.envoy_metrics_port))
    cfg.request_timeout_s = float(os.environ.get("REQUEST_TIMEOUT", cfg.request_timeout_s))
    cfg.database = os.environ.get("MONGODB_DATABASE", cfg.database)
    # On unless turned off: the local stack runs the zero-trust setup production runs.
    dotenv = dotenv_values(ROOT / ".env") if (ROOT / ".env").exists() else {}
    setting = os.environ.get("INTERNAL_TLS") or dotenv.get("INTERNAL_TLS") or "true"
    cfg.internal_tls = setting.strip().lower() != "false"
    if os.environ.get("CORS_ORIGINS"):
        cfg.cors_origins = list(json.loads(os.environ["CORS_ORIGINS"]))
    for name, port in (
        ("MONGO_PORT", "mongo_port"),
        ("REDIS_PORT", "redis_port"),
        ("RATELIMIT_PORT", "ratelimit_port"),
    ):
        if name in os.environ:
            setattr(cfg, port, int(os.environ[name]))
    for service in list(cfg.service_ports):
        addr = os.environ.get(f"{service.upper()}_ADDR")
        if addr:
            cfg.service_ports[service] = int(addr.rpartition(":")[2])
        metrics = os.environ.get(f"{service.upper()}_METRICS_PORT")
        if metrics:
            cfg.metrics_ports[service] = int(metrics)
    return cfg


def main() -> int:
    parser = argparse.ArgumentParser(prog="ragline_stack")
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--json", action="store_true", help="status as JSON")
    args = parser.parse_args()
    cfg = config_from_env()
    stack = Stack(cfg)
    if args.command == "down":
        stack.stop_all()
        print("ragline stopped")
        return 0
    if args.command == "status":
        components = [component_status(stack, name) for name in stack.components()]
        status, body = stack.health()
        if args.json:
            processes = [dataclasses.asdict(c) for c in components]
            out = {"processes": processes, "health_status": status, "health": body}
            print(json.dumps(out, indent=2))
        else:
            print(render(components))
            print(f"\n/health: {status}\n{body}")
        return 0 if status == 200 else 1
    already = all(stack.pid(n) for n in stack.components())
    try:
        stack.start_all()
    except KeyboardInterrupt:
        print("\ninterrupted: stopping what was started", file=sys.stderr)
        stack.stop_all()
        return 130
    except RuntimeError as exc:
        print(f"start-up failed: {exc}", file=sys.stderr)
        print(f"logs: {cfg.log_dir}", file=sys.stderr)
        return 1
    print(
        ("ragline was already running" if already else "ragline is up")
        + f"""
  REST + gRPC   {cfg.base_url}   (try: curl {cfg.base_url}/health)
  metrics       {cfg.base_url}/metrics
  Envoy admin   http://127.0.0.1:{cfg.admin_port}   (loopback only)
  MongoDB wire  mongodb://127.0.0.1:{cfg.mongo_port}   (FerretDB; data in run/ferretdb)
  Redis         redis://127.0.0.1:{cfg.redis_port}
  services      """
        + ", ".join(f"{s} {cfg.service_addr(s)}" for s in cfg.service_ports)
        + (
            f"\n  mutual TLS    on: certificates in {cfg.tls_dir} (INTERNAL_TLS=false: plaintext)"
            if cfg.internal_tls
            else "\n  mutual TLS    off (INTERNAL_TLS=false)"
        )
        + f"""
  logs          {cfg.log_dir}
stop with: make stop"""
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
