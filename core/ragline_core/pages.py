"""Standard pagination (AIP-158) of short lists held in memory (the model lists): the
page token is an opaque offset, page_size 0 means the default."""

from __future__ import annotations

import base64

from ragline_core.errors import InvalidArgumentError

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 100


def window(total: int, page_size: int, page_token: str) -> tuple[int, int, str]:
    """The slice [start, end) of a list of `total` items for this page, and the token of
    the next page ("" on the last)."""
    if page_size < 0:
        raise InvalidArgumentError(
            "page_size must not be negative", reason="INVALID_PAGE_SIZE", field="page_size"
        )
    size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    start = _offset(page_token)
    end = min(start + size, total)
    return start, end, _token(end) if end < total else ""


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _offset(token: str) -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        if not raw.startswith("o:") or int(raw[2:]) < 0:
            raise ValueError(raw)
        return int(raw[2:])
    except ValueError:
        raise InvalidArgumentError(
            "page_token is not a token from a previous page",
            reason="INVALID_PAGE_TOKEN",
            field="page_token",
        ) from None
