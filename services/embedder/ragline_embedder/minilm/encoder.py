"""MiniLMEncoder: texts in, L2-normalised 384-d vectors out, on ONNX Runtime."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from .artifacts import Artifact, Variant, ensure_model
from .graph import OUTPUT_NAME, AttentionForm
from .locate import default_cache_dir, find_model_dir
from .tokenizer import MAX_TOKENS, load_tokenizer, pad_settings

# ORT's SkipLayerNormalization CPU kernel measured ~5x slower than the Add + LayerNormalization
# it replaces (7.4 ms vs 1.5 ms per 256-token passage in the int8 graph).
_DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]


@dataclass(frozen=True, eq=False)  # eq=False: ndarray fields don't compare to a bool
class Encoded:
    vectors: npt.NDArray[np.float32]  # [n, 384], L2-normalised, input order
    token_counts: list[int]  # tokens per input incl. [CLS]/[SEP], after truncation
    truncated: list[bool]  # True when the input was longer than MAX_TOKENS and was cut


class MiniLMEncoder:
    """all-MiniLM-L6-v2 sentence embeddings, faithful to sentence-transformers.

    Thread-safe: encode() keeps no mutable state, the tokenizer is only read, and ONNX
    Runtime sessions allow concurrent run() calls (which release the GIL), so it can be
    called from asyncio.to_thread. Each instance uses `threads` intra-op threads (default 1:
    on small machines several single-threaded workers beat one oversubscribed pool).
    """

    MAX_TOKENS = MAX_TOKENS
    DIMENSIONS = 384
    # fp32: padded tokens per ONNX Runtime call. Inputs are sorted by length and cut into
    # sub-batches of at most this many tokens: bigger batches fall out of the 4 MiB L2 and
    # get slower (measured best: 1 passage of 256 tokens, ~8-12 queries of ~20 tokens).
    BATCH_TOKENS = 256

    def __init__(
        self,
        variant: Literal["fp32", "int8"] = "fp32",
        threads: int = 1,
        cache_dir: Path | None = None,
    ) -> None:
        if variant not in ("fp32", "int8"):
            raise ValueError(f"unknown variant {variant!r}; expected 'fp32' or 'int8'")
        if threads < 1:
            raise ValueError("threads must be >= 1")
        model_dir = find_model_dir()
        self.variant: Variant = variant
        self.artifact: Artifact = ensure_model(
            variant, model_dir, cache_dir or default_cache_dir(), attention=attention_form()
        )
        # int8 runs one text per call. Dynamic quantisation scales activations over the whole
        # call, so in a batch a text's vector depends on its neighbours (cosine to the same
        # text alone: mean 0.989, min 0.969). Alone it is batch-invariant and a little closer
        # to the reference, for ~15% fewer texts/s on large batches of short texts.
        self._batch_tokens = self.BATCH_TOKENS if variant == "fp32" else 1
        self._tokenizer = load_tokenizer(model_dir, self.MAX_TOKENS, pad_to_longest=False)
        self._pad_id, _ = pad_settings(self._tokenizer)
        self._session = ort.InferenceSession(
            str(self.artifact.path),
            _session_options(threads),
            providers=["CPUExecutionProvider"],
            disabled_optimizers=_DISABLED_OPTIMIZERS,
        )

    def encode(self, texts: Sequence[str]) -> Encoded:
        """Embed texts; results are in input order whatever the internal batching."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of strings, not a single string")
        if not texts:
            return Encoded(np.zeros((0, self.DIMENSIONS), np.float32), [], [])
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = [e.ids for e in encodings]
        lengths = [len(x) for x in ids]
        vectors = np.empty((len(ids), self.DIMENSIONS), np.float32)
        for batch in _length_batches(lengths, self._batch_tokens):
            vectors[batch] = self._run([ids[i] for i in batch])
        return Encoded(
            vectors=vectors,
            token_counts=lengths,
            truncated=[bool(e.overflowing) for e in encodings],
        )

    def _run(self, rows: list[list[int]]) -> npt.NDArray[np.float32]:
        width = max(len(r) for r in rows)
        input_ids = np.full((len(rows), width), self._pad_id, np.int64)
        attention_mask = np.zeros((len(rows), width), np.int64)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = row
            attention_mask[i, : len(row)] = 1
        (out,) = self._session.run(
            [OUTPUT_NAME], {"input_ids": input_ids, "attention_mask": attention_mask}
        )
        return np.asarray(out, dtype=np.float32)


def attention_form() -> AttentionForm:
    """Opset-23 Attention when this ONNX Runtime has the kernel (added in 1.23)."""
    major, minor = (int(part) for part in ort.__version__.split(".")[:2])
    return "fused" if (major, minor) >= (1, 23) else "decomposed"


def _session_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


def _length_batches(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Indices grouped longest first, each group padding to at most token_budget tokens."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # Sorted descending, so the group's first member sets its padded width.
        if current and (len(current) + 1) * lengths[current[0]] > token_budget:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
