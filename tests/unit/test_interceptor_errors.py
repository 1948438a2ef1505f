"""What a handler's escaping exception becomes: its own status for a RaglineError, a 503
naming the database when PyMongo cannot reach it (anywhere in the handler), and INTERNAL
for the rest (the fault battery's database-down scenario found a search answering 500)."""

from __future__ import annotations

import grpc
import pytest
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    NetworkTimeout,
    ServerSelectionTimeoutError,
)

from ragline_core.errors import NotFoundError
from ragline_core.interceptors import known_error


@pytest.mark.parametrize(
    "exc",
    [
        ServerSelectionTimeoutError("127.0.0.1:27017: [Errno 111] Connection refused"),
        AutoReconnect("connection closed"),
        NetworkTimeout("timed out"),
    ],
)
def test_the_database_out_of_reach_is_a_503_naming_it(exc):
    error = known_error(exc)
    assert error is not None and error.code == grpc.StatusCode.UNAVAILABLE
    assert error.reason == "DATABASE_UNAVAILABLE" and "database" in str(error)
    assert "27017" not in str(error)  # no address of the store leaks to the caller


def test_ragline_errors_keep_their_status_and_the_rest_are_internal():
    own = NotFoundError("no collection 'x'", reason="COLLECTION_NOT_FOUND")
    assert known_error(own) is own
    assert known_error(DuplicateKeyError("E11000")) is None
    assert known_error(ValueError("bug")) is None
