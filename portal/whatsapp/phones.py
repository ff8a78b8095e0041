"""Phone numbers as salon owners type them, and as staff may see them (masked).

Owners type their number the way their country dials it at home: `8 916 123-45-67` in
Russia, `8 029 123-45-67` in Belarus, `067 123 4567` in Ukraine, `90 123 45 67` in
Uzbekistan. Which of those a string means depends on the country, so parsing is the
`phonenumbers` library's (Google's libphonenumber data), with the owner's country as the
region: taken from the owner's own number in YClients' signed user data, else the
deployment's `DEFAULT_PHONE_REGION`. A number given with its `+` country code parses the
same from anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers
from babel import Locale, UnknownLocaleError
from phonenumbers import NumberParseException, PhoneNumberFormat

MAX_TYPED = 32


class PhoneError(ValueError):
    pass


@dataclass(frozen=True)
class Phone:
    digits: str  # E.164 without the '+', what a gateway takes: "375291234567"
    shown: str  # as the owner should recognise it: "+375 29 123-45-67"


def parse_phone(text: str | None, region: str) -> Phone:
    """A number as typed, read in `region` (ISO 3166 code, e.g. "BY"); raise PhoneError
    unless it is a valid number there (or, with its '+' code, anywhere)."""
    # ASCII only: the library would also read other scripts' digits ('٧', '１'), and a
    # number the owner cannot see as typed is not one to send a code to.
    if not text or len(text) > MAX_TYPED or not text.isascii():
        raise PhoneError("empty, too long or not plain digits")
    try:
        number = phonenumbers.parse(text.strip(), region)
    except NumberParseException:
        raise PhoneError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise PhoneError("no such number")
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return Phone(e164.removeprefix("+"), phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL))


def region_of(owner_phone: str | None, default: str) -> str:
    """The country of the owner's own number (YClients sends it in international digits,
    e.g. "79990009900", with or without '+'); `default` when there is none or it is unclear."""
    if not owner_phone or not owner_phone.isascii():
        return default
    try:
        number = phonenumbers.parse("+" + owner_phone.strip().lstrip("+"), None)
    except NumberParseException:
        return default
    region = phonenumbers.region_code_for_number(number)
    return region if region and region != "001" else default


def is_region(code: str) -> bool:
    return code in phonenumbers.SUPPORTED_REGIONS


def mask_phone(digits: str | None) -> str | None:
    """Show the country code and the last two digits: '+7 ••• •••-••-67'."""
    if not digits:
        return None
    try:
        country = str(phonenumbers.parse("+" + digits, None).country_code)
    except NumberParseException:
        country = digits[:1]
    return f"+{country} ••• •••-••-{digits[-2:]}"


def country_name(digits: str, language: str) -> str:
    """The country of an international number, in `language` ("Беларусь"); "" if unknown or
    shared (a code of several countries where the number fits more than one). The name is the
    CLDR's, through babel: phonenumbers' own geocoder loads ~100 MB of per-prefix place names
    into every worker to answer this."""
    try:
        number = phonenumbers.parse("+" + digits, None)
        names = Locale.parse(language).territories
    except (NumberParseException, ValueError, UnknownLocaleError):
        return ""
    regions = phonenumbers.region_codes_for_country_code(number.country_code or 0)
    fits = [r for r in regions if phonenumbers.is_valid_number_for_region(number, r)]
    region = regions[0] if len(regions) == 1 else fits[0] if len(fits) == 1 else None
    return str(names.get(region, "")) if region else ""
