"""Phone numbers as salon owners type them, and as staff may see them (masked)."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s()\-.]")


class PhoneError(ValueError):
    pass


def normalise_phone(text: str | None) -> str:
    """'+7 (916) 123-45-67' or '8 916 123 45 67' -> '79161234567'; raise PhoneError."""
    if not text or len(text) > 32:
        raise PhoneError("empty or too long")
    value = _SEPARATORS.sub("", text.strip())
    if value.startswith("+"):
        value = value[1:]
    elif value.startswith("00"):
        value = value[2:]
    elif len(value) == 11 and value.startswith("8"):
        # Russian trunk prefix: 8 916 … is +7 916 …
        value = "7" + value[1:]
    # ASCII digits only: isdigit() alone also takes '²' and other scripts' digits.
    if not (value.isascii() and value.isdigit()) or not 10 <= len(value) <= 15 or value.startswith("0"):
        raise PhoneError("not an international number")
    return value


def mask_phone(digits: str | None) -> str | None:
    """Show the country code and the last two digits: '+7 ••• •••-••-67'."""
    if not digits:
        return None
    country = digits[0] if digits[0] == "7" or len(digits) <= 10 else digits[:2]
    return f"+{country} ••• •••-••-{digits[-2:]}"
