"""The repository's copy of the MiniLM reference vectors is the shared original, unchanged."""

from __future__ import annotations

import hashlib

from tests.support.reference import REFERENCE, SHARED_REFERENCE, load_reference

# sha256 of ../shared/testdata/minilm_reference.json when it was copied here.
SHA256 = "7dd251f98b2662025ef11a806ace3c121fe718a52ce34f4ba5c16440bb135bc5"


def test_reference_vectors_are_carried_by_the_repository_unchanged() -> None:
    data = load_reference()
    assert all(len(v) == 384 for v in data["vectors"])
    assert hashlib.sha256(REFERENCE.read_bytes()).hexdigest() == SHA256


def test_the_shared_original_has_not_moved_on() -> None:
    # ../shared exists in a full workspace, not in the GitHub workflow (which relies on the
    # copy); where it exists, a changed original must be copied here too.
    if SHARED_REFERENCE.is_file():
        digest = hashlib.sha256(SHARED_REFERENCE.read_bytes()).hexdigest()
        assert digest == SHA256, f"{SHARED_REFERENCE} changed: copy it to {REFERENCE}"
