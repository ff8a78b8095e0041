"""axe-core in a Playwright page: an accessibility audit that fails on serious or critical
violations and says which rule, where and what to do.

axe-core (npm `axe-core`, MPL-2.0, vendored under tests/helpers/vendor with its licence) is
for the tests only; the app never serves it. The portal's CSP allows no inline script, so
`page.add_script_tag` (which inlines the file) would be refused; `page.evaluate` goes through
the DevTools protocol, which the page's CSP does not govern, so the audit sees the page
exactly as an owner does (no `bypass_csp`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

AXE_JS = Path(__file__).parent / "vendor" / "axe.min.js"
BLOCKING = ("serious", "critical")

_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
    nodes: v.nodes.map(n => ({target: n.target.join(" "), summary: n.failureSummary}))}));
}"""


@lru_cache(maxsize=1)
def _axe_source() -> str:
    return AXE_JS.read_text()


def violations(page: Any) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now (all impacts)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    result: list[dict[str, Any]] = page.evaluate(_RUN)
    return result


def describe(found: list[dict[str, Any]]) -> str:
    lines = []
    for v in found:
        lines.append(f"[{v['impact']}] {v['id']}: {v['help']} ({v['helpUrl']})")
        lines.extend(f"    at {n['target']}: {n['summary']}" for n in v["nodes"])
    return "\n".join(lines)


def assert_accessible(page: Any, where: str) -> None:
    """No serious or critical axe violation on the page; otherwise the rules, targets and help."""
    blocking = [v for v in violations(page) if v["impact"] in BLOCKING]
    assert not blocking, f"axe-core on {where} ({page.url}):\n{describe(blocking)}"
