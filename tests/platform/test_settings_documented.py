"""One settings table: each setting is declared once (on its field of `Settings`), and the
loader, `.env.example` and docs/deploy.md's table all agree with that declaration.

The two documents are written by scripts/settings_docs.py; besides checking they are what
the script writes today, these tests read them the way an operator does (a `NAME=` line, a
table row) so a generator bug cannot hide a setting or a wrong default.
"""

import dataclasses
import re
import runpy
import types
import typing
from pathlib import Path

import pytest

from portal.platform.setting_values import FLOAT, INT, Setting, declared
from portal.platform.settings import SECTIONS, Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent.parent
DOCS = runpy.run_path(str(ROOT / "scripts/settings_docs.py"))
SPECS: list[tuple[str, Setting]] = declared(Settings)
BY_ENV = {spec.env: spec for _, spec in SPECS}
FIXED_IN_CODE = {"health_db_timeout_s", "max_body_bytes", "onboarding_token_ttl_s"}
PROD = {"YCLIENTS_PARTNER_TOKEN": "partner", "JWT_SECRET": "j" * 32, "SESSION_SECRET": "s" * 32,
        "API_KEY_SECRET": "k" * 32, "WAHA_URL": "http://127.0.0.1:3000", "WAHA_WEBHOOK_TOKEN": "t" * 24}


def settings_table_rows() -> list[list[str]]:
    guide = (ROOT / "docs/deploy.md").read_text()
    table = guide.split(DOCS["TABLE_START"], 1)[1].split(DOCS["TABLE_END"], 1)[0]
    rows = [re.split(r"(?<!\\)\|", line.strip())[1:-1] for line in table.strip().splitlines()[2:]]
    return [[cell.strip() for cell in row] for row in rows]


def test_every_field_is_declared_once_but_those_fixed_in_code():
    undeclared = {f.name for f in dataclasses.fields(Settings) if "setting" not in f.metadata}
    assert undeclared == FIXED_IN_CODE
    assert len(BY_ENV) == len(SPECS)  # no environment variable declared twice
    assert [name for section in SECTIONS for name, _ in declared(section)] == [name for name, _ in SPECS]
    assert all(spec.help and not spec.help.endswith(".") for _, spec in SPECS)


def test_every_default_has_its_fields_type():
    """`.field()` is typed Any for the checker, so the declared default's type is checked here."""
    hints = typing.get_type_hints(Settings)
    for name, spec in SPECS:
        hint = hints[name]
        allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
        kinds = tuple(typing.get_origin(a) or a for a in allowed)
        assert isinstance(spec.default, kinds) and not (isinstance(spec.default, bool) and bool not in kinds), name
        if isinstance(spec.default, tuple):
            assert all(isinstance(item, str) for item in spec.default), name


def test_every_default_reads_back_as_itself():
    """A default written in the documents reads as the default: one normalisation (e.g. a
    URL's trailing slash), at load, and defaults that already obey it."""
    for _, spec in SPECS:
        for value in (v for v in (spec.default, spec.demo_default) if v is not None):
            shown = spec.shown(value)
            if shown and "{" not in shown:
                assert spec.read(shown) == value, spec.env


@pytest.mark.parametrize("sandbox", [True, False])
def test_an_unset_setting_takes_its_declared_default(sandbox, tmp_path):
    given = {"PORTAL_DATA_DIR": str(tmp_path)} | ({} if sandbox else PROD)
    settings = load_settings(given, env_file=None)
    for name, spec in SPECS:
        if spec.env in given or (spec.generated_in_demo and sandbox) or spec.env == "SANDBOX":
            continue
        default = spec.demo_default if sandbox and spec.demo_default is not None else spec.default
        if isinstance(default, str):
            default = default.format(PORTAL_BASE_URL=settings.base_url)
        assert getattr(settings, name) == default, spec.env
    assert settings.sandbox is sandbox


@pytest.mark.parametrize("name", [spec.env for _, spec in SPECS if spec.kind in (INT, FLOAT)])
def test_a_bad_number_names_its_variable_and_why(name, tmp_path):
    spec = BY_ENV[name]
    with pytest.raises(SettingsError, match=f"^{name} must be a (int|float), got 'many'$"):
        load_settings({"PORTAL_DATA_DIR": str(tmp_path), name: "many"}, env_file=None)
    if spec.minimum is not None:
        below = spec.minimum - 1 if spec.kind == INT else spec.minimum - 0.001
        with pytest.raises(SettingsError, match=f"^{name} must be at least {spec.minimum}, got "):
            load_settings({"PORTAL_DATA_DIR": str(tmp_path), name: str(below)}, env_file=None)


def test_the_rules_name_only_declared_settings():
    rules = (ROOT / "portal/platform/settings.py").read_text()
    named = set(re.findall(r"\b([A-Z][A-Z0-9]*_[A-Z0-9_]+)\b", rules))
    assert named - set(BY_ENV) == set()


def test_the_documents_are_what_the_declarations_write():
    assert (ROOT / ".env.example").read_text() == DOCS["env_example"](), "run python scripts/settings_docs.py"
    guide = (ROOT / "docs/deploy.md").read_text()
    assert guide == DOCS["deploy_guide"](guide), "run python scripts/settings_docs.py"


def test_env_example_has_one_line_per_setting_with_help_and_its_default():
    lines = (ROOT / ".env.example").read_text().splitlines()
    found = {}
    for i, line in enumerate(lines):
        if m := re.fullmatch(r"#?([A-Z][A-Z0-9_]+)=(.*)", line):
            assert m[1] not in found, f"{m[1]} twice"
            assert lines[i - 1].startswith("# "), f"{m[1]} has no comment"
            found[m[1]] = m[2]
    assert sorted(found) == sorted(BY_ENV)  # each setting, and nothing that is not one
    for env, value in found.items():
        spec = BY_ENV[env]
        assert value == (spec.example if spec.example is not None else spec.shown(spec.default)), env


def test_the_deploy_guide_has_one_row_per_setting_with_its_meaning_and_default():
    rows = settings_table_rows()
    names = [row[0].strip("`") for row in rows]
    assert sorted(names) == sorted(BY_ENV)  # each setting once, and nothing that is not one
    for name, meaning, default, _production in rows:
        spec = BY_ENV[name.strip("`")]
        assert meaning == spec.help
        shown = spec.shown(spec.default)
        assert default.startswith(f"`{shown}`" if shown else "unset"), name
        if spec.required_in_production:
            assert "**required**" in _production, name


def test_the_deploy_env_file_names_only_settings_or_compose_variables():
    """deploy/portal.env.example is the portal's env_file and compose's `${...}` source."""
    compose = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "deploy/compose.yaml").read_text()))
    lines = (ROOT / "deploy/portal.env.example").read_text().splitlines()
    named = {m[1] for line in lines if (m := re.fullmatch(r"#?\s*([A-Z][A-Z0-9_]+)=.*", line))}
    assert named and named - set(BY_ENV) - compose == set()
