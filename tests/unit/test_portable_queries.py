"""The services write to the portable MongoDB subset that FerretDB, MongoDB and Atlas all
serve: no transactions, change streams, $facet, $lookup or TTL indexes. This test fails
when code starts using one of them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p for d in ("core", "services") for p in (ROOT / d).rglob("*.py")]

FORBIDDEN = {
    r"\bstart_session\s*\(": "sessions/transactions (FerretDB has none)",
    r"\bstart_transaction\s*\(": "transactions (FerretDB has none)",
    r"\.watch\s*\(": "change streams (FerretDB has none)",
    r"[\"']\$facet[\"']": "$facet (do facets in the service)",
    r"[\"']\$lookup[\"']": "$lookup (join in the service)",
    r"[\"']\$graphLookup[\"']": "$graphLookup",
    r"expireAfterSeconds": "TTL indexes (expire in the service)",
    r"[\"']\$where[\"']\s*:": "$where",
}


def test_sources_exist():
    assert len(SOURCES) > 30


def test_no_query_uses_what_ferretdb_lacks():
    problems = []
    for path in SOURCES:
        text = path.read_text()
        for pattern, why in FORBIDDEN.items():
            for match in re.finditer(pattern, text):
                line = text.count("\n", 0, match.start()) + 1
                problems.append(f"{path.relative_to(ROOT)}:{line}: {why}")
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_forbidden_query(tmp_path):
    sample = 'pipeline = [{"$facet": {"a": []}}]\nawait client.start_session()\n'
    hits = [why for pattern, why in FORBIDDEN.items() if re.search(pattern, sample)]
    assert len(hits) == 2
