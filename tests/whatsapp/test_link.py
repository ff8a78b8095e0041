"""The gateway-neutral vocabulary: session names, phone validation, error family."""

import pytest

from portal.whatsapp.link import (
    GatewayAuthError,
    GatewayConflict,
    GatewayError,
    GatewayUnavailable,
    InvalidWebhook,
    LinkStatus,
    MalformedWebhook,
    SessionNotFound,
    session_name,
    validate_phone_digits,
)


def test_session_name_is_stable_per_salon():
    assert session_name(12345) == "salon-12345"
    assert session_name(12345) == session_name(12345)
    assert session_name(1) != session_name(11)


@pytest.mark.parametrize("bad", [0, -5, True, "12345", 12.0, None])
def test_session_name_rejects_anything_but_a_positive_int(bad):
    with pytest.raises(ValueError):
        session_name(bad)


@pytest.mark.parametrize("good", ["79161234567", "4915112345678", "1234567"])
def test_phone_digits_accepts_international_numbers(good):
    assert validate_phone_digits(good) == good


@pytest.mark.parametrize("bad", ["+79161234567", "7 916 123-45-67", "123456", "1" * 16, "", 79161234567])
def test_phone_digits_rejects_formatting_and_wrong_lengths(bad):
    with pytest.raises(ValueError):
        validate_phone_digits(bad)


def test_link_status_values_are_the_words_the_portal_stores():
    assert [s.value for s in LinkStatus] == [
        "idle", "starting", "awaiting_scan", "passkey", "linking", "connected", "expired", "failed",
        "logged_out",
    ]


@pytest.mark.parametrize(
    "cls",
    [GatewayUnavailable, GatewayAuthError, SessionNotFound, GatewayConflict, InvalidWebhook, MalformedWebhook],
)
def test_every_gateway_error_carries_a_safe_summary(cls):
    error = cls("get session: HTTP 503", status_code=503)
    assert isinstance(error, GatewayError)
    assert error.safe_summary == "get session: HTTP 503" == str(error)
    assert error.status_code == 503
