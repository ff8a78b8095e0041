"""The landing's signature and parameter checks, without HTTP."""

import base64
import json

import pytest

from portal.onboarding.landing import LandingError, parse_landing, sign_user_data

TOKEN = "partner-token"
USER = {"id": 7, "name": "Анна", "phone": "+79001234567", "email": "a@example.com",
        "is_approved": True, "salon_name": "Лилия"}


def params(raw: bytes, *, urlsafe=True, padded=False, sign=None, salon="123"):
    encoded = (base64.urlsafe_b64encode(raw) if urlsafe else base64.b64encode(raw)).decode()
    if not padded:
        encoded = encoded.rstrip("=")
    return {"salon_id": salon, "user_data": encoded, "user_data_sign": sign or sign_user_data(raw, TOKEN)}


def raw_user(**changes) -> bytes:
    # ensure_ascii=False + Cyrillic gives bytes whose base64 contains - and _ in URL-safe form
    return json.dumps({**USER, **changes}, ensure_ascii=False).encode()


@pytest.mark.parametrize("urlsafe", [True, False])
@pytest.mark.parametrize("padded", [True, False])
def test_good_signature_in_both_alphabets_with_and_without_padding(urlsafe, padded):
    raw = raw_user(name="Анна???>>>")
    landing = parse_landing(params(raw, urlsafe=urlsafe, padded=padded), partner_token=TOKEN, allow_unsigned=False)
    assert landing.signed and landing.yclients_salon_id == 123
    assert landing.user.name == "Анна???>>>" and landing.user.id == 7


def test_the_fixture_really_exercises_the_url_safe_alphabet():
    raw = raw_user(name="Анна???>>>")
    encoded = base64.urlsafe_b64encode(raw).decode()
    assert "-" in encoded or "_" in encoded


def test_signature_is_over_decoded_bytes_not_the_base64_text():
    raw = raw_user()
    p = params(raw)
    p["user_data_sign"] = sign_user_data(p["user_data"].encode(), TOKEN)
    with pytest.raises(LandingError) as caught:
        parse_landing(p, partner_token=TOKEN, allow_unsigned=False)
    assert (caught.value.status, caught.value.code) == (403, "SIGNATURE_INVALID")


@pytest.mark.parametrize("sign", ["0" * 64, "zz", sign_user_data(b"other", TOKEN)])
def test_wrong_signature_is_refused(sign):
    with pytest.raises(LandingError) as caught:
        parse_landing(params(raw_user(), sign=sign), partner_token=TOKEN, allow_unsigned=False)
    assert caught.value.status == 403


def test_signature_with_another_partner_token_is_refused():
    p = params(raw_user(), sign=sign_user_data(raw_user(), "someone-else"))
    with pytest.raises(LandingError):
        parse_landing(p, partner_token=TOKEN, allow_unsigned=False)


def test_uppercase_hex_signature_is_accepted():
    raw = raw_user()
    landing = parse_landing(params(raw, sign=sign_user_data(raw, TOKEN).upper()), partner_token=TOKEN,
                            allow_unsigned=False)
    assert landing.signed


@pytest.mark.parametrize("key", ["salon_ids[0]", "salon_ids[]"])
def test_salon_id_alternative_names(key):
    p = params(raw_user())
    p[key] = p.pop("salon_id")
    assert parse_landing(p, partner_token=TOKEN, allow_unsigned=False).yclients_salon_id == 123


def test_unsigned_landing_only_when_allowed():
    with pytest.raises(LandingError) as caught:
        parse_landing({"salon_id": "5"}, partner_token=TOKEN, allow_unsigned=False)
    assert caught.value.status == 403
    landing = parse_landing({"salon_id": "5"}, partner_token=TOKEN, allow_unsigned=True)
    assert (landing.signed, landing.user) == (False, None)


def test_user_id_may_be_named_user_id():
    raw = json.dumps({"user_id": 99, "name": "B"}).encode()
    assert parse_landing(params(raw), partner_token=TOKEN, allow_unsigned=False).user.id == 99
