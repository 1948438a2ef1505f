"""Printing: JSON for scripts (`--json`, the SDK's dataclasses with the API's field names),
Rich tables for people. Results go to stdout; errors, hints and progress to stderr."""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)
if not out.is_terminal and "COLUMNS" not in os.environ:
    # Piped: no screen to fit, and 80 columns would fold the ids in the tables.
    out.width = 160


def plain(value: Any) -> Any:
    """A result as plain JSON data: dataclasses as objects, enums by their API names,
    timestamps as RFC 3339."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def print_json(value: Any) -> None:
    # Not Rich: scripts want exactly the JSON, without markup or wrapping.
    sys.stdout.write(json.dumps(plain(value), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def enum_name(value: enum.Enum | str, prefix: str) -> str:
    """`JOB_STATE_SUCCEEDED` -> `succeeded` for tables."""
    text = value.value if isinstance(value, enum.Enum) else value
    return text.removeprefix(prefix).lower()


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    t = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        numeric = name.lower() in NUMERIC
        # Ids are copied into the next command: never wrapped.
        keep = name.lower() in IDS or numeric
        t.add_column(name, justify="right" if numeric else "left", overflow="fold", no_wrap=keep)
    for row in rows:
        t.add_row(*("" if v is None else str(v) for v in row))
    return t


def fields_table(title: str | None, pairs: Sequence[tuple[str, Any]]) -> Table:
    """One record as a two-column table (get commands)."""
    t = Table(title=title, title_justify="left", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    for name, value in pairs:
        t.add_row(name, "" if value is None else str(value))
    return t


IDS = {"job", "document", "key id", "name", "conversation"}
NUMERIC = {
    "#",
    "score",
    "documents",
    "chunks",
    "dims",
    "done",
    "ingested",
    "failed",
    "unchanged",
    "files",
    "requests",
    "errors",
    "tokens in",
    "tokens out",
    "cost usd",
    "cache hit",
    "chunk",
}
