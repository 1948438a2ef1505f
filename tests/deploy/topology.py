"""Runs the shipped topology as local processes: what docker-compose.yml and the images
would start, on this machine, without a container runtime.

Each compose service becomes one process:
- its command is the image's (docker/service.Dockerfile target: ENV and CMD along the stage
  chain; docker/envoy.Dockerfile: ENTRYPOINT + CMD), or the compose `command`;
- its environment is the image's ENV overlaid by the compose `environment`, after compose's
  `${VAR:-default}` / `${VAR:?message}` interpolation against the given shell environment;
  nothing else from this process' environment leaks in (a container does not inherit it);
- the gateway's config is k8s/base/envoy/envoy.yaml, the file baked into the gateway image
  and mounted by Kubernetes.

Names resolve to loopback: every compose service (and its network aliases) gets its own
address in a random 127.x.y.0/24, and host names, `0.0.0.0` and the container's own
`127.0.0.1` in values and in the Envoy config are rewritten to those addresses. Ports stay
the ones the files declare. Images the project does not build are replaced by the binaries
the local stack runs: FerretDB for mongo:7, redis-server, envoyproxy/ratelimit from .bin.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ragline_stack.stack import ferretdb_binary, ratelimit_binary, redis_binary

from .artifacts import parse_stages, stage_values
from .tools import ROOT

COMPOSE = ROOT / "docker-compose.yml"
VENV_BIN = Path(sys.executable).parent
# Paths inside the images and where the same files are in a developer checkout.
IMAGE_PATHS = {
    "/opt/ragline/models": str(ROOT / ".cache" / "models"),
    "/opt/ragline/openapi": str(ROOT / "gen" / "openapi"),
    "/etc/envoy/ragline.binpb": str(ROOT / "gen" / "ragline.binpb"),
}
_VAR = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")
# A log is read for diagnostics only: its tail is enough.
LOG_TAIL_BYTES = 4000


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's variable syntax: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        present = name in env and (env[name] != "" or not (op or "").startswith(":"))
        if present:
            return env[name]
        if op in (":?", "?"):
            raise ValueError(f"compose requires {name}: {arg}")
        return arg if op else ""

    return _VAR.sub(one, value)


def _image_env(instructions: list[str]) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in instructions:
        for token in shlex.split(line):
            key, _, value = token.partition("=")
            env[key] = value
    return env


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    # The address and the ports that say it is up.
    host: str
    ports: list[int]
    proc: subprocess.Popen[bytes] | None = None


@dataclass
class Topology:
    """The compose services as processes; `start()` in dependency order, `stop()` all."""

    run_dir: Path
    shell_env: dict[str, str]
    compose: dict[str, Any] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)
    processes: dict[str, Process] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.compose = yaml.safe_load(COMPOSE.read_text())
        base = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}"
        for i, (name, service) in enumerate(self.compose["services"].items(), start=10):
            if "monitoring" in service.get("profiles", []):
                continue
            self.addresses[name] = f"{base}.{i}"
            networks = service.get("networks", {})
            if isinstance(networks, dict):
                for alias in (networks.get("backend") or {}).get("aliases", []):
                    self.addresses[alias] = f"{base}.{i}"

    # -- name resolution -------------------------------------------------------------------
    def resolve(self, value: str, own: str) -> str:
        """Service names in host:port or scheme://host forms, 0.0.0.0 and the container's
        own 127.0.0.1 become loopback addresses; image paths become checkout paths."""
        for name in sorted(self.addresses, key=len, reverse=True):
            # host:port in settings; `address: host` in Envoy's socket_address blocks.
            pattern = rf"(?<![\w.-]){re.escape(name)}(?=:\d)|(?<=address: ){re.escape(name)}$"
            value = re.sub(pattern, self.addresses[name], value, flags=re.MULTILINE)
        value = value.replace("0.0.0.0", own).replace("127.0.0.1", own)
        for image_path, local in IMAGE_PATHS.items():
            value = value.replace(image_path, local)
        return value

    # -- building the processes ------------------------------------------------------------
    def _environment(self, name: str, base: dict[str, str]) -> dict[str, str]:
        own = self.addresses[name]
        raw = self.compose["services"][name].get("environment", {}) or {}
        env = {k: v for k, v in base.items() if k != "PATH"}
        for key, value in raw.items():
            env[key] = self.resolve(interpolate(str(value), self.shell_env), own)
        env = {k: self.resolve(v, own) for k, v in env.items()}
        env.update(
            {
                "PATH": f"{VENV_BIN}:/usr/bin:/bin",
                "HOME": str(self.run_dir / "home"),
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        )
        return env

    def _workdir(self, name: str) -> Path:
        path = self.run_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def build(self) -> None:
        services = self.compose["services"]
        stages = parse_stages((ROOT / "docker" / "service.Dockerfile").read_text())
        for name, service in services.items():
            if name not in self.addresses:
                continue
            own = self.addresses[name]
            build = service.get("build")
            if build and build.get("dockerfile") == "docker/service.Dockerfile":
                target = build["target"]
                image_env = _image_env(stage_values(stages, target, "ENV"))
                cmd = json.loads(stage_values(stages, target, "CMD")[-1])
                argv = [str(VENV_BIN / "python") if cmd[0] == "python" else cmd[0], *cmd[1:]]
                env = self._environment(name, image_env)
                ports = [int(env[f"{target.upper()}_ADDR"].rpartition(":")[2])]
                self.processes[name] = Process(name, argv, env, own, ports)
            elif build and build.get("dockerfile") == "docker/envoy.Dockerfile":
                self.processes[name] = self._envoy(name, own)
            elif service.get("image", "").startswith("mongo:"):
                self.processes[name] = self._ferretdb(name, own)
            elif service.get("image", "").startswith("redis:"):
                argv = [redis_binary(), *service["command"][1:]]
                argv += ["--bind", own, "--port", "6379", "--dir", str(self._workdir(name))]
                self.processes[name] = Process(name, argv, {"PATH": "/usr/bin:/bin"}, own, [6379])
            elif service.get("image", "").startswith("envoyproxy/ratelimit:"):
                self.processes[name] = self._ratelimit(name, own)
            else:
                raise AssertionError(f"compose service {name}: no local stand-in for it")

    def _ferretdb(self, name: str, own: str) -> Process:
        data = self._workdir(name)
        argv = [
            ferretdb_binary(),
            "--handler=sqlite",
            f"--sqlite-url=file:{data}/",
            f"--listen-addr={own}:27017",
            "--telemetry=disable",
            f"--state-dir={data}",
            "--debug-addr=-",
            "--log-level=warn",
        ]
        return Process(name, argv, {"PATH": "/usr/bin:/bin"}, own, [27017])

    def _ratelimit(self, name: str, own: str) -> Process:
        service = self.compose["services"][name]
        env = self._environment(name, {})
        root = self._workdir(name) / "data"
        for volume in service.get("volumes", []):
            source, target, *_ = volume.split(":")
            local = root / Path(target).relative_to(env["RUNTIME_ROOT"])
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_text((ROOT / source).read_text())
        env.update(
            RUNTIME_ROOT=str(root),
            HOST=own,
            GRPC_HOST=own,
            DEBUG_HOST=own,
            DEBUG_PORT="6070",
        )
        return Process(name, [ratelimit_binary()], env, own, [int(env["GRPC_PORT"])])

    def _envoy(self, name: str, own: str) -> Process:
        dockerfile = parse_stages((ROOT / "docker" / "envoy.Dockerfile").read_text())
        final = list(dockerfile)[-1]
        entrypoint = json.loads(stage_values(dockerfile, final, "ENTRYPOINT")[-1])
        cmd = json.loads(stage_values(dockerfile, final, "CMD")[-1])
        # COPY k8s/base/envoy/envoy.yaml /etc/envoy/envoy.yaml: the Kubernetes rendering.
        copies = [c.split() for c in stage_values(dockerfile, final, "COPY")]
        source = next(c[-2] for c in copies if c[-1] == "/etc/envoy/envoy.yaml")
        config = self.run_dir / "envoy.yaml"
        config.write_text(self.resolve((ROOT / source).read_text(), own))
        args = [str(config) if a == "/etc/envoy/envoy.yaml" else a for a in cmd]
        argv = [str(VENV_BIN / entrypoint[0]), *args, "--base-id", str(random.randint(1, 60000))]
        published = self.compose["services"][name]["ports"][0]
        port = int(interpolate(published, self.shell_env).rpartition(":")[2])
        return Process(name, argv, {"PATH": "/usr/bin:/bin"}, own, [port])

    # -- running ---------------------------------------------------------------------------
    def _spawn(self, p: Process) -> None:
        log = open(self.run_dir / f"{p.name}.log", "ab")  # noqa: SIM115 - owned by the child
        p.proc = subprocess.Popen(
            p.argv,
            env=p.env,
            cwd=self._workdir(p.name),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    def _wait(self, p: Process, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert p.proc is not None
            if p.proc.poll() is not None:
                raise RuntimeError(f"{p.name} exited ({p.proc.returncode}):\n{self.log(p.name)}")
            if all(_listening(p.host, port) for port in p.ports):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{p.name} did not listen on {p.ports} in {timeout:g}s")

    def _order(self) -> list[list[str]]:
        """Waves by depends_on: a service starts once everything it depends on is up."""
        remaining = dict(self.processes)
        waves: list[list[str]] = []
        done: set[str] = set()
        while remaining:
            wave = [
                n
                for n in remaining
                if set(self.compose["services"][n].get("depends_on", {})) <= done
            ]
            if not wave:
                raise AssertionError(f"depends_on cycle among {sorted(remaining)}")
            waves.append(wave)
            done |= set(wave)
            for n in wave:
                del remaining[n]
        return waves

    def start(self, timeout: float = 240.0) -> None:
        self.build()
        for wave in self._order():
            for name in wave:
                self._spawn(self.processes[name])
            for name in wave:
                self._wait(self.processes[name], timeout)

    def stop(self) -> None:
        """SIGTERM to each process group (started here, by pid), SIGKILL after 15 s."""
        for p in reversed(list(self.processes.values())):
            if p.proc is not None and p.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in self.processes.values():
            if p.proc is None:
                continue
            try:
                p.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.proc.pid, signal.SIGKILL)
                p.proc.wait()

    def log(self, name: str) -> str:
        path = self.run_dir / f"{name}.log"
        if not path.exists():
            return ""
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
            return f.read().decode(errors="replace")

    def logs(self) -> Iterator[str]:
        for name in self.processes:
            yield f"--- {name} ---\n{self.log(name)}"

    def url(self, path: str = "", scheme: str = "http") -> str:
        gateway = self.processes["envoy"]
        return f"{scheme}://{gateway.host}:{gateway.ports[0]}{path}"


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 0.5):
        return True
    return False
