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


def test_a_url_loses_its_trailing_slash_once_at_load_and_demo_urls_follow_the_base_url(tmp_path):
    demo = load_settings({"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_BASE_URL": "https://p.example/"}, env_file=None)
    assert (demo.base_url, demo.marketplace_url, demo.yclients_api_url) == (
        "https://p.example", "https://p.example/sandbox", "https://p.example/sandbox/api")
    prod = load_settings({**PROD, "PORTAL_DATA_DIR": str(tmp_path)}, env_file=None)
    assert prod.marketplace_url == "https://yclients.com"
    given = load_settings({**PROD, "PORTAL_DATA_DIR": str(tmp_path), "YCLIENTS_MARKETPLACE_URL": "https://m.example/",
                           "YCLIENTS_API_URL": "https://api.example/marketplace/"}, env_file=None)
    assert (given.marketplace_url, given.yclients_api_url) == ("https://m.example", "https://api.example/marketplace")


@pytest.mark.parametrize(
    "env, message",
    [
        ({"ADMIN_API_KEY": "short"}, "ADMIN_API_KEY must be at least 24 characters"),
        ({"ADMIN_PASSWORD_HASH": "plain"}, "ADMIN_PASSWORD_HASH must be made by `python -m portal hash-password` (scrypt$...)"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL must start with redis://, rediss:// or unix://"),
        ({"INSTANCE_NAME": "web 1"}, "INSTANCE_NAME must be 1-32 letters, digits, '.', '_' or '-'"),
        ({"OWNER_RATE_LIMIT": "often"}, "OWNER_RATE_LIMIT='often' is not a rate like 100/minute"),
        ({"WAHA_WEBHOOKS": "maybe"}, "WAHA_WEBHOOKS='maybe' is not one of: on, off"),
        ({"EMBED_IN_YCLIENTS": "yes"}, "EMBED_IN_YCLIENTS must be true or false, got 'yes'"),
        ({"YCLIENTS_API_URL": "api.example"}, "YCLIENTS_API_URL must be an http(s) URL, got 'api.example'"),
        ({"FORWARDED_ALLOW_IPS": "*"}, "FORWARDED_ALLOW_IPS: '*' is not an address or network"),
        ({"ADMIN_SESSION_TTL_S": "59"}, "ADMIN_SESSION_TTL_S must be at least 60, got 59"),
        ({"WAHA_TIMEOUT_S": "0.01"}, "WAHA_TIMEOUT_S must be at least 0.1, got 0.01"),
    ],
)
def test_a_bad_value_says_which_variable_and_why(env, message, tmp_path):
    with pytest.raises(SettingsError) as caught:
        load_settings({"PORTAL_DATA_DIR": str(tmp_path), **env}, env_file=None)
    assert str(caught.value) == message


def test_production_secrets_must_be_long_and_distinct(tmp_path):
    env = {**PROD, "PORTAL_DATA_DIR": str(tmp_path)}
    with pytest.raises(SettingsError, match=r"^SESSION_SECRET must be at least 32 characters$"):
        load_settings(env | {"SESSION_SECRET": "s" * 31}, env_file=None)
    with pytest.raises(SettingsError, match="must all differ"):
        load_settings(env | {"SESSION_SECRET": "j" * 32}, env_file=None)
    demo = load_settings({"PORTAL_DATA_DIR": str(tmp_path), "JWT_SECRET": "mine"}, env_file=None)
    assert demo.jwt_secret == "mine"  # demo mode takes a given secret as it is, generates the rest
