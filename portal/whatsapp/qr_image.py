"""The QR code as an inline SVG, drawn on the server (segno), so no image request, no
script and nothing for the CSP to allow.

The drawing carries no name of its own (it is cached per code, shared by pages in either
language): the page wraps it in an element with role="img" and a name in the owner's
language, and the SVG itself is hidden from assistive technology."""

from __future__ import annotations

import io
import re
from collections import OrderedDict

import anyio
import segno
from markupsafe import Markup


def qr_svg(text: str) -> Markup:
    qr = segno.make(text, error="m")
    out = io.BytesIO()
    qr.save(out, kind="svg", xmldecl=False, svgns=True, scale=4, border=2, dark="#111", light="#fff",
            svgclass="qr-code", lineclass=None)
    # segno's output is markup we generated from the QR modules, not user input.
    svg = out.getvalue().decode()
    # A viewBox instead of a fixed size, so CSS can scale the code to the screen.
    svg = re.sub(r'width="(\d+)" height="(\d+)"', r'viewBox="0 0 \1 \2" aria-hidden="true" focusable="false"', svg,
                 count=1)
    return Markup(svg)  # noqa: S704 - segno draws it from the QR text; nothing of a user reaches it raw


class QrImages:
    """Each QR drawn once per instance: segno spends ~13 ms choosing a mask, and the same
    code is shown to every poll until it rotates. Bounded, so old codes fall out."""

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._drawn: OrderedDict[str, Markup] = OrderedDict()

    async def prepare(self, text: str) -> None:
        """Draw a new code in a worker thread, so 200 codes rotating in the same second do
        not stall the event loop; the page then finds it drawn."""
        if text not in self._drawn:
            drawn = await anyio.to_thread.run_sync(qr_svg, text)
            self._remember(text, drawn)

    def _remember(self, text: str, drawn: Markup) -> None:
        self._drawn[text] = drawn
        if len(self._drawn) > self._capacity:
            self._drawn.popitem(last=False)

    def svg(self, text: str) -> Markup:
        drawn = self._drawn.get(text)
        if drawn is None:
            drawn = qr_svg(text)  # not prepared (a rare path): drawn here, once
            self._remember(text, drawn)
        else:
            self._drawn.move_to_end(text)
        return drawn
