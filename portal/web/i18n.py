"""Every sentence a person reads, in Russian and English, and how a language is chosen.

Salon owners mostly read Russian, so Russian is the default. `Accept-Language` picks, and
the visible switch (a `lang` cookie) overrides. Templates call `t("key", name=...)` (or `_()`,
`{% trans %}` through Jinja2's i18n extension); Python code calls `translator(lang)`.

The texts live in gettext catalogues, portal/locale/{ru,en}/LC_MESSAGES/messages.po, whose
msgids are the message keys ("whatsapp.connected"), so translators use ordinary .po tools
and the code never changes when a wording does. They are read at import and compiled in
memory (Babel). tests/house/test_i18n.py fails on any key used without a text in both languages.
"""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from starlette.requests import Request

from portal.platform.resources import resource_path

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"
LANG_COOKIE = "lang"

LOCALE_DIR = resource_path("locale")
DOMAIN = "messages"


def catalogue_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _load(language: str) -> tuple[Translations, frozenset[str]]:
    """Read the language's .po file and compile it in memory (no build step, no .mo file in
    the tree). Fuzzy entries are left out, as msgfmt does: a text a translator marked unsure
    is not shown."""
    with catalogue_path(language).open("rb") as po:
        catalog = read_po(po, locale=language, domain=DOMAIN)
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    known = frozenset(str(m.id) for m in catalog if m.id and m.string and not m.fuzzy)
    return Translations(compiled, domain=DOMAIN), known


CATALOGUES: dict[str, tuple[Translations, frozenset[str]]] = {language: _load(language) for language in LANGUAGES}


def pick_language(request: Request, default: str = DEFAULT_LANGUAGE) -> str:
    """The cookie's language, else the best of Accept-Language we speak, else `default`."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    header = request.headers.get("accept-language", "")
    ranked = []
    for i, part in enumerate(header.split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        ranked.append((-weight, i, tag.strip().lower()[:2]))
    for _, _, tag in sorted(ranked):
        if tag in LANGUAGES:
            return tag
    return default


def labeler(language: str) -> Callable[..., str]:
    """`label(family, code)`: a code shown to staff (a status, a link state) in `language`;
    a code without a translation yet (added after this catalogue) shows as itself."""
    t, known = translator(language), CATALOGUES[language][1]

    def label(family: str, code: object, fallback: str | None = None, prefix: str = "admin") -> str:
        key = f"{prefix}.{family}.{code}"
        return t(key) if key in known else (fallback if fallback is not None else str(code))

    return label


def translations(language: str) -> Translations:
    """The language's gettext object, for Jinja2's i18n extension (`{% trans %}`, `_()`)."""
    return CATALOGUES[language][0]


def translator(language: str) -> Callable[..., str]:
    """`t(key, **values)`: the key's text in `language` with {values} filled in. A key the
    catalogue lacks shows as the key itself (tests/house/test_i18n.py fails on any such key)."""
    gettext = CATALOGUES[language][0].gettext

    def t(key: str, **values: object) -> str:
        text = gettext(key)
        return text.format(**values) if values else text

    return t
