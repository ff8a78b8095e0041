"""Times on owner pages are the salon's clock (DEFAULT_TIMEZONE, Moscow by default) with the
zone's name; staff pages name the zone next to every time."""

import base64
import json
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from portal.platform.settings import SettingsError, load_settings
from portal.web.rendering import format_local
from tests.helpers.landing import land_for_token
from tests.helpers.staff import sign_in, staff_env

# 15:45 UTC on a winter day: 18:45 in Moscow (UTC+3 all year, "MSK").
FIXED = datetime(2025, 1, 15, 15, 45, tzinfo=UTC)


def test_a_fixed_moment_reads_as_moscow_time_by_default():
    assert format_local(FIXED, ZoneInfo("Europe/Moscow"), "%H:%M", "en") == "18:45 MSK"
    assert format_local(FIXED, ZoneInfo("Europe/Moscow"), "%H:%M", "ru") == "18:45 МСК"  # in Russian letters
    assert format_local(FIXED, ZoneInfo("America/New_York"), "%H:%M", "ru") == "10:45 EST"  # no words: as is
    # A naive timestamp is UTC, not the server's local time.
    assert format_local(FIXED.replace(tzinfo=None), ZoneInfo("Europe/Moscow"), "%H:%M", "en") == "18:45 MSK"


def test_default_timezone_setting_is_validated():
    assert load_settings({}, env_file=None).default_timezone == "Europe/Moscow"
    assert load_settings({"DEFAULT_TIMEZONE": "Asia/Yekaterinburg"}, env_file=None).default_timezone \
        == "Asia/Yekaterinburg"
    for bad in ("Mars/Olympus", "../etc/passwd", "Europe/"):
        with pytest.raises(SettingsError, match="DEFAULT_TIMEZONE"):
            load_settings({"DEFAULT_TIMEZONE": bad}, env_file=None)


def _exp(token: str) -> int:
    payload = token.split(".")[1]
    return int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"])


def _expiry_line(client: TestClient, token: str) -> str:
    page = client.get("/onboarding", headers={"Authorization": f"Bearer {token}", "Accept-Language": "ru"})
    assert page.status_code == 200, page.text
    found = re.search(r"Эта страница открыта до ([^;<]+);", page.text)
    assert found, page.text
    return found.group(1)


@pytest.mark.parametrize(("zone_setting", "zone_name"), [
    (None, "Europe/Moscow"), ("Asia/Vladivostok", "Asia/Vladivostok"), ("America/New_York", "America/New_York")])
def test_owner_page_shows_the_link_expiry_on_the_salons_clock(make_settings, db, zone_setting, zone_name):
    settings = make_settings(**({"DEFAULT_TIMEZONE": zone_setting} if zone_setting else {}))
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        token = land_for_token(client, settings.partner_token, salon_id=4101)
        line = _expiry_line(client, token)
    local = datetime.fromtimestamp(_exp(token), ZoneInfo(zone_name))
    assert line == f"{local:%H:%M} {'МСК' if local.tzname() == 'MSK' else local.tzname()}"
    assert "UTC" not in line
    if zone_setting is None:
        assert line.endswith(" МСК")  # a Russian page says the zone in Russian letters


def test_staff_pages_name_the_zone_next_to_each_time(make_settings, db):
    settings = make_settings(**staff_env(), DEFAULT_TIMEZONE="Asia/Yekaterinburg")
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        land_for_token(client, settings.partner_token, salon_id=4102)
        sign_in(client)
        page = client.get("/admin/salons/4102").text
        listing = client.get("/admin/salons").text
        landed_at = db.fetch("SELECT landed_at FROM salons WHERE yclients_salon_id = 4102")[0]["landed_at"]
    local = landed_at.astimezone(ZoneInfo("Asia/Yekaterinburg"))
    assert f"{local:%Y-%m-%d %H:%M:%S} +05" in page  # the salon's facts and its timeline
    assert f"{local:%Y-%m-%d %H:%M} +05" in listing
    assert not re.search(r"\d\d:\d\d:\d\d<", page)  # no time without its zone
