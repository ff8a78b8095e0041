"""Reading the portal's confirmation code off the sandbox's phone, as a person would."""

from __future__ import annotations

import re


def code_from_phone(page, base: str, salon_id: int) -> str:
    """Open the sandbox page in `page` and read the newest code the salon's phone received."""
    page.goto(f"{base}/sandbox/")
    text = page.get_by_test_id(f"phone-message-{salon_id}").first.inner_text()
    found = re.search(r"\b\d{6}\b", text)
    assert found, text
    return found.group(0)
