"""Untrusted input read one safe way: JSON bodies, ids, and text bound for PostgreSQL.

Everything a client sends is checked here before a handler acts on it, so bad input is a
4xx with a reason (the caller maps `BadInput` to its own answer) and never a 500:

- JSON: UTF-8 only; nesting at most `MAX_JSON_DEPTH` deep (the C decoder otherwise recurses
  until `RecursionError`); no `NaN`/`Infinity` and no number that overflows to infinity
  (`1e400`); integers within PostgreSQL's bigint; strings without NUL or lone surrogates
  (asyncpg cannot send either as text, and PostgreSQL refuses NUL in text columns).
- ids: ASCII digits only (`str.isdigit` also accepts '²', which `int()` then refuses, and
  other scripts' digits, which it reads), within bigint or a smaller bound.
- text: `storable_text` says whether a string can go to PostgreSQL as text.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_JSON_DEPTH = 32
BIGINT_MAX = 2**63 - 1
BIGINT_MIN = -(2**63)
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")
# Strings (with their escapes) hide brackets that are data, not structure.
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class BadInput(ValueError):
    """The input is not acceptable; the message says why, in words safe to show."""


def storable_text(value: str) -> bool:
    """Whether PostgreSQL can hold this string as text: no NUL, no lone surrogates."""
    return _UNSTORABLE.search(value) is None


def parse_id(raw: object, *, minimum: int = 1, maximum: int = BIGINT_MAX) -> int | None:
    """A whole number written in ASCII digits, from `minimum` (a positive id by default) to
    `maximum`; None for anything else."""
    if not isinstance(raw, str) or not _ASCII_DIGITS.fullmatch(raw):
        return None
    number = int(raw)
    return number if minimum <= number <= maximum else None


def _depth_ok(text: str, max_depth: int) -> bool:
    if text.count("[") + text.count("{") <= max_depth:
        return True  # the common case: no scan needed
    depth = 0
    for bracket in _BRACKETS.finditer(_JSON_STRING.sub("", text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > max_depth:
            return False
    return True


def _no_constant(name: str) -> Any:
    raise BadInput(f"{name} is not a JSON number this service accepts")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadInput("a number is out of range")
    return value


def _bigint(text: str) -> int:
    value = int(text)  # Python refuses more than 4300 digits itself (ValueError)
    if not BIGINT_MIN <= value <= BIGINT_MAX:
        raise BadInput("an integer is out of range")
    return value


def _check_strings(value: Any) -> None:
    # Recursion is bounded: the depth was checked before parsing.
    if isinstance(value, str):
        if not storable_text(value):
            raise BadInput("text must not contain NUL characters or lone surrogates")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def parse_json(raw: bytes | str, *, max_depth: int = MAX_JSON_DEPTH, storable_strings: bool = True) -> Any:
    """Parse a JSON document from a client; `BadInput` for anything this service would not
    accept (see the module docstring). `storable_strings=False` leaves the strings to a
    caller that checks the few it uses itself, to say precisely which field is wrong."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise BadInput("the body must be UTF-8") from None
    if not _depth_ok(text, max_depth):
        raise BadInput(f"JSON nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float, parse_int=_bigint)
    except BadInput:
        raise
    except (ValueError, RecursionError):
        raise BadInput("the body is not valid JSON") from None
    if storable_strings:
        _check_strings(value)
    return value
