"""Shared fixtures for the deploy validators: each overlay is rendered once per session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .tools import OVERLAYS, ROOT, kustomize_build, load_docs


@pytest.fixture(scope="session")
def rendered() -> dict[str, str]:
    """`kustomize build k8s/overlays/<overlay>` output, by overlay name."""
    return {overlay: kustomize_build(ROOT / "k8s" / "overlays" / overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="session")
def manifests(rendered: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    return {overlay: load_docs(text) for overlay, text in rendered.items()}


@pytest.fixture(scope="session")
def rendered_files(
    rendered: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The rendered overlays written to files, for tools that read files."""
    out = tmp_path_factory.mktemp("rendered")
    files = {}
    for overlay, text in rendered.items():
        path = out / f"{overlay}.yaml"
        path.write_text(text)
        files[overlay] = path
    return files
