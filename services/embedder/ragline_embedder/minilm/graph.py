"""Build an ONNX graph of the all-MiniLM-L6-v2 BERT encoder straight from safetensors.

Standard ONNX ops only, written with onnx.helper, so no torch export is needed. The graph
mirrors Hugging Face BertModel in eval mode followed by sentence-transformers' mean pooling
and L2 normalisation:

    inputs   input_ids, attention_mask: int64 [batch, seq]
    output   sentence_embedding: float32 [batch, hidden], unit length

Two spellings of self-attention, numerically the same (both match the reference to cosine
>= 0.9999996):

- "fused": the standard ``Attention`` op of opset 23 (ONNX Runtime >= 1.23 has a CPU kernel).
  One kernel per layer instead of Reshape/Transpose/MatMul/Softmax/MatMul/Transpose: about 8%
  faster in fp32 and 10-15% faster in int8, where attention is the largest fp32 leftover.
- "decomposed": opset 17, the classic BERT export, for runtimes without Attention-23.

Both add the extended mask (1 - mask) * -10000 to the scaled scores before the softmax.
ONNX Runtime's graph optimiser later fuses the remaining patterns (bias + Gelu, LayerNorm).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from safetensors.numpy import load_file

AttentionForm = Literal["fused", "decomposed"]

# Bump when the emitted graph changes so cached .onnx files are rebuilt.
GRAPH_VERSION = 1
OUTPUT_NAME = "sentence_embedding"
# Additive mask for padded keys, as in the original BERT: exp(-10000 + s) is exactly 0 in fp32.
MASK_FILL = -10000.0
_OPSET: dict[AttentionForm, int] = {"fused": 23, "decomposed": 17}


@dataclass(frozen=True)
class BertConfig:
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    layer_norm_eps: float

    @classmethod
    def from_file(cls, path: Path) -> BertConfig:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported hidden_act {raw['hidden_act']!r}; only erf gelu")
        if raw.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only absolute position embeddings are supported")
        return cls(
            hidden_size=int(raw["hidden_size"]),
            num_layers=int(raw["num_hidden_layers"]),
            num_heads=int(raw["num_attention_heads"]),
            intermediate_size=int(raw["intermediate_size"]),
            layer_norm_eps=float(raw["layer_norm_eps"]),
        )

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads


class _GraphWriter:
    """Collects nodes and initialisers and names node outputs uniquely.

    Initialisers are keyed by name: asking twice for the same name (a shared constant used
    in every layer) returns the first one.
    """

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._names: set[str] = set()
        self._counter = 0

    def const(self, name: str, value: np.ndarray[Any, Any]) -> str:
        if name not in self._names:
            self._names.add(name)
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def scalar(self, name: str, value: float) -> str:
        return self.const(name, np.array(value, dtype=np.float32))

    def ints(self, name: str, values: Sequence[int]) -> str:
        return self.const(name, np.array(values, dtype=np.int64))

    def op(self, op_type: str, inputs: Sequence[str], **attrs: Any) -> str:
        self._counter += 1
        out = f"{op_type.lower()}_{self._counter}"
        self.nodes.append(
            helper.make_node(
                op_type, list(inputs), [out], name=f"{op_type}_{self._counter}", **attrs
            )
        )
        return out


def build_encoder_model(model_dir: Path, attention: AttentionForm = "fused") -> onnx.ModelProto:
    """Return the fp32 sentence-embedding graph for the weights in model_dir."""
    cfg = BertConfig.from_file(model_dir / "config.json")
    weights = load_file(str(model_dir / "model.safetensors"))
    g = _GraphWriter()

    def w(name: str) -> np.ndarray[Any, Any]:
        return np.asarray(weights[name], dtype=np.float32)

    def linear(x: str, prefix: str) -> str:
        # torch Linear stores [out, in]; MatMul wants [in, out].
        weight = g.const(f"{prefix}.weight_t", w(f"{prefix}.weight").T)
        bias = g.const(f"{prefix}.bias", w(f"{prefix}.bias"))
        return g.op("Add", [g.op("MatMul", [x, weight]), bias])

    def layer_norm(x: str, prefix: str) -> str:
        scale = g.const(f"{prefix}.weight", w(f"{prefix}.weight"))
        bias = g.const(f"{prefix}.bias", w(f"{prefix}.bias"))
        return g.op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=cfg.layer_norm_eps)

    one = g.scalar("one", 1.0)
    axis1 = g.ints("axes_1", [1])

    # Embeddings: (word + token_type) + position, then LayerNorm, in Hugging Face's order.
    word = g.op(
        "Gather",
        [g.const("word_embeddings", w("embeddings.word_embeddings.weight")), "input_ids"],
        axis=0,
    )
    # Single-sentence inputs always have token_type_id 0, so that row is a constant bias.
    token_type = g.const("token_type_row0", w("embeddings.token_type_embeddings.weight")[0])
    batch_dim = g.op("Shape", ["input_ids"], start=0, end=1)
    seq_dim = g.op("Shape", ["input_ids"], start=1, end=2)
    positions = g.op(
        "Slice",
        [
            g.const("position_embeddings", w("embeddings.position_embeddings.weight")),
            g.ints("zero_1d", [0]),
            seq_dim,
            g.ints("axis0_1d", [0]),
        ],
    )
    hidden = g.op("Add", [g.op("Add", [word, token_type]), positions])
    hidden = layer_norm(hidden, "embeddings.LayerNorm")

    # Extended attention mask [batch, 1, 1, seq]: 0 for tokens, MASK_FILL for padding.
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    additive = g.op("Mul", [g.op("Sub", [one, mask]), g.scalar("mask_fill", MASK_FILL)])
    additive = g.op("Unsqueeze", [additive, g.ints("axes_1_2", [1, 2])])
    if attention == "fused":
        # ORT's Attention kernel wants the query axis spelled out: [batch, 1, seq, seq].
        full = g.op("Concat", [batch_dim, g.ints("one_1d", [1]), seq_dim, seq_dim], axis=0)
        additive = g.op("Expand", [additive, full])

    def self_attention(q: str, k: str, v: str) -> str:
        if attention == "fused":
            # Default scale is 1/sqrt(head_size), as in BERT.
            return g.op(
                "Attention",
                [q, k, v, additive],
                q_num_heads=cfg.num_heads,
                kv_num_heads=cfg.num_heads,
            )
        split = g.ints("split_heads_shape", [0, 0, cfg.num_heads, cfg.head_size])
        qh = g.op("Transpose", [g.op("Reshape", [q, split])], perm=[0, 2, 1, 3])
        kh = g.op("Transpose", [g.op("Reshape", [k, split])], perm=[0, 2, 3, 1])
        vh = g.op("Transpose", [g.op("Reshape", [v, split])], perm=[0, 2, 1, 3])
        scale = g.scalar("score_scale", math.sqrt(cfg.head_size))
        scores = g.op("Div", [g.op("MatMul", [qh, kh]), scale])
        probs = g.op("Softmax", [g.op("Add", [scores, additive])], axis=-1)
        context = g.op("Transpose", [g.op("MatMul", [probs, vh])], perm=[0, 2, 1, 3])
        return g.op("Reshape", [context, g.ints("merge_heads_shape", [0, 0, cfg.hidden_size])])

    for i in range(cfg.num_layers):
        p = f"encoder.layer.{i}"
        context = self_attention(
            linear(hidden, f"{p}.attention.self.query"),
            linear(hidden, f"{p}.attention.self.key"),
            linear(hidden, f"{p}.attention.self.value"),
        )
        attn_out = linear(context, f"{p}.attention.output.dense")
        hidden = layer_norm(g.op("Add", [attn_out, hidden]), f"{p}.attention.output.LayerNorm")

        inter = linear(hidden, f"{p}.intermediate.dense")
        # Exact (erf) GELU: x * 0.5 * (1 + erf(x / sqrt(2))), BERT's "gelu".
        erf = g.op("Erf", [g.op("Div", [inter, g.scalar("sqrt2", math.sqrt(2.0))])])
        gelu = g.op("Mul", [g.op("Mul", [inter, g.op("Add", [erf, one])]), g.scalar("half", 0.5)])
        ffn_out = linear(gelu, f"{p}.output.dense")
        hidden = layer_norm(g.op("Add", [ffn_out, hidden]), f"{p}.output.LayerNorm")

    # Mean pooling over real tokens (sentence-transformers clamps the count at 1e-9).
    mask3 = g.op("Unsqueeze", [mask, g.ints("axes_2", [2])])
    summed = g.op("ReduceSum", [g.op("Mul", [hidden, mask3]), axis1], keepdims=0)
    counts = g.op(
        "Max", [g.op("ReduceSum", [mask3, axis1], keepdims=0), g.scalar("min_count", 1e-9)]
    )
    mean = g.op("Div", [summed, counts])
    # F.normalize: x / max(||x||, 1e-12). ReduceL2 took axes as an attribute before opset 18.
    if _OPSET[attention] >= 18:
        l2 = g.op("ReduceL2", [mean, axis1], keepdims=1)
    else:
        l2 = g.op("ReduceL2", [mean], axes=[1], keepdims=1)
    norm = g.op("Max", [l2, g.scalar("min_norm", 1e-12)])
    g.nodes.append(helper.make_node("Div", [mean, norm], [OUTPUT_NAME], name="normalize"))

    graph = helper.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2",
        inputs=[
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        outputs=[
            helper.make_tensor_value_info(
                OUTPUT_NAME, TensorProto.FLOAT, ["batch", cfg.hidden_size]
            ),
        ],
        initializer=g.initializers,
    )
    opsets = [helper.make_opsetid("", _OPSET[attention])]
    model = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="ragline",
        doc_string="sentence-transformers/all-MiniLM-L6-v2, mean pooled, L2 normalised",
    )
    # The oldest IR that can carry the opset keeps the file loadable by older runtimes.
    model.ir_version = helper.find_min_ir_version_for(opsets)
    onnx.checker.check_model(model)
    return model
