"""Metadata filters: a small, safe subset of MongoDB's query language.

Supported: equality ({"category": "tutorial"}), $eq $ne $in $nin $gt $gte $lt $lte
$exists, and $and / $or of filters. Anything else — an unknown operator, $where, $regex,
$expr — is rejected with a 400 that names it. Filters compile to a predicate evaluated
inside the search, so `limit` hits come back whenever that many match.

The predicate runs once per chunk on the event loop (between taking the filter mask and
taking chunks out of the index nothing may await), so its cost is bounded instead: at most
MAX_CLAUSES clauses, MAX_LIST_VALUES values per $in/$nin list (looked up in a set, not
compared one by one) and MAX_FILTER_BYTES of JSON in all; more is a 400 FILTER_TOO_LARGE.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Hashable
from typing import Any

from ragline_core.errors import InvalidArgumentError, quoted

Predicate = Callable[[dict[str, Any]], bool]
MAX_DEPTH = 8
MAX_CLAUSES = 64
MAX_LIST_VALUES = 1000
MAX_FILTER_BYTES = 64 * 1024
_MISSING = object()

COMPARISONS = ("$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists")
LOGICAL = ("$and", "$or")


def _bad(message: str) -> InvalidArgumentError:
    return InvalidArgumentError(message, reason="BAD_FILTER", field="filters")


def _too_large(message: str) -> InvalidArgumentError:
    return InvalidArgumentError(message, reason="FILTER_TOO_LARGE", field="filters")


def check_encoded_size(encoded_bytes: int) -> None:
    """A cheap guard before a protobuf filter is converted (MessageToDict costs ~0.1 s per
    MB on the event loop): protobuf is at most ~6x the JSON, so past 8x it cannot pass."""
    if encoded_bytes > 8 * MAX_FILTER_BYTES:
        raise _too_large(
            f"filters are {encoded_bytes} bytes encoded; the limit is {MAX_FILTER_BYTES} "
            "bytes as JSON"
        )


def _getter(path: str) -> Callable[[dict[str, Any]], Any]:
    """Reads a dotted path from metadata (_MISSING if absent); split once, not per chunk."""
    parts = tuple(path.split("."))
    if len(parts) == 1:
        return lambda m: m.get(path, _MISSING)

    def get(metadata: dict[str, Any]) -> Any:
        value: Any = metadata
        for part in parts:
            if not isinstance(value, dict) or part not in value:
                return _MISSING
            value = value[part]
        return value

    return get


def _scalar(value: Any, where: str) -> Any:
    if isinstance(value, dict):
        raise _bad(f"{where}: expected a value, got an object")
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        raise _bad(f"{where}: lists of objects are not supported")
    return value


def _ordered(a: Any, b: Any) -> bool:
    """Range operators compare numbers with numbers and strings with strings only."""
    numeric = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    return (isinstance(a, numeric) and isinstance(b, numeric)) or (
        isinstance(a, str) and isinstance(b, str)
    )


def _key(value: Any) -> Hashable:
    """A hashable form under which two values are equal exactly when _equals says so
    (True is not 1, 1 is 1.0); objects get a key nothing equals."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", value)
    if isinstance(value, str) or value is None:
        return ("scalar", value)
    if isinstance(value, list):
        return ("list", tuple(_key(v) for v in value))
    return ("object", id(value))


def _equals(actual: Any, expected: Any) -> bool:
    if isinstance(actual, list) and not isinstance(expected, list):
        return expected in actual  # like MongoDB: a list field matches any element
    if isinstance(actual, bool) != isinstance(expected, bool):
        return False
    return bool(actual == expected)


def _comparison(op: str, operand: Any, path: str) -> Predicate:
    where = f"{path}.{op}"
    lookup = _getter(path)
    if op == "$exists":
        if not isinstance(operand, bool):
            raise _bad(f"{where} takes true or false")
        return lambda m: (lookup(m) is not _MISSING) == operand
    if op in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise _bad(f"{where} takes a list")
        if len(operand) > MAX_LIST_VALUES:
            raise _too_large(f"{where} has {len(operand)} values; the limit is {MAX_LIST_VALUES}")
        options = {_key(_scalar(v, where)) for v in operand}

        def is_in(m: dict[str, Any]) -> bool:
            actual = lookup(m)
            if actual is _MISSING:
                return False
            if _key(actual) in options:
                return True
            # Like MongoDB: a list field matches when any element does.
            return isinstance(actual, list) and any(_key(a) in options for a in actual)

        return is_in if op == "$in" else (lambda m: not is_in(m))
    value = _scalar(operand, where)
    if op == "$eq":
        return lambda m: _equals(lookup(m), value)
    if op == "$ne":
        return lambda m: not _equals(lookup(m), value)
    if value is None or isinstance(value, list | bool):
        raise _bad(f"{where} takes a number or a string")
    compare: dict[str, Callable[[Any, Any], bool]] = {
        "$gt": operator.gt,
        "$gte": operator.ge,
        "$lt": operator.lt,
        "$lte": operator.le,
    }
    check = compare[op]

    def ranged(m: dict[str, Any]) -> bool:
        actual = lookup(m)
        return actual is not _MISSING and _ordered(actual, value) and check(actual, value)

    return ranged


def _all_of(parts: list[Predicate]) -> Predicate:
    # Plain loops: the mask calls this once per chunk, and a generator costs ~2x.
    if len(parts) == 1:
        return parts[0]

    def every(m: dict[str, Any]) -> bool:
        for part in parts:  # noqa: SIM110
            if not part(m):
                return False
        return True

    return every


def _any_of(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]

    def some(m: dict[str, Any]) -> bool:
        for part in parts:  # noqa: SIM110
            if part(m):
                return True
        return False

    return some


def compile_filter(spec: dict[str, Any] | None) -> Predicate | None:
    """A predicate over chunk metadata, or None for no filter; raises 400 on bad input."""
    if not spec:
        return None
    try:
        encoded = json.dumps(spec, ensure_ascii=False, separators=(",", ":"), default=str)
    except (RecursionError, ValueError):
        raise _bad(f"filters nest deeper than {MAX_DEPTH} levels") from None
    size = len(encoded.encode())
    if size > MAX_FILTER_BYTES:
        raise _too_large(f"filters are {size} bytes as JSON; the limit is {MAX_FILTER_BYTES}")
    counter = [0]
    return _compile(spec, 0, counter)


def _compile(spec: Any, depth: int, counter: list[int]) -> Predicate:
    if not isinstance(spec, dict):
        raise _bad("a filter must be an object")
    if depth > MAX_DEPTH:
        raise _bad(f"filters nest deeper than {MAX_DEPTH} levels")
    parts: list[Predicate] = []
    for key, value in spec.items():
        counter[0] += 1
        if counter[0] > MAX_CLAUSES:
            raise _bad(f"filters have more than {MAX_CLAUSES} clauses")
        if key in LOGICAL:
            if not isinstance(value, list) or not value:
                raise _bad(f"{key} takes a non-empty list of filters")
            subs = [_compile(v, depth + 1, counter) for v in value]
            parts.append(_all_of(subs) if key == "$and" else _any_of(subs))
        elif key.startswith("$"):
            raise _bad(
                f"unsupported filter operator {quoted(key)}; supported: "
                + ", ".join((*COMPARISONS, *LOGICAL))
            )
        elif not key or len(key) > 256:
            raise _bad("filter field names must be 1-256 characters")
        elif isinstance(value, dict):
            if not value:
                raise _bad(f"{key}: empty operator object")
            for op, operand in value.items():
                if op not in COMPARISONS:
                    raise _bad(
                        f"unsupported filter operator {quoted(op)} on field {quoted(key)}; "
                        "supported: " + ", ".join((*COMPARISONS, *LOGICAL))
                    )
                parts.append(_comparison(op, operand, key))
        else:
            parts.append(_comparison("$eq", value, key))
    return _all_of(parts)
