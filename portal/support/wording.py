"""How staff read the portal's codes: every event type, payload field, audit action and
result, and state in words from the catalogues, in the page's language.

The trail and the audit log store codes (`qr_shown`, `{"by": "owner", "relink": false}`,
`refused: rate limited`), which stay codes in the JSON admin API. The pages say them:
`admin.event.<type>`, `admin.field.<key>`, `admin.audit_action.<action>`,
`admin.audit_result.<part>`, and for values that are themselves codes the family of their
field (`from` and `status` are link states, `state_after` a breaker state, …). A code
without words yet shows as itself; tests/house/test_i18n.py finds every code the portal writes
and fails on one without words in either language.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from portal.web.i18n import labeler, translator

# A payload value that is a code, by its field: the families its words live in, in order
# (a landing's `status` is the salon's integration status, a lost link's its link state).
VALUE_FAMILIES = {"from": ("link",), "status": ("link", "status"), "state_after": ("breaker",), "by": ("actor",),
                  "cause": ("cause",), "why": ("why",), "activation_mode": ("mode",)}


@dataclass(frozen=True)
class Wording:
    language: str
    _label: Callable[..., str] = field(init=False, repr=False)
    _t: Callable[..., str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_label", labeler(self.language))
        object.__setattr__(self, "_t", translator(self.language))

    def event(self, event_type: str | None) -> str:
        return self._label("event", event_type) if event_type else ""

    def value(self, key: str, value: Any) -> str:
        if isinstance(value, bool):
            return self._t("admin.value.yes" if value else "admin.value.no")
        if value is None or value == "":
            return "—"
        for family in VALUE_FAMILIES.get(key, ()) if isinstance(value, str) else ():
            if words := self._label(family, value, ""):  # "": no words in this family
                return words
        return str(value)

    def details(self, payload: Mapping[str, Any] | None) -> str:
        """A payload or an audit detail as "field: value, …"."""
        return ", ".join(f"{self._label('field', k)}: {self.value(k, v)}" for k, v in (payload or {}).items())

    def action(self, action: str) -> str:
        return self._label("audit_action", action)

    def result(self, result: str) -> str:
        """`refused: rate limited` → its words part by part; free text (a gateway's error
        after `error: gateway:`) stays as written."""
        return ": ".join(self._label("audit_result", part) for part in result.split(": "))

    def breaker(self, state: str) -> str:
        return self._label("breaker", state)

    def webhook_event(self, event: str) -> str:
        return self._label("webhook_event", event)
