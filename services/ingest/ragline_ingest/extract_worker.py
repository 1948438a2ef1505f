"""The extraction child process: `python -m ragline_ingest.extract_worker KIND LIMITS`,
the file on stdin, one JSON object on stdout: {"text": ...} or {"reason", "message"}.

Its limits are set before the file is read: address space (RLIMIT_AS), CPU seconds
(RLIMIT_CPU, a backstop should the parent die before its own timeout) and a lower CPU
priority, so a hostile file costs this process and nothing else.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import traceback

from ragline_ingest.parsing import Caps, Rejected, parse

# The exit status when parsing ran out of memory and even the answer could not be written.
EXIT_OUT_OF_MEMORY = 3
_UNREADABLE = {".pdf": "BAD_PDF", ".docx": "BAD_DOCX"}


def _limit(memory_bytes: int, cpu_s: int, niceness: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s + 1))
    os.nice(niceness)


def _answer(data: bytes, kind: str, caps: Caps, memory_bytes: int) -> dict[str, str]:
    try:
        return {"text": parse(data, kind, caps)}
    except Rejected as exc:
        return {"reason": exc.reason, "message": exc.message}
    except MemoryError:
        return {
            "reason": "DOCUMENT_TOO_COMPLEX",
            "message": f"parsing the file needs over {memory_bytes // 2**20} MiB of memory "
            "(the limit, UPLOAD_EXTRACT_MEMORY_MB)",
        }
    except Exception:
        # A parser tripping over a malformed file (pypdf raises many kinds): the file's
        # fault as far as the client can tell; the trace goes to the service log.
        traceback.print_exc(limit=8)
        return {
            "reason": _UNREADABLE.get(kind, "UNREADABLE_FILE"),
            "message": f"the file is not a readable {kind} document",
        }


def main() -> int:
    kind, raw = sys.argv[1], json.loads(sys.argv[2])
    memory_bytes = int(raw["memory_bytes"])
    _limit(memory_bytes, int(raw["cpu_s"]), int(raw["niceness"]))
    data = sys.stdin.buffer.read()
    answer = _answer(data, kind, Caps(**raw["caps"]), memory_bytes)
    del data
    try:
        sys.stdout.buffer.write(json.dumps(answer, ensure_ascii=False).encode())
    except MemoryError:
        return EXIT_OUT_OF_MEMORY
    return 0


if __name__ == "__main__":
    sys.exit(main())
