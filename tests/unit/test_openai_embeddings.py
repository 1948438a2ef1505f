"""OpenAI's embeddings shape at the chat edge: what is refused before the embedder is asked,
how the embedder's field names become OpenAI's, and the base64 encoding its SDKs decode."""

from __future__ import annotations

import base64

import numpy as np
import pytest

from ragline_chat.embeddings import Embeddings
from ragline_chat.openai_embeddings import as_input_error, parse, response
from ragline_core.errors import InvalidArgumentError


def test_a_string_or_a_list_of_strings_is_the_input():
    one = parse({"input": "hi", "model": "m", "user": "u"})
    assert one.texts == ["hi"] and one.single and one.encoding == "float"
    many = parse({"input": ["a", "b"], "encoding_format": "base64", "dimensions": 384})
    assert many.texts == ["a", "b"] and not many.single and many.model == ""
    assert many.encoding == "base64" and many.dimensions == 384


@pytest.mark.parametrize(
    ("body", "reason", "field"),
    [
        ({}, "EMPTY_INPUT", "input"),
        ({"input": []}, "EMPTY_INPUT", "input"),
        ({"input": [1, 2]}, "TOKEN_INPUT_UNSUPPORTED", "input"),
        ({"input": [[1], [2, 3]]}, "TOKEN_INPUT_UNSUPPORTED", "input"),
        ({"input": ["a", 1]}, "INVALID_INPUT", "input"),
        ({"input": {"a": 1}}, "INVALID_INPUT", "input"),
        ({"input": "x", "model": 3}, "INVALID_MODEL", "model"),
        ({"input": "x", "encoding_format": "int8"}, "INVALID_ENCODING_FORMAT", "encoding_format"),
        ({"input": "x", "dimensions": 0}, "INVALID_DIMENSIONS", "dimensions"),
        ({"input": "x", "dimensions": True}, "INVALID_DIMENSIONS", "dimensions"),
        ({"input": "x", "user": 5}, "INVALID_USER", "user"),
        ({"input": "x", "inputs": "y"}, "UNKNOWN_FIELD", "inputs"),
    ],
)
def test_bad_requests_name_the_field(body, reason, field):
    with pytest.raises(InvalidArgumentError) as err:
        parse(body)
    assert err.value.reason == reason and err.value.field == field


def test_the_embedders_texts_field_becomes_input():
    error = as_input_error(
        InvalidArgumentError("texts[2] must not be empty or whitespace", reason="EMPTY_TEXT"),
        single=False,
    )
    assert error.message == "input[2] must not be empty or whitespace"
    assert error.field == "input[2]"
    single = as_input_error(InvalidArgumentError("texts[0] is 9 characters"), single=True)
    assert single.message == "input is 9 characters" and single.field == "input"


def test_base64_is_little_endian_float32_as_openais_sdks_decode_it():
    vectors = [[0.25, -1.5, 3.0], [1e-3, 0.0, -2.0]]
    result = Embeddings(vectors, "m", 4, 4, ())
    body = response(result, "base64")
    for item, vector in zip(body["data"], vectors, strict=True):
        decoded = np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4")
        assert np.allclose(decoded, vector)
    assert response(result, "float")["data"][1]["embedding"] == vectors[1]
    assert body["usage"] == {"prompt_tokens": 4, "total_tokens": 4}
