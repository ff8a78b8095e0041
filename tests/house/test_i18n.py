"""The gettext catalogues (portal/locale/{ru,en}/LC_MESSAGES/messages.po): every message key
the code and templates use has a text in both languages, nothing is fuzzy, both files hold
the same keys with the same {placeholders}, and Babel's own tools read and compile them.
`make test` fails here on a missing translation."""

import ast
import io
import re
import string
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from portal.support.filters import STATUSES
from portal.support.routes import ACTIONS
from portal.support.store import ATTENTION_CODES
from portal.web.i18n import LANGUAGES, catalogue_path, labeler, translator
from portal.whatsapp.breaker import BreakerState
from portal.whatsapp.link import LinkStatus
from portal.yclients_webhooks.deliveries import KNOWN_EVENTS

ROOT = Path(__file__).resolve().parent.parent.parent
# t("key"), _("key"), t('key'), also a key chosen by a conditional: t("a" if x else "b").
CALL = re.compile(r"""\b(?:t|_|gettext)\(\s*(["'])([a-z_]+\.[A-Za-z0-9_. ]+)\1""")
KEY_LITERAL = re.compile(r"""(["'])((?:admin|app|error|onboarding|whatsapp|activation|sandbox|salon)\.[a-z0-9_.]+)\1""")


def _catalog(language):
    with catalogue_path(language).open("rb") as po:
        return read_po(po, locale=language)


def _texts(language):
    return {m.id: m for m in _catalog(language) if m.id}


def _used_keys():
    """Keys in t()/_() calls and key-looking string literals in portal/ and templates/."""
    keys = set()
    for path in [*ROOT.joinpath("portal").rglob("*.py"), *ROOT.joinpath("templates").rglob("*.html")]:
        text = path.read_text(encoding="utf-8")
        found = [m.group(2) for m in CALL.finditer(text)] + [m.group(2) for m in KEY_LITERAL.finditer(text)]
        # A prefix ("sandbox.fault_" ~ mode, checked below) or a template's file name is not a key.
        keys |= {k for k in found if not k.endswith(("_", ".html", ".py"))}
    return keys


def _dynamic_keys():
    """Keys composed at run time: labels of statuses, link states, attention reasons, actions."""
    keys = {f"admin.status.{s}" for s in STATUSES} | {f"admin.link.{s.value}" for s in LinkStatus}
    keys |= {f"admin.action.{a}{suffix}" for a in ACTIONS for suffix in ("", "_explain", "_yes")}
    keys |= {f"admin.breaker_{a}{suffix}" for a in ("reset", "force_open") for suffix in ("", "_explain", "_yes")}
    keys |= {f"sandbox.{kind}_{m}" for kind in ("fault", "gateway") for m in ("down", "slow", "none")}
    keys |= {f"sandbox.partner_{m}" for m in ("none", "fail", "hang", "already_installed")}
    keys |= {f"sandbox.install_status_{s}" for s in ("none", "pending", "active", "freezed")}
    keys |= {f"sandbox.answer_{a}" for a in ("redirect", "json")}
    keys |= {f"admin.attention.{why}" for why in ATTENTION_CODES}
    return keys


def test_the_scan_finds_the_keys_it_should():
    used = _used_keys()
    assert {"app.title", "whatsapp.connected", "admin.breaker_seen", "admin.result.disconnected",
            "onboarding.session_expires"} <= used
    assert len(used) > 150


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_key_used_has_a_text_in_the_language(language):
    texts = _texts(language)
    missing = sorted(k for k in _used_keys() | _dynamic_keys() if k not in texts or not texts[k].string.strip())
    assert not missing, f"{language}: no text for {missing}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_fuzzy_entries(language):
    catalog = _catalog(language)
    assert not catalog.fuzzy, f"{language}: the header is marked fuzzy"
    fuzzy = sorted(m.id for m in catalog if m.id and m.fuzzy)
    assert not fuzzy, f"{language}: fuzzy entries are not shown until reviewed: {fuzzy}"


def test_both_languages_hold_the_same_keys_and_placeholders():
    ru, en = _texts("ru"), _texts("en")
    assert set(ru) == set(en), sorted(set(ru) ^ set(en))

    def fields(text):
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    differing = {k: (fields(ru[k].string), fields(en[k].string)) for k in ru
                 if fields(ru[k].string) != fields(en[k].string)}
    assert not differing, differing


@pytest.mark.parametrize("language", LANGUAGES)
def test_babel_reads_and_compiles_the_catalogue(language):
    catalog = _catalog(language)
    assert str(catalog.locale) == language
    assert not list(catalog.check())  # Babel's own consistency checks
    mo = io.BytesIO()
    write_mo(mo, catalog)
    assert mo.getvalue()[:4] in (b"\xde\x12\x04\x95", b"\x95\x04\x12\xde")  # a gettext .mo file


def test_translator_and_labels_read_the_catalogues():
    assert translator("ru")("whatsapp.connected", phone="+7 916") == "WhatsApp подключён: +7 916"
    assert translator("en")("whatsapp.connected", phone="+7 916") == "WhatsApp is connected: +7 916"
    assert labeler("ru")("status", "active") == "активен"
    assert labeler("ru")("status", "some_new_status") == "some_new_status"  # a code not translated yet


# --- the codes staff read in words -----------------------------------------------------
# Found in the source, not listed here, so a new event type, payload field, audit action or
# status (from any branch) fails this test until both catalogues have words for it.


def _module_dict_strings(tree: ast.Module) -> set[str]:
    """String constants in the values of a module's top-level dicts (event types chosen
    by a table, e.g. linking's `_STATUS_EVENTS`, the webhook worker's `_EVENTS`)."""
    found: set[str] = set()
    for node in tree.body:
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if isinstance(value, ast.Dict):
            for v in value.values:
                found |= {c.value for c in ast.walk(v) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    return found


def _strings(node: ast.AST, tree: ast.Module) -> set[str]:
    """The strings an argument can be; fails on a shape this scan does not know yet."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.IfExp):
        return _strings(node.body, tree) | _strings(node.orelse, tree)
    if isinstance(node, ast.JoinedStr):  # f"error: gateway: {error}": its fixed start
        first = node.values[0]
        return {first.value} if isinstance(first, ast.Constant) else set()
    if isinstance(node, (ast.Name, ast.Subscript)):
        return _module_dict_strings(tree)
    raise AssertionError(f"teach the scan this argument: {ast.dump(node)[:120]}")


def _dict_keys(node: ast.AST | None, function: ast.AST) -> set[str]:
    """Keys of a payload: a dict literal, or a name bound to one (and keys set on it after)."""
    if isinstance(node, ast.Dict):
        return {k.value for k in node.keys if isinstance(k, ast.Constant)}
    if isinstance(node, ast.Name):
        keys: set[str] = set()
        for sub in ast.walk(function):
            if isinstance(sub, ast.Assign):
                for target in sub.targets:
                    if isinstance(target, ast.Name) and target.id == node.id:
                        keys |= _dict_keys(sub.value, function) if isinstance(sub.value, ast.Dict) else set()
                    if (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                            and target.value.id == node.id and isinstance(target.slice, ast.Constant)):
                        keys.add(target.slice.value)
        return keys
    return set()


def _written(receiver: str, methods: tuple[str, ...]):
    """(call, its enclosing function, its module) for every `receiver.method(...)` in portal/."""
    for path in ROOT.joinpath("portal").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for call in ast.walk(function):
                if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in methods
                        and isinstance(call.func.value, ast.Name) and call.func.value.id == receiver):
                    yield call, function, tree


def _arg(call: ast.Call, index: int, keyword: str) -> ast.AST | None:
    if len(call.args) > index:
        return call.args[index]
    return next((k.value for k in call.keywords if k.arg == keyword), None)


def written_codes() -> dict[str, set[str]]:
    """Every code the portal writes to the trail and the audit log, by catalogue family."""
    codes: dict[str, set[str]] = {"event": set(), "field": set(), "audit_action": set(), "audit_result": set()}
    for call, function, tree in _written("events", ("record", "record_quietly")):
        codes["event"] |= _strings(call.args[2], tree)
        codes["field"] |= _dict_keys(_arg(call, 3, "payload"), function)
    for call, function, tree in _written("audit", ("record", "record_alone")):
        codes["audit_action"] |= _strings(call.args[2], tree)
        for result in _strings(call.args[4], tree):
            codes["audit_result"] |= {part for part in result.split(": ") if part}
        codes["field"] |= _dict_keys(_arg(call, 5, "detail"), function)
    return codes


def integration_statuses() -> set[str]:
    """The statuses the database allows a salon (every CHECK on integration_status in the
    migrations), so a status a migration adds needs words too."""
    found: set[str] = set()
    for path in ROOT.joinpath("migrations").glob("*.sql"):
        for allowed in re.findall(r"integration_status\s+IN\s*\(([^)]*)\)", path.read_text(encoding="utf-8")):
            found |= set(re.findall(r"'([a-z_]+)'", allowed))
    return found


def staff_codes() -> set[str]:
    """Every code the dashboard says in words, as catalogue keys."""
    keys = {f"admin.{family}.{code}" for family, found in written_codes().items() for code in found}
    keys |= {f"admin.link.{s.value}" for s in LinkStatus}
    keys |= {f"admin.status.{s}" for s in {*STATUSES, *integration_statuses()}}
    keys |= {f"admin.breaker.{s.value}" for s in BreakerState}
    keys |= {f"admin.webhook_event.{e}" for e in KNOWN_EVENTS}
    # Payload values that are codes, by their field's family (wording.VALUE_FAMILIES).
    keys |= {f"admin.actor.{v}" for v in ("owner",)} | {f"admin.cause.{v}" for v in ("owner_relink", "owner_disconnect")}
    keys |= {f"admin.why.{v}" for v in ("retention", "staff")}
    keys |= {f"admin.mode.{v}" for v in ("transaction", "legacy", "reconciled")}
    return keys | {"admin.value.yes", "admin.value.no"}


def test_the_code_scan_finds_what_the_portal_writes():
    codes = written_codes()
    assert {"landed", "landing_refused_other_user", "qr_shown", "whatsapp_lost", "personal_data_erased", "uninstalled",
            "whatsapp_session_deleted"} <= codes["event"]
    assert {"from", "by", "relink", "gateway_error", "phone", "install_generation", "cause"} <= codes["field"]
    assert {"login", "breaker_reset", "breaker_force_open", "disconnect"} <= codes["audit_action"]
    assert {"ok", "refused", "rate limited", "error", "gateway"} <= codes["audit_result"]
    assert integration_statuses() >= {"pending_whatsapp", "activating", "active", "activation_failed", "frozen",
                                      "uninstalled"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_code_staff_see_has_words(language):
    texts = _texts(language)
    missing = sorted(k for k in staff_codes() if k not in texts or not texts[k].string)
    assert missing == [], f"{language}: no words for {missing}"
