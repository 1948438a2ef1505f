"""The `ragline` CLI's own rules, without a server: which exit code each error class gets
and the one line it prints, document ids from file paths, batching and file selection (the
commands themselves run against the stack in tests/e2e/test_cli.py)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from ragline_client.cli import ingest as ing
from ragline_client.cli.exits import Exit, error_line, exit_code
from ragline_client.errors import (
    ConnectionFailedError,
    FieldViolation,
    from_status,
)
from ragline_client.models import DocumentInput

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("http", "grpc", "reason", "expected"),
    [
        (401, 16, "INVALID_API_KEY", Exit.AUTH),
        (403, 7, "MISSING_SCOPE", Exit.AUTH),
        (404, 5, "JOB_NOT_FOUND", Exit.NOT_FOUND),
        (400, 3, "INVALID_ARGUMENT", Exit.INVALID),
        (409, 10, "CONFLICT", Exit.INVALID),
        (413, 8, "REQUEST_TOO_LARGE", Exit.INVALID),
        (429, 8, "RATE_LIMITED", Exit.LIMITED),
        (429, 8, "SPEND_CAP_EXCEEDED", Exit.LIMITED),
        (503, 14, "", Exit.UNAVAILABLE),
        (504, 4, "", Exit.UNAVAILABLE),
        (500, 13, "", Exit.UNEXPECTED),
    ],
)
def test_exit_code_by_error_class(http, grpc, reason, expected):
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    status = {"code": grpc, "message": "m", "details": details if reason else []}
    assert exit_code(from_status(status, http_status=http)) is expected
    # The same class over gRPC (no HTTP status) gets the same code.
    assert exit_code(from_status(status)) is expected


def test_exit_codes_are_distinct_and_documented():
    codes = [int(c) for c in Exit]
    assert len(codes) == len(set(codes)) and Exit.USAGE == 2
    readme = (ROOT / "clients" / "python" / "README.md").read_text()
    table = readme.split("Exit codes, by error class:", 1)[1].split("\n\n", 2)[1]
    assert [int(c) for c in re.findall(r"^\| (\d+) \|", table, flags=re.M)] == codes


def test_error_line_names_the_class_reason_and_field():
    err = from_status(
        {
            "code": 3,
            "message": "the request is invalid",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "EMPTY_QUERY"},
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "field_violations": [{"field": "query", "description": "must not be empty"}],
                },
            ],
        },
        http_status=400,
    )
    assert error_line(err) == (
        "error: invalid argument: the request is invalid; query: must not be empty "
        "[EMPTY_QUERY, HTTP 400]"
    )
    # A message that already names the field is not repeated.
    named = from_status({"code": 3, "message": "query must not be empty"}, http_status=400)
    named.field_violations.append(FieldViolation("query", "query must not be empty"))
    assert error_line(named) == "error: invalid argument: query must not be empty [HTTP 400]"
    down = ConnectionFailedError("cannot reach the gateway")
    assert error_line(down) == "error: unavailable: cannot reach the gateway"


def test_document_ids_from_paths_are_valid_and_distinct():
    valid = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
    assert ing.document_id_of("notes/a.md") == "notes:a.md"
    ids = {ing.document_id_of(p) for p in ("a b.md", "a_b.md", "a?b.md", "x/" * 100 + "y.txt")}
    assert len(ids) == 4 and all(valid.match(i) for i in ids)
    assert ing.document_id_of("a b.md") == ing.document_id_of("a b.md")  # stable


def test_batches_by_count_and_size():
    small = [(None, DocumentInput("x" * 10)) for _ in range(250)]
    assert [len(b) for b in ing._batches(small)] == [100, 100, 50]  # type: ignore[arg-type]
    big = [(None, DocumentInput("y" * 300_000)) for _ in range(3)]
    assert [len(b) for b in ing._batches(big)] == [1, 1, 1]  # type: ignore[arg-type]


def test_collect_takes_files_and_matching_folder_files(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ("d/a.txt", "d/b.md", "d/sub/c.html", "d/skip.bin", "one.pdf"):
        (tmp_path / name).write_bytes(b"x")
    found = ing.collect([tmp_path / "d", tmp_path / "one.pdf"], ing.core.DEFAULT_PATTERNS, True)
    assert [f.name for f in found] == ["a.txt", "b.md", "sub/c.html", "one.pdf"]
    flat = ing.collect([tmp_path / "d"], ["*.md", "*.html"], False)
    assert [f.name for f in flat] == ["b.md"]


def test_console_script_is_the_sdks_and_the_server_installs_none():
    sdk = tomllib.loads((ROOT / "clients" / "python" / "pyproject.toml").read_text())
    assert sdk["project"]["scripts"] == {"ragline": "ragline_client.cli:main"}
    assert set(sdk["project"]["optional-dependencies"]["cli"]) >= {"typer>=0.16", "rich>=13.7"}
    server = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "scripts" not in server["project"] and "gui-scripts" not in server["project"]
