"""python -m ragline_openapi DESCRIPTOR_SET OUT.json — writes the OpenAPI 3.1 document."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ragline_openapi import document, protos


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    doc = document.build(protos.load(Path(argv[1])))
    Path(argv[2]).write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
