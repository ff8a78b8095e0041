"""An operator finds every setting: each one the portal reads is in .env.example (with a
comment) and in docs/deploy.md's table."""

import re
from pathlib import Path

from portal.platform.setting_values import declared
from portal.platform.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def settings_read() -> set[str]:
    return {spec.env for _, spec in declared(Settings)}


def test_the_settings_reader_is_found():
    assert {"DATABASE_URL", "WAHA_WEBHOOK_TOKEN", "PERSONAL_DATA_RETENTION_DAYS", "OWNER_RATE_LIMIT",
            "JWT_SECRET"} <= settings_read()


def test_every_setting_is_in_env_example_and_the_deploy_guide():
    env = (ROOT / ".env.example").read_text()
    guide = (ROOT / "docs/deploy.md").read_text()
    missing_env = sorted(n for n in settings_read() if not re.search(rf"^#?\s*{n}=", env, re.M))
    missing_guide = sorted(n for n in settings_read() if f"`{n}`" not in guide)
    assert (missing_env, missing_guide) == ([], [])
