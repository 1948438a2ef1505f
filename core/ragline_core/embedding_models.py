"""The embedding model catalog (shared: the embedder serves it, ingest validates against it)."""

from __future__ import annotations

from dataclasses import dataclass

from ragline_core.errors import InvalidArgumentError


@dataclass(frozen=True)
class ModelSpec:
    """One embedding model."""

    name: str
    provider: str  # "local", "openai" or "voyage"
    dimensions: int
    max_tokens: int
    usd_per_million_tokens: float = 0.0
    # Local models only: which graph variant to run.
    variant: str = "fp32"
    # Prepended to a search query (not to documents) before embedding: instruction-tuned
    # retrieval models are trained with it.
    query_prefix: str = ""


LOCAL_MODEL = "all-MiniLM-L6-v2"
BGE_MODEL = "bge-small-en-v1.5"
BGE_QUERY_PREFIX = "Represent this sentence for searching relevant passages: "

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(LOCAL_MODEL, "local", 384, 256),
        ModelSpec(f"{LOCAL_MODEL}-int8", "local", 384, 256, variant="int8"),
        # Opt-in, ~2x MiniLM's cost per text; checked against its published SciFact figure
        # by `python -m bench embedding-models` (docs/retrieval.md).
        ModelSpec(BGE_MODEL, "local", 384, 512, variant="bge", query_prefix=BGE_QUERY_PREFIX),
        ModelSpec("text-embedding-3-small", "openai", 1536, 8191, 0.02),
        ModelSpec("text-embedding-3-large", "openai", 3072, 8191, 0.13),
        ModelSpec("text-embedding-ada-002", "openai", 1536, 8191, 0.10),
        ModelSpec("voyage-3-large", "voyage", 1024, 32000, 0.18),
        ModelSpec("voyage-3.5", "voyage", 1024, 32000, 0.06),
        ModelSpec("voyage-3.5-lite", "voyage", 1024, 32000, 0.02),
        ModelSpec("voyage-3", "voyage", 1024, 32000, 0.06),
        ModelSpec("voyage-code-3", "voyage", 1024, 32000, 0.18),
    )
}

# Friendly names accepted in `model`.
ALIASES = {"local": LOCAL_MODEL, "local-int8": f"{LOCAL_MODEL}-int8"}


def resolve(name: str) -> ModelSpec:
    """The model for `name`, or a 400 that lists the valid names."""
    spec = MODELS.get(ALIASES.get(name, name))
    if spec is None:
        valid = ", ".join([*MODELS, *ALIASES])
        raise InvalidArgumentError(
            f"unknown model {name!r}; valid models: {valid}",
            reason="UNKNOWN_MODEL",
            field="model",
        )
    return spec
