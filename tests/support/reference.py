"""The MiniLM reference vectors (tests/data/minilm/minilm_reference.json).

Carried by the repository rather than read from ../shared/testdata: that folder is absent
in the GitHub workflow, where reading it meant the faithfulness tests skipped (or crashed)
instead of running. A missing file is a failure, never a skip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "tests" / "data" / "minilm" / "minilm_reference.json"
# The original, next to the repository in a full workspace (not in CI).
SHARED_REFERENCE = ROOT.parent / "shared" / "testdata" / "minilm_reference.json"


def load_reference() -> dict[str, Any]:
    """The reference texts and vectors; an AssertionError naming the file if it is gone."""
    assert REFERENCE.is_file(), f"reference vectors missing: {REFERENCE} (see its README)"
    data: dict[str, Any] = json.loads(REFERENCE.read_text(encoding="utf-8"))
    assert len(data["texts"]) == len(data["vectors"]) == 50
    return data
