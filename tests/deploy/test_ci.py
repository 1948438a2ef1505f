""".github/workflows and scripts/install-deploy-tools.sh: actionlint (with shellcheck on every
`run:` block), the GitHub workflow schema, shellcheck, and the pipeline's shape."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from ragline_stack import components

from .tools import ROOT, output, run, tool

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CI = ROOT / ".github" / "workflows" / "ci.yml"
INSTALL_SCRIPT = ROOT / "scripts" / "install-deploy-tools.sh"


def _steps(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in job["steps"])


def test_actionlint() -> None:
    tool("shellcheck")  # actionlint runs it on run: blocks when it is on PATH
    result = run([tool("actionlint"), *map(str, WORKFLOWS)])
    assert result.returncode == 0, output(result)


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(CI.read_text().replace("needs: [lint, test]", "needs: [lint, tests]"))
    result = run([tool("actionlint"), str(bad)], cwd=tmp_path)
    assert result.returncode != 0, output(result)
    assert "tests" in result.stdout


def test_workflow_schema() -> None:
    result = run(
        [
            tool("check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, WORKFLOWS),
        ]
    )
    assert result.returncode == 0, output(result)


def test_workflow_schema_rejects_a_bad_key(tmp_path: Path) -> None:
    bad = tmp_path / "ci.yml"
    bad.write_text(
        CI.read_text().replace("    runs-on: ubuntu-24.04\n", "    runs_on: ubuntu-24.04\n", 1)
    )
    result = run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(bad)]
    )
    assert result.returncode != 0, output(result)


def test_pipeline_shape() -> None:
    workflow = yaml.safe_load(CI.read_text())
    jobs = workflow["jobs"]
    assert {"lint", "test", "images", "deploy"} <= jobs.keys()
    assert "buf breaking" in _steps(jobs["lint"]) and "main" in _steps(jobs["lint"])
    assert "make test" in _steps(jobs["test"])
    assert "scripts/install-deploy-tools.sh" in _steps(jobs["test"])
    assert jobs["images"]["if"] == "github.event_name == 'push'"
    assert set(jobs["images"]["needs"]) == {"lint", "test"}
    assert jobs["images"]["permissions"]["packages"] == "write"
    targets = {entry["target"] for entry in jobs["images"]["strategy"]["matrix"]["include"]}
    assert targets == {*components.names(), "envoy"}
    assert jobs["deploy"]["if"] == "startsWith(github.ref, 'refs/tags/v')"
    assert "k8s/overlays/prod" in _steps(jobs["deploy"])
    # yaml reads the bare `on:` key as True.
    triggers = workflow[True]
    assert triggers["push"]["branches"] == ["main"] and triggers["push"]["tags"] == ["v*"]
    assert workflow["permissions"] == {"contents": "read"}


def test_install_script_shellcheck() -> None:
    result = run([tool("shellcheck"), str(INSTALL_SCRIPT)])
    assert result.returncode == 0, output(result)


def test_shellcheck_rejects_a_sloppy_script(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/usr/bin/env bash\ncd $1\nrm -rf $DIR/*\n")
    result = run([tool("shellcheck"), str(bad)])
    assert result.returncode != 0, output(result)


def test_install_script_is_idempotent_and_quick() -> None:
    """With everything installed it only checks: no network, well under a few seconds."""
    result = run(["bash", str(INSTALL_SCRIPT)], timeout=60)
    assert result.returncode == 0, output(result)
    assert "creating" not in result.stderr and "go install" not in result.stderr, result.stderr


def test_prod_images_are_the_ones_the_workflow_publishes() -> None:
    """The prod overlay pulls ghcr.io/ragline/ragline-<name>:<project version>: the images
    job pushes exactly those names (owner ragline) with the semver tag of the v<version> git
    tag, for every component and the gateway."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    overlay = yaml.safe_load((ROOT / "k8s/overlays/prod/kustomization.yaml").read_text())
    images = {i["name"]: i for i in overlay["images"]}
    for name in (*components.names(), "envoy"):
        image = images[f"ragline/{name}"]
        assert image["newName"] == f"ghcr.io/ragline/ragline-{name}", image
        assert image["newTag"] == project, (image, project)
    steps = yaml.safe_load(CI.read_text())["jobs"]["images"]["steps"]
    meta = next(s for s in steps if s.get("id") == "meta")["with"]
    assert meta["images"] == "ghcr.io/${{ github.repository_owner }}/ragline-${{ matrix.image }}"
    assert "type=semver,pattern={{version}}" in meta["tags"]
    build = next(s for s in steps if str(s.get("uses", "")).startswith("docker/build-push"))
    assert build["with"]["push"] is True
