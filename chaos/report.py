"""The results table: printed after a run and kept in docs/reliability.md, one row per
scenario and profile (a new run of the same scenario and profile replaces its row)."""

from __future__ import annotations

import re
from pathlib import Path

BEGIN = "<!-- chaos:results:begin -->"
END = "<!-- chaos:results:end -->"
HEADER = (
    "| scenario | fault | load | figures | invariants | profile | date | load avg |\n"
    "|---|---|---|---|---|---|---|---|"
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def row(
    scenario: str,
    fault: str,
    load: str,
    figures: str,
    verdicts: str,
    profile: str,
    date: str,
    machine: str,
) -> str:
    cells = [scenario, fault, load, figures, verdicts, profile, date, machine]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _key(line: str) -> tuple[str, str]:
    cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
    return (cells[0], cells[5]) if len(cells) >= 6 else ("", "")


def update_doc(path: Path, rows: list[str]) -> None:
    """Replaces the rows of the same (scenario, profile) in the doc's results table, keeping
    the others, sorted by scenario then profile."""
    text = path.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{path} has no {BEGIN} ... {END} block for the results")
    head, rest = text.split(BEGIN, 1)
    block, tail = rest.split(END, 1)
    kept: dict[tuple[str, str], str] = {}
    for line in block.strip().splitlines():
        if line.startswith("|") and not line.startswith(("| scenario", "|---")):
            kept[_key(line)] = line
    for line in rows:
        kept[_key(line)] = line
    ordered = [kept[k] for k in sorted(kept, key=lambda k: (_num(k[0]), k[0], k[1]))]
    path.write_text(f"{head}{BEGIN}\n{HEADER}\n" + "\n".join(ordered) + f"\n{END}{tail}")


def _num(scenario: str) -> int:
    match = re.match(r"\d+", scenario)
    return int(match.group()) if match else 99
