"""The unknown-field check's tables: what the gateway's Lua and the chat WebSocket accept."""

from __future__ import annotations

from typing import cast

import pytest
from google.protobuf.descriptor import Descriptor

from ragline.ingest.v1 import ingest_service_pb2 as ingest_pb
from ragline_core.errors import InvalidArgumentError
from ragline_core.json_fields import first_unknown, reject_unknown, schema_of
from ragline_stack import json_fields

INGEST = schema_of(cast(Descriptor, ingest_pb.IngestDocumentsRequest.DESCRIPTOR))


def test_both_spellings_pass_and_free_form_values_are_not_looked_into() -> None:
    doc = {"title": "t", "content": "c", "metadata": {"anything": {"at": ["any", "depth"]}}}
    assert first_unknown({"embeddingModel": "m", "documents": [doc]}, INGEST)[0] == ""
    assert first_unknown({"embedding_model": "m", "documents": [doc]}, INGEST)[0] == ""


def test_a_nested_typo_is_named_by_its_path_with_the_names_valid_there() -> None:
    body = {"collection": "c", "documents": [{"title": "t"}, {"titel": "t"}]}
    with pytest.raises(InvalidArgumentError) as err:
        reject_unknown(body, INGEST)
    assert err.value.reason == "UNKNOWN_FIELD" and err.value.field == "documents[1].titel"
    assert err.value.message == (
        'unknown field "documents[1].titel"; valid fields here: title, content, metadata, id'
    )


def test_the_gateway_table_covers_every_body_and_no_body_binding() -> None:
    table = json_fields.lua_table()
    assert '["POST /api/v1/search"] = {message = ' in table
    assert '["GET /api/v1/collections"] = {query = "page_size, page_token"}' in table
    # The upload's body is raw bytes: never checked.
    assert "documents:upload" not in table
    assert json_fields.lua_pattern("/api/v1/keys/{key_id}:rotate") == (
        "^/api/v1/keys/[^/:]+:rotate$"
    )
