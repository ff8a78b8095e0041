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
    yclients_salon_id: YclientsSalonId
    user: MarketplaceUser | None
    signed: bool
    # True when the signed data itself named this salon; False when only the (unsigned)
    # query did, and the signature is all that ties the link to one salon.
    bound: bool = False
    # sha256 of the signature: what the portal remembers of a link, never the link itself.
    sign_hash: bytes | None = None


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


def parse_yclients_salon_id(params: Mapping[str, str]) -> YclientsSalonId:
    """YClients' id from the landing (`salon_id`, or the first of `salon_ids[]`)."""
    raw = params.get("salon_id") or params.get("salon_ids[0]") or params.get("salon_ids[]")
    if raw is None or raw == "":
        raise LandingError(400, "SALON_ID_MISSING", "error.salon_id_missing")
    raw = raw.strip()
    if not _DIGITS.fullmatch(raw) or not (0 < int(raw) <= MAX_YCLIENTS_SALON_ID):
        raise LandingError(400, "SALON_ID_INVALID", "error.salon_id_invalid")
    return YclientsSalonId(int(raw))


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


def _salon_id_value(value: object) -> int:
    """One salon id from the signed JSON: a positive 32-bit integer, as a number or digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        number = int(value.strip())
    else:
        raise LandingError(400, "USER_DATA_CORRUPT", "error.user_data_corrupt")
    if not 0 < number <= MAX_YCLIENTS_SALON_ID:
        raise LandingError(400, "USER_DATA_CORRUPT", "error.user_data_corrupt")
    return number


def signed_salon_ids(data: Mapping[str, object]) -> frozenset[int] | None:
    """The salons the signed JSON names (`salon_id`, `salon_ids`), or None when it names none."""
    named: set[int] = set()
    if data.get("salon_id") is not None:
        named.add(_salon_id_value(data["salon_id"]))
    ids = data.get("salon_ids")
    if ids is not None:
        if not isinstance(ids, list) or len(ids) > 1000:
            raise LandingError(400, "USER_DATA_CORRUPT", "error.user_data_corrupt")
        named.update(_salon_id_value(v) for v in ids)
    return frozenset(named) if named else None


def _user_from_json(data: Mapping[str, Any]) -> MarketplaceUser:
    user_id = data.get("id", data.get("user_id"))
    try:
        user_id = int(user_id) if user_id is not None else None
    except (TypeError, ValueError):
        raise LandingError(400, "USER_DATA_CORRUPT", "error.user_data_corrupt") from None
    if user_id is not None and not (0 < user_id <= 2**62):
        raise LandingError(400, "USER_DATA_CORRUPT", "error.user_data_corrupt")
    approved = data.get("is_approved")
    return MarketplaceUser(
        id=user_id,
        name=_text(data.get("name")),
        phone=_text(data.get("phone"), 32),
        email=_text(data.get("email"), 254),
        is_approved=bool(approved) if approved is not None else None,
        salon_name=_text(data.get("salon_name")),
    )


def parse_landing(params: Mapping[str, str], *, partner_token: str, allow_unsigned: bool) -> Landing:
    """Check a landing's query parameters; raise `LandingError` on anything wrong."""
    yclients_salon_id = parse_yclients_salon_id(params)
    user_data, sign = params.get("user_data"), params.get("user_data_sign")
    if not user_data and not sign:
        if allow_unsigned:
            return Landing(yclients_salon_id=yclients_salon_id, user=None, signed=False)
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
    data = _signed_json(raw)
    named = signed_salon_ids(data)
    if named is not None and yclients_salon_id not in named:
        # The signature covers user_data only: a query naming another salon than the signed
        # data is a link edited by hand, not something YClients sends.
        raise LandingError(403, "SALON_MISMATCH", "error.salon_mismatch")
    return Landing(yclients_salon_id=yclients_salon_id, user=_user_from_json(data), signed=True,
                   bound=named is not None, sign_hash=hashlib.sha256(sign.strip().lower().encode()).digest())
