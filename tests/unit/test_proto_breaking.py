"""v1 stays stable: `buf breaking` (FILE rules) against the committed baseline image,
protos/v1-baseline.binpb (`make proto-baseline` rewrites it, deliberately, when a v1 change
is accepted). A baseline file works in a shallow or fresh clone, where `.git#ref=HEAD~1`
may not exist. `make lint` runs the same check."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / ".venv" / "bin" / "buf"
BASELINE = ROOT / "protos" / "v1-baseline.binpb"


def _breaking(source: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BUF), "breaking", str(source), "--against", str(BASELINE)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_protos_keep_the_v1_baseline():
    out = _breaking(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_removed_field_and_a_changed_type_are_caught(tmp_path):
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(ROOT / "protos", tmp_path / "protos", ignore=shutil.ignore_patterns("*.binpb"))
    proto = tmp_path / "protos" / "ragline" / "ingest" / "v1" / "ingest_service.proto"
    text = proto.read_text()
    removed = "  int32 chunks_done = 7 [(google.api.field_behavior) = OUTPUT_ONLY];\n"
    retyped = "int32 documents_failed = 6"
    assert removed in text and retyped in text
    proto.write_text(text.replace(removed, "").replace(retyped, "int64 documents_failed = 6"))
    out = _breaking(tmp_path)
    assert out.returncode != 0
    assert '"chunks_done"' in out.stdout and '"documents_failed"' in out.stdout, out.stdout
