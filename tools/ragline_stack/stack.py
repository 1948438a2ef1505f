"""Starts and stops the local stack: FerretDB, Redis, the four services and Envoy.

Each component runs as its own process group with its log in one folder and its pid in
a pid file, so `make stop` (or a second `make run`) finds what an earlier run started.
The group leader is a supervisor (ragline_stack.supervisor) that restarts the component
when it dies, with back-off, as Kubernetes would; stopping goes through it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ragline_core.internal_tls import GATEWAY
from ragline_stack.envoy_config import CHAT_HTTP, SERVICES, GatewayConfig, render
from ragline_stack.gateway import USAGE_LOG_FLUSH_S, ratelimit_config
from ragline_stack.local_ca import stack_tls
from ragline_stack.supervisor import read_state, state_path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@dataclass
class StackConfig:
    """Where everything listens and writes. Tests use free ports and a temp folder."""

    run_dir: Path
    api_port: int = 8000
    admin_port: int = 9901
    # Envoy's internal listener for Prometheus (GET /metrics without a key).
    envoy_metrics_port: int = 9902
    mongo_port: int = 27017
    redis_port: int = 6379
    service_ports: dict[str, int] = field(
        default_factory=lambda: {
            "embedder": 50051,
            "retriever": 50052,
            "chat": 50053,
            "ingest": 50054,
            "auth": 50055,
        }
    )
    metrics_ports: dict[str, int] = field(
        default_factory=lambda: {
            "embedder": 9101,
            "retriever": 9102,
            "chat": 9103,
            "ingest": 9104,
            "auth": 9105,
        }
    )
    # envoyproxy/ratelimit: gRPC (for Envoy), HTTP and debug ports.
    ratelimit_port: int = 8081
    ratelimit_http_port: int = 8082
    ratelimit_debug_port: int = 6070
    cors_origins: list[str] = field(default_factory=lambda: ["http://localhost:3000"])
    # The chat service's HTTP port (WebSocket chat, OpenAI-compatible API).
    chat_http_port: int = 50063
    database: str = "rag_production"
    request_timeout_s: float = 30.0
    max_request_bytes: int = 4 * 1024 * 1024
    # Extra environment for the services (provider URLs, keys, limits).
    service_env: dict[str, str] = field(default_factory=dict)
    # More "host:port" replicas per service for the gateway to balance to (processes the
    # caller starts itself, e.g. a test SIGTERMing one replica of two).
    replicas: dict[str, list[str]] = field(default_factory=dict)
    # Multiplies every global rate limit: benchmarks measure the limiter's cost, not its limits.
    rate_limit_scale: int = 1
    # Mutual TLS between Envoy and the services and between services, with certificates
    # from a CA made in run_dir/tls (ragline_stack.local_ca).
    internal_tls: bool = False
    # Plaintext health-only listeners (HEALTH_ADDR) per service, for probes without a
    # client certificate; none by default.
    health_ports: dict[str, int] = field(default_factory=dict)

    @property
    def log_dir(self) -> Path:
        return self.run_dir / "logs"

    @property
    def pid_dir(self) -> Path:
        return self.run_dir / "pids"

    @property
    def tls_dir(self) -> Path:
        return self.run_dir / "tls"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def service_addr(self, name: str) -> str:
        return f"127.0.0.1:{self.service_ports[name]}"

    def env(self) -> dict[str, str]:
        """Environment shared by the services."""
        env = dict(os.environ)
        env.update(
            {
                "MONGODB_URI": f"mongodb://127.0.0.1:{self.mongo_port}",
                "MONGODB_DATABASE": self.database,
                "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "REQUEST_TIMEOUT": str(self.request_timeout_s),
                "API_PORT": str(self.api_port),
                "RAGLINE_MODEL_CACHE": str(ROOT / ".cache" / "models"),
                # The chat WebSocket counts each message on the gateway's limiter.
                "RATELIMIT_ADDR": f"127.0.0.1:{self.ratelimit_port}",
            }
        )
        for name in SERVICES:
            env[f"{name.upper()}_ADDR"] = self.service_addr(name)
            env[f"{name.upper()}_METRICS_PORT"] = str(self.metrics_ports[name])
        env["CHAT_HTTP_ADDR"] = f"127.0.0.1:{self.chat_http_port}"
        env["RATE_LIMIT_SCALE"] = str(self.rate_limit_scale)
        env.setdefault("INTERNAL_TOKEN_KEYS", internal_token_key(self.run_dir))
        env.update(self.service_env)
        return env


def internal_token_key(run_dir: Path) -> str:
    """This stack's key for internal identity tokens (ragline_core.caller), made once per
    run folder and kept there (mode 600), so restarts keep verifying each other's tokens."""
    path = run_dir / "internal-token.key"
    if not path.exists():
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def ferretdb_binary() -> str:
    for candidate in (ROOT / ".bin" / "ferretdb", shutil.which("ferretdb")):
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise SystemExit("ferretdb not found: run `make setup` (go install of FerretDB v1.24.2)")


def ratelimit_binary() -> str:
    found = ROOT / ".bin" / "ratelimit"
    if not found.exists():
        raise SystemExit("ratelimit not found: run `make setup` (scripts/install_go_tools.sh)")
    return str(found)


def redis_binary() -> str:
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).exists():
        raise SystemExit("redis-server not found: run `make setup` (apt-get install redis-server)")
    return found


class Stack:
    """The processes of one stack, identified by their pid files."""

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        # Spawned by this object and not yet seen listening: an exit now is a start-up
        # failure to report, not a crash to wait out.
        self._starting: set[str] = set()

    # -- processes -------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> None:
        """Starts `argv` under a supervisor that restarts it when it dies."""
        self.cfg.log_dir.mkdir(parents=True, exist_ok=True)
        self.cfg.pid_dir.mkdir(parents=True, exist_ok=True)
        self.state_path(name).unlink(missing_ok=True)  # a previous run's restarts
        supervised = [
            str(VENV_BIN / "python"),
            "-m",
            "ragline_stack.supervisor",
            "--name",
            name,
            "--state-dir",
            str(self.cfg.pid_dir),
            "--",
            *argv,
        ]
        log = open(self.cfg.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(  # noqa: S603 - argv built from our own config
            supervised,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=ROOT,
            start_new_session=True,
        )
        log.close()
        (self.cfg.pid_dir / f"{name}.pid").write_text(str(proc.pid))
        self._starting.add(name)

    def pid(self, name: str) -> int | None:
        """The component's process group leader (its supervisor) if it is running."""
        path = self.cfg.pid_dir / f"{name}.pid"
        try:
            pid = int(path.read_text())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        # A zombie (exited child not yet reaped) is not running.
        with contextlib.suppress(OSError):
            if "State:\tZ" in Path(f"/proc/{pid}/status").read_text():
                return None
        return pid

    def state_path(self, name: str) -> Path:
        return state_path(self.cfg.pid_dir, name)

    def supervision(self, name: str) -> dict[str, Any] | None:
        """The supervisor's state (restarts, last exit, child pid) while it runs."""
        leader = self.pid(name)
        state = read_state(self.state_path(name))
        if leader is None or state is None or state.get("supervisor_pid") != leader:
            return None
        return state

    def restarts(self, name: str) -> int:
        state = self.supervision(name)
        return int(state["restarts"]) if state else 0

    def child_pid(self, name: str) -> int | None:
        """The component's own process (not its supervisor), None while it is down: for
        what must signal or measure the real process."""
        leader = self.pid(name)
        if leader is None:
            return None
        try:
            cmdline = Path(f"/proc/{leader}/cmdline").read_bytes()
        except OSError:
            return None
        if not cmdline:
            return None  # still in exec
        if b"ragline_stack.supervisor" not in cmdline:
            return leader  # started before there were supervisors
        state = self.supervision(name)
        pid = state.get("pid") if state else None
        if not isinstance(pid, int):
            return None
        try:
            # In the leader's group, or the pid was reused by something else.
            if os.getpgid(pid) != leader:
                return None
        except ProcessLookupError:
            return None
        with contextlib.suppress(OSError):
            if "State:\tZ" in Path(f"/proc/{pid}/status").read_text():
                return None
        return pid

    def port(self, name: str) -> int:
        """The port that says the component is serving."""
        ports = {
            "ferretdb": self.cfg.mongo_port,
            "redis": self.cfg.redis_port,
            "ratelimit": self.cfg.ratelimit_port,
            "envoy": self.cfg.api_port,
        }
        return ports.get(name) or self.cfg.service_ports[name]

    def components(self) -> list[str]:
        return ["ferretdb", "redis", "ratelimit", *SERVICES, "envoy"]

    def start_ferretdb(self) -> None:
        data = self.cfg.run_dir / "ferretdb"
        data.mkdir(parents=True, exist_ok=True)
        self._spawn(
            "ferretdb",
            [
                ferretdb_binary(),
                "--handler=sqlite",
                f"--sqlite-url=file:{data}/",
                f"--listen-addr=127.0.0.1:{self.cfg.mongo_port}",
                "--telemetry=disable",
                f"--state-dir={self.cfg.run_dir}",
                "--debug-addr=-",
                "--log-level=warn",
            ],
        )

    def start_redis(self) -> None:
        data = self.cfg.run_dir / "redis"
        data.mkdir(parents=True, exist_ok=True)
        self._spawn(
            "redis",
            [
                redis_binary(),
                "--port",
                str(self.cfg.redis_port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(data),
                "--appendonly",
                "yes",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ],
        )

    def start_ratelimit(self) -> None:
        """envoyproxy/ratelimit on Redis, with the tiers from ragline_stack.gateway."""
        root = self.cfg.run_dir / "ratelimit"
        config_dir = root / "ragline" / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        (config_dir / "ragline.yaml").write_text(
            yaml.safe_dump(ratelimit_config(self.cfg.rate_limit_scale), sort_keys=False)
        )
        env = dict(os.environ)
        env.update(
            {
                "USE_STATSD": "false",
                "LOG_LEVEL": "warn",
                "LOG_FORMAT": "json",
                "REDIS_SOCKET_TYPE": "tcp",
                "REDIS_URL": f"127.0.0.1:{self.cfg.redis_port}",
                "RUNTIME_ROOT": str(root),
                "RUNTIME_SUBDIRECTORY": "ragline",
                "RUNTIME_WATCH_ROOT": "false",
                "RUNTIME_IGNOREDOTFILES": "true",
                "HOST": "127.0.0.1",
                "PORT": str(self.cfg.ratelimit_http_port),
                "GRPC_HOST": "127.0.0.1",
                "GRPC_PORT": str(self.cfg.ratelimit_port),
                "DEBUG_HOST": "127.0.0.1",
                "DEBUG_PORT": str(self.cfg.ratelimit_debug_port),
            }
        )
        self._spawn("ratelimit", [ratelimit_binary()], env)

    def tls_folders(self) -> dict[str, Path]:
        """Each workload's certificate folder (made on first use), {} without mutual TLS."""
        return stack_tls(self.cfg.tls_dir) if self.cfg.internal_tls else {}

    def start_service(self, name: str) -> None:
        env = self.cfg.env()
        if self.cfg.internal_tls:
            env["INTERNAL_TLS_DIR"] = str(self.tls_folders()[name])
        if name in self.cfg.health_ports:
            env["HEALTH_ADDR"] = f"127.0.0.1:{self.cfg.health_ports[name]}"
        self._spawn(name, [str(VENV_BIN / "python"), "-m", f"ragline_{name}"], env)

    def envoy_config_path(self) -> Path:
        return self.cfg.run_dir / "envoy.yaml"

    def write_envoy_config(self) -> Path:
        gateway = GatewayConfig(
            api_port=self.cfg.api_port,
            admin_port=self.cfg.admin_port,
            metrics_port=self.cfg.envoy_metrics_port,
            descriptor_path=ROOT / "gen" / "ragline.binpb",
            service_addrs={
                **{
                    s: ",".join([self.cfg.service_addr(s), *self.cfg.replicas.get(s, [])])
                    for s in SERVICES
                },
                CHAT_HTTP: f"127.0.0.1:{self.cfg.chat_http_port}",
            },
            request_timeout_s=self.cfg.request_timeout_s,
            max_request_bytes=self.cfg.max_request_bytes,
            ratelimit_addr=f"127.0.0.1:{self.cfg.ratelimit_port}",
            cors_origins=tuple(self.cfg.cors_origins),
            otlp_endpoint=self.cfg.service_env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
            or None,
            tls_dir=str(self.tls_folders()[GATEWAY]) if self.cfg.internal_tls else None,
        )
        path = self.envoy_config_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render(gateway))
        return path

    def start_envoy(self) -> None:
        config = self.write_envoy_config()
        # --disable-hot-restart: the wheel's Envoy otherwise dies with the starting shell.
        self._spawn(
            "envoy",
            [
                str(VENV_BIN / "envoy"),
                "-c",
                str(config),
                "--disable-hot-restart",
                "--log-level",
                "warn",
                "--base-id",
                str(self.cfg.api_port),
            ],
        )

    def start(self, name: str) -> None:
        starters = {
            "ferretdb": self.start_ferretdb,
            "redis": self.start_redis,
            "ratelimit": self.start_ratelimit,
            "envoy": self.start_envoy,
        }
        if name in starters:
            starters[name]()
        else:
            self.start_service(name)

    # A service's DRAIN_DELAY (5 s) + SHUTDOWN_GRACE (10 s) + a margin before SIGKILL.
    def stop(self, name: str, timeout: float = 20.0) -> None:
        pid = self.pid(name)
        if pid is None:
            return
        if name == "envoy":
            self._drain_envoy()
        # The leader only: the supervisor forwards it once and does not restart; a SIGTERM
        # to the group would reach the component twice (FerretDB dies hard on a second).
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid(name) is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.05)
        if self.pid(name) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        (self.cfg.pid_dir / f"{name}.pid").unlink(missing_ok=True)
        self.state_path(name).unlink(missing_ok=True)
        self._starting.discard(name)

    def _drain_envoy(self) -> None:
        """Closes Envoy's listeners, then waits out its usage-log batch: on SIGTERM Envoy
        drops the entries it still holds, and those requests would never be counted."""
        drain = urllib.request.Request(
            f"http://127.0.0.1:{self.cfg.admin_port}/drain_listeners", method="POST"
        )
        try:
            with urllib.request.urlopen(drain, timeout=2):  # noqa: S310 - loopback admin
                pass
        except OSError:
            return  # admin not answering: nothing to wait for
        time.sleep(USAGE_LOG_FLUSH_S + 0.5)

    def stop_all(self) -> None:
        # The services together: each keeps serving for its DRAIN_DELAY after SIGTERM, and
        # one after the other that delay would add up.
        order = [n for n in reversed(self.components()) if n not in SERVICES]
        self.stop(order[0])  # envoy
        with ThreadPoolExecutor(len(SERVICES)) as pool:
            list(pool.map(self.stop, SERVICES))
        for name in order[1:]:
            self.stop(name)

    # -- readiness -------------------------------------------------------------------
    def wait_port(self, name: str, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid(name) is None:
                raise RuntimeError(f"{name} exited during start-up; see {self.log_path(name)}")
            if name in self._starting and self.restarts(name):
                last = (self.supervision(name) or {}).get("last_exit")
                raise RuntimeError(
                    f"{name} exited during start-up ({last}); it is being restarted with "
                    f"back-off; see {self.log_path(name)}"
                )
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                self._starting.discard(name)
                return
            time.sleep(0.1)
        raise RuntimeError(
            f"{name} did not open port {port} in {timeout:g}s; see {self.log_path(name)}"
        )

    def health(self) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"{self.cfg.base_url}/health", timeout=5) as reply:  # noqa: S310
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError as exc:
            return 0, str(exc)

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        status, body = 0, ""
        while time.monotonic() < deadline:
            for name in self.components():
                if self.pid(name) is None:
                    raise RuntimeError(f"{name} exited; see {self.log_path(name)}")
            status, body = self.health()
            if status == 200:
                return
            time.sleep(0.3)
        raise RuntimeError(f"/health not green after {timeout:g}s: {status} {body}")

    def log_path(self, name: str) -> Path:
        return self.cfg.log_dir / f"{name}.log"

    def start_all(self, timeout: float = 180.0) -> None:
        """Starts whatever is not running yet, in dependency order, and waits for health."""
        self.cfg.run_dir.mkdir(parents=True, exist_ok=True)
        ports = {"ferretdb": self.cfg.mongo_port, "redis": self.cfg.redis_port}
        for store in ("ferretdb", "redis"):
            if self.pid(store) is None:
                self.start(store)
            self.wait_port(store, ports[store], 30)
        if self.pid("ratelimit") is None:
            self.start_ratelimit()
        for name in SERVICES:
            if self.pid(name) is None:
                self.start_service(name)
        for name in SERVICES:
            self.wait_port(name, self.cfg.service_ports[name], timeout)
        self.wait_port("ratelimit", self.cfg.ratelimit_port, 30)
        if self.pid("envoy") is None:
            self.start_envoy()
        self.wait_port("envoy", self.cfg.api_port, 30)
        self.wait_healthy(timeout)


_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port free right now and not handed out before by this process (the
    kernel may offer a just-released port again)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def free_port_config(run_dir: Path, **service_env: str) -> StackConfig:
    """A stack on free loopback ports (every *_port field and port map), reading no .env:
    for tests and benchmarks that must not collide with `make run` or each other."""
    cfg = StackConfig(run_dir=run_dir)
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name.endswith("_port") and isinstance(value, int):
            setattr(cfg, f.name, free_port())
        elif f.name.endswith("_ports") and isinstance(value, dict):
            setattr(cfg, f.name, {name: free_port() for name in value})
    cfg.service_env = {"RAGLINE_ENV_FILE": str(run_dir / "no.env"), **service_env}
    return cfg
