import pytest

from portal.platform.settings import SettingsError, load_settings

PROD = {
    "YCLIENTS_PARTNER_TOKEN": "partner", "JWT_SECRET": "j" * 32, "SESSION_SECRET": "s" * 32,
    "API_KEY_SECRET": "k" * 32,
    "WAHA_URL": "http://127.0.0.1:3000", "WAHA_WEBHOOK_TOKEN": "t" * 24,
}


def test_demo_mode_generates_secrets_once_and_keeps_them(tmp_path):
    env = {"PORTAL_DATA_DIR": str(tmp_path)}
    first = load_settings(env, env_file=None)
    second = load_settings(env, env_file=None)
    assert first.sandbox is True
    assert first.jwt_secret and first.jwt_secret == second.jwt_secret
    assert first.jwt_secret != first.session_secret
    assert first.yclients_api_url == "http://127.0.0.1:8000/sandbox/api"
    assert first.whatsapp_gateway == "simulator"


def test_production_mode_reads_everything(tmp_path):
    s = load_settings({**PROD, "PORTAL_DATA_DIR": str(tmp_path), "YCLIENTS_TIMEOUT_S": "12.5",
                       "YCLIENTS_APP_ID": "42", "LOG_FORMAT": "JSON"}, env_file=None)
    assert (s.sandbox, s.partner_token, s.yclients_timeout_s, s.app_id, s.log_format) == (
        False, "partner", 12.5, 42, "json")
    assert s.yclients_api_url == "https://api.yclients.com/marketplace"


@pytest.mark.parametrize(
    "env, named",
    [
        ({"YCLIENTS_TIMEOUT_S": "thirty"}, "YCLIENTS_TIMEOUT_S"),
        ({"YCLIENTS_APP_ID": "0"}, "YCLIENTS_APP_ID"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"SANDBOX": "perhaps"}, "SANDBOX"),
        ({"PORTAL_BASE_URL": "not a url"}, "PORTAL_BASE_URL"),
        ({"WHATSAPP_GATEWAY": "telegram"}, "WHATSAPP_GATEWAY"),
        ({"QR_BREAKER_FAILURE_THRESHOLD": "-1"}, "QR_BREAKER_FAILURE_THRESHOLD"),
    ],
)
def test_a_bad_value_names_the_setting(env, named, tmp_path):
    with pytest.raises(SettingsError) as caught:
        load_settings({"PORTAL_DATA_DIR": str(tmp_path), **env}, env_file=None)
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("missing", ["JWT_SECRET", "SESSION_SECRET", "API_KEY_SECRET", "YCLIENTS_PARTNER_TOKEN"])
def test_production_mode_requires_secrets(missing, tmp_path):
    env = {k: v for k, v in PROD.items() if k != missing}
    env["SANDBOX"] = "false"
    with pytest.raises(SettingsError, match=missing):
        load_settings({**env, "PORTAL_DATA_DIR": str(tmp_path)}, env_file=None)


def test_production_refuses_waha_webhooks_without_authentication(tmp_path):
    env = {k: v for k, v in PROD.items() if k != "WAHA_WEBHOOK_TOKEN"} | {"PORTAL_DATA_DIR": str(tmp_path)}
    with pytest.raises(SettingsError, match="WAHA_WEBHOOK_HMAC_KEY"):
        load_settings(env, env_file=None)
    assert load_settings(env | {"WAHA_WEBHOOK_HMAC_KEY": "plus-key"}, env_file=None).waha_webhook_hmac_key
    assert load_settings(env | {"WAHA_WEBHOOKS": "off"}, env_file=None).waha_webhooks is False
    with pytest.raises(SettingsError, match="WAHA_WEBHOOK_TOKEN"):
        load_settings(env | {"WAHA_WEBHOOK_TOKEN": "short"}, env_file=None)


def test_simulator_is_refused_in_production(tmp_path):
    with pytest.raises(SettingsError, match="simulator"):
        load_settings({**PROD, "WHATSAPP_GATEWAY": "simulator", "PORTAL_DATA_DIR": str(tmp_path)}, env_file=None)


def test_env_file_is_read_and_the_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("YCLIENTS_TIMEOUT_S=7\nLOG_LEVEL=DEBUG\n")
    s = load_settings({"PORTAL_DATA_DIR": str(tmp_path), "LOG_LEVEL": "ERROR"}, env_file=env_file)
    assert s.yclients_timeout_s == 7.0
    assert s.log_level == "ERROR"


def test_secure_cookies_follow_the_base_url(tmp_path):
    s = load_settings({"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_BASE_URL": "https://portal.example"}, env_file=None)
    assert s.secure_cookies and s.base_origin == "https://portal.example"


def test_evolution_needs_its_url_and_in_production_its_webhook_token(tmp_path):
    env = {**PROD, "PORTAL_DATA_DIR": str(tmp_path), "WHATSAPP_GATEWAY": "evolution"}
    with pytest.raises(SettingsError, match="EVOLUTION_URL"):
        load_settings(env, env_file=None)
    env |= {"EVOLUTION_URL": "http://127.0.0.1:8080", "EVOLUTION_API_KEY": "k"}
    with pytest.raises(SettingsError, match="EVOLUTION_WEBHOOK_TOKEN"):  # its webhooks are not signed
        load_settings(env, env_file=None)
    with pytest.raises(SettingsError, match="EVOLUTION_WEBHOOK_TOKEN"):
        load_settings(env | {"EVOLUTION_WEBHOOK_TOKEN": "short"}, env_file=None)
    s = load_settings(env | {"EVOLUTION_WEBHOOK_TOKEN": "e" * 24}, env_file=None)
    assert (s.whatsapp_gateway, s.evolution_url, s.gateway_events) == ("evolution", "http://127.0.0.1:8080", True)
