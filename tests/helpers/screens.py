"""Looking at a page as its user would: a screenshot (into a temporary folder, never the
repository), nothing wider than the screen, and axe-core's verdict.

`look` fails when any element sticks out of the viewport (on a phone that means sideways
scrolling of the whole page) unless it sits inside a scroll box of its own (a staff table's
`.table-scroll`, which must itself fit), and on any serious or critical axe violation or a
content-outside-landmarks (`region`) finding.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

from tests.helpers.axe import BLOCKING, describe, violations

_OVERFLOW = """() => {
  const width = document.documentElement.clientWidth, found = [];
  for (const el of document.querySelectorAll("body *")) {
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    const scroller = el.parentElement && el.parentElement.closest(".table-scroll");
    if (scroller) continue;  // inside a box that scrolls by itself: that box must fit
    if (box.right > width + 1 || box.left < -1) {
      found.push(`${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${String(el.className).trim().replace(/ +/g, ".")}`
                 + ` ${Math.round(box.left)}..${Math.round(box.right)} of ${width}`);
    }
  }
  return {width, scrollWidth: document.documentElement.scrollWidth, found: found.slice(0, 12)};
}"""


def screenshot_dir() -> Path:
    """SCREENSHOT_DIR, else a fresh temporary folder (printed by the tests that use it)."""
    chosen = os.environ.get("SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else Path(tempfile.mkdtemp(prefix="portal-screens-"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def look(page: Any, folder: Path, name: str) -> None:
    """Photograph the page (full length) and check it fits its screen and passes axe."""
    page.wait_for_load_state("load")
    page.screenshot(path=str(folder / f"{re.sub(r'[^a-z0-9_-]+', '-', name.lower())}.png"), full_page=True)
    fit = page.evaluate(_OVERFLOW)
    assert fit["scrollWidth"] <= fit["width"] and not fit["found"], f"{name} ({page.url}) is wider than the screen: {fit}"
    found = violations(page)
    blocking = [v for v in found if v["impact"] in BLOCKING or v["id"] == "region"]
    assert not blocking, f"axe-core on {name} ({page.url}):\n{describe(blocking)}"
