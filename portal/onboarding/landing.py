"""The marketplace landing: what YClients sends the owner's browser with, checked.

YClients opens our registration URL with the salon id and, when "transmit user data" is on,
`user_data` (base64 JSON) and `user_data_sign` (hex HMAC-SHA256 keyed with the partner token
over the *decoded* bytes). This module turns those query parameters into a `Landing` or a
`LandingError` the page can render; it does no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams

from portal.salons.ids import YclientsSalonId
from portal.web.request_input import BadInput, parse_json

# YClients ids are positive 32-bit integers; anything longer is junk, not a salon.
MAX_YCLIENTS_SALON_ID = 2_147_483_647
_DIGITS = re.compile(r"[0-9]{1,10}")
_HEX = re.compile(r"[0-9a-fA-F]{64}")
MAX_USER_DATA_CHARS = 8192


@dataclass(frozen=True)
class MarketplaceUser:
    id: int | None
    name: str | None
    phone: str | None
    email: str | None
    is_approved: bool | None
    salon_name: str | None


@dataclass(frozen=True)
class Landing:
    """A checked landing. The signature proves which YClients *user* was sent, never which
    salon: `yclients_salon_ids` come unsigned from the query (several for a chain's branches)
    and are trusted only through the salon's own install (`admission.py`)."""

    yclients_salon_ids: tuple[YclientsSalonId, ...]
    user: MarketplaceUser | None
    signed: bool

    @property
    def yclients_salon_id(self) -> YclientsSalonId:
        return self.yclients_salon_ids[0]


class LandingError(Exception):
    """Bad landing input; `code` is stable for API clients, `message_key` is translated."""

    def __init__(self, status: int, code: str, message_key: str):
        super().__init__(code)
        self.status, self.code, self.message_key = status, code, message_key


def sign_user_data(raw: bytes, partner_token: str) -> str:
    return hmac.new(partner_token.encode(), raw, hashlib.sha256).hexdigest()


def encode_user_data(raw: bytes) -> str:
    """As real traffic does: URL-safe alphabet, no padding."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_user_data(value: str) -> bytes:
    """Decode either base64 alphabet, with or without padding."""
    if len(value) > MAX_USER_DATA_CHARS:
        raise LandingError(400, "USER_DATA_CORRUPT", "error.user_data_corrupt")
    text = value.strip().replace("-", "+").replace("_", "/").replace(" ", "+")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise LandingError(400, "USER_DATA_CORRUPT", "error.user_data_corrupt") from None


# A chain installs at most this many branches in one go; more is junk, not a chain.
MAX_BRANCHES = 100
# `salon_id`, the documented `salon_ids[]`, and the indexed `salon_ids[0]` some clients write.
_SALON_KEY = re.compile(r"salon_id|salon_ids(\[[0-9]{0,3}\])?")


def _salon_id(raw: str) -> YclientsSalonId:
    raw = raw.strip()
    if not _DIGITS.fullmatch(raw) or not (0 < int(raw) <= MAX_YCLIENTS_SALON_ID):
        raise LandingError(400, "SALON_ID_INVALID", "error.salon_id_invalid")
    return YclientsSalonId(int(raw))


def parse_yclients_salon_ids(params: QueryParams | Mapping[str, str]) -> tuple[YclientsSalonId, ...]:
    """Every branch the landing names: `salon_id` and each repeated `salon_ids[]`, in order,
    without repeats. (`QueryParams.get` would give only the last of a repeated key.)"""
    items = params.multi_items() if isinstance(params, QueryParams) else list(params.items())
    raw = [value for key, value in items if _SALON_KEY.fullmatch(key) and value.strip() != ""]
    if not raw:
        raise LandingError(400, "SALON_ID_MISSING", "error.salon_id_missing")
    if len(raw) > MAX_BRANCHES:
        raise LandingError(400, "SALON_ID_INVALID", "error.salon_id_invalid")
    return tuple(dict.fromkeys(_salon_id(value) for value in raw))


def _text(value: object, limit: int = 200) -> str | None:
    return str(value)[:limit] if value not in (None, "") else None


def _signed_json(raw: bytes) -> dict[str, Any]:
    try:
        data = parse_json(raw)
    except BadInput:
        raise LandingError(400, "USER_DATA_CORRUPT", "error.user_data_corrupt") from None
    if not isinstance(data, dict):
        raise LandingError(400, "USER_DATA_CORRUPT", "error.user_data_corrupt")
    return data


def _user_id(value: object) -> int | None:
    """The user's id as a positive integer (a JSON number or its digits), else refused."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise LandingError(400, "USER_DATA_CORRUPT", "error.user_data_corrupt")
    if not 0 < number <= 2**62:
        raise LandingError(400, "USER_DATA_CORRUPT", "error.user_data_corrupt")
    return number


def _user_from_json(data: Mapping[str, Any]) -> MarketplaceUser:
    # `user_id` is the documented name; some accounts are said to send `id` as well.
    user_id = _user_id(data.get("user_id", data.get("id")))
    approved = data.get("is_approved")
    return MarketplaceUser(
        id=user_id,
        name=_text(data.get("name")),
        phone=_text(data.get("phone"), 32),
        email=_text(data.get("email"), 254),
        is_approved=bool(approved) if approved is not None else None,
        salon_name=_text(data.get("salon_name")),
    )


def parse_landing(params: QueryParams | Mapping[str, str], *, partner_token: str,
                  allow_unsigned: bool) -> Landing:
    """Check a landing's query parameters; raise `LandingError` on anything wrong."""
    salon_ids = parse_yclients_salon_ids(params)
    user_data, sign = params.get("user_data"), params.get("user_data_sign")
    if not user_data and not sign:
        if allow_unsigned:
            return Landing(yclients_salon_ids=salon_ids, user=None, signed=False)
        raise LandingError(403, "SIGNATURE_MISSING", "error.signature_missing")
    if not user_data:
        raise LandingError(400, "USER_DATA_MISSING", "error.user_data_corrupt")
    if not sign:
        raise LandingError(403, "SIGNATURE_MISSING", "error.signature_missing")
    raw = decode_user_data(user_data)
    if not _HEX.fullmatch(sign.strip()) or not hmac.compare_digest(
        sign.strip().lower(), sign_user_data(raw, partner_token)
    ):
        raise LandingError(403, "SIGNATURE_INVALID", "error.signature_invalid")
    user = _user_from_json(_signed_json(raw))
    if user.id is None:
        # The documented user_data always names the user; without it nobody could be bound.
        raise LandingError(400, "USER_DATA_CORRUPT", "error.user_data_corrupt")
    return Landing(yclients_salon_ids=salon_ids, user=user, signed=True)
