"""The gettext catalogues (portal/locale/{ru,en}/LC_MESSAGES/messages.po): every message key
the code and templates use has a text in both languages, nothing is fuzzy, both files hold
the same keys with the same {placeholders}, and Babel's own tools read and compile them.
`make test` fails here on a missing translation."""

import io
import re
import string
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from portal.support.dashboard import ACTIONS
from portal.support.store import STATUSES
from portal.web.i18n import LANGUAGES, catalogue_path, labeler, translator
from portal.whatsapp.link import LinkStatus

ROOT = Path(__file__).resolve().parent.parent
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
    keys |= {f"admin.action.{a}" for a in ACTIONS} | {f"admin.action.{a}_explain" for a in ACTIONS}
    keys |= {f"sandbox.fault_{m}" for m in ("down", "slow", "none")}
    keys |= {f"sandbox.partner_{m}" for m in ("none", "fail", "hang", "already_installed")}
    keys |= {f"sandbox.install_status_{s}" for s in ("none", "pending", "active", "freezed")}
    keys |= {f"sandbox.answer_{a}" for a in ("redirect", "json")}
    keys |= {f"admin.attention.{why}" for why in ("activation failed", "WhatsApp logged out", "QR code expired",
                                                   "WhatsApp session failed", "stuck activating", "stuck in")}
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
