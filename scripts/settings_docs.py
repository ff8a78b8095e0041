"""Write `.env.example` and docs/deploy.md's settings table from the settings' declarations.

    python scripts/settings_docs.py           # rewrite both
    python scripts/settings_docs.py --check   # exit 1 when either is out of date

Each setting is declared once, on its field (portal/platform/settings_sections.py,
settings_gateway.py); tests/platform/test_settings_documented.py fails when these documents differ
from what this script writes, so an edit goes to the declaration, then here.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from portal.platform.setting_values import Setting, declared
from portal.platform.settings import SECTIONS

ROOT = Path(__file__).resolve().parent.parent
ENV_EXAMPLE = ROOT / ".env.example"
DEPLOY_GUIDE = ROOT / "docs/deploy.md"
TABLE_START = "<!-- settings table: written by scripts/settings_docs.py from the declarations -->"
TABLE_END = "<!-- end of the settings table -->"

ENV_HEADER = """\
# Salon onboarding portal: every setting, with what it does. Copy to .env and edit.
# With none set, the portal runs in demo mode: sandbox on, embedded PostgreSQL, simulator.
# Written by scripts/settings_docs.py from the declarations in portal/platform/settings_*.py.
"""


def default_text(spec: Setting) -> str:
    """The deploy guide's default column: the value, what unset means, demo mode's own."""
    shown = spec.shown(spec.default)
    text = f"`{shown}`" if shown else "unset"
    if spec.default_note:
        text += f" ({spec.default_note})" if shown else f": {spec.default_note}"
    if spec.demo_default is not None:
        text += f"; demo: `{spec.shown(spec.demo_default)}`"
    if spec.generated_in_demo:
        text += "; demo: generated once into `PORTAL_DATA_DIR`"
    return text


def production_text(spec: Setting) -> str:
    return spec.production or ("**required**" if spec.required_in_production else "")


def line_value(spec: Setting) -> str:
    """What follows `NAME=` in .env.example: an example, or else the default."""
    return spec.example if spec.example is not None else spec.shown(spec.default)


def _sentence(text: str) -> str:
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def env_example() -> str:
    parts = [ENV_HEADER]
    for section in SECTIONS:
        title = (section.__doc__ or "").strip()
        parts.append(f"\n# --- {title} " + "-" * max(3, 88 - len(title)) + "\n")
        for _, spec in declared(section):
            said = [_sentence(spec.help)]
            if spec.example is not None or default_text(spec) != f"`{line_value(spec)}`":
                said.append(f"Default: {default_text(spec)}.")  # more than the line below says
            if production_text(spec):
                said.append(f"Production: {production_text(spec).replace('**', '')}.")
            comment = textwrap.fill(" ".join(said), width=92, initial_indent="# ", subsequent_indent="# ",
                                    break_on_hyphens=False, break_long_words=False)
            parts.append(f"{comment}\n#{spec.env}={line_value(spec)}\n")
    return "".join(parts)


def deploy_table() -> str:
    rows = ["| setting | what it is | default | production |", "| --- | --- | --- | --- |"]
    for section in SECTIONS:
        for _, spec in declared(section):
            cells = (f"`{spec.env}`", spec.help, default_text(spec), production_text(spec))
            rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join([TABLE_START, *rows, TABLE_END])


def deploy_guide(current: str) -> str:
    """The guide with its settings table (between the two markers) rewritten."""
    before, rest = current.split(TABLE_START, 1)
    _, after = rest.split(TABLE_END, 1)
    return before + deploy_table() + after


def main(argv: list[str]) -> int:
    wanted = {ENV_EXAMPLE: env_example(), DEPLOY_GUIDE: deploy_guide(DEPLOY_GUIDE.read_text())}
    stale = [path for path, text in wanted.items() if path.read_text() != text]
    if "--check" in argv:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run python scripts/settings_docs.py")
        return 1 if stale else 0
    for path in stale:
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
