"""The mutable state of the sandbox: a local stand-in for the YClients marketplace.

Owns who the sandbox believes is installed where, which fault it is told to inject, how it
answers a finished install, and the log of partner calls it received. Everything lives on a
`SandboxMarketplace` instance so two apps (or two tests) in one process never share state.

An install follows the platform's state machine (Altegio's integration reference,
`altegio/altegio-integrations-hub-mcp` `docs/marketplace-internals.md`):
`uninstalled --owner grant--> pending --partner callback--> active --expiry--> freezed
--payment--> active`, and any state `--uninstall--> uninstalled` (no record: the status
endpoint answers 404). A callback for an `active` or `freezed` install is "already installed".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

# None means "answer as YClients normally does".
FAULTS = (None, "fail", "hang", "already_installed", "unauthorized")
# The two successes YClients documents for POST /partner/callback/redirect.
INSTALL_ANSWERS = ("redirect", "json")

ALREADY_INSTALLED_MESSAGE = "Пользователь уже установил это приложение"
INSTALL_STATUSES = ("active", "pending", "freezed")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")  # YClients' own format: "2022-06-27 12:20:02"


def _log_entry(moment: datetime, status_from: str, status_to: str) -> dict[str, str]:
    return {"changed_at": _stamp(moment), "status_from": status_from, "status_to": status_to,
            "source": "marketplace"}

DEMO_SALONS: tuple[dict[str, Any], ...] = (
    {
        "id": 500001,
        "name": "Салон красоты «Лилия»",
        "owner_name": "Анна Смирнова",
        "phone": "+79000000001",
        "email": "lilia@example.com",
    },
    {
        "id": 500002,
        "name": "Барбершоп «Борода»",
        "owner_name": "Иван Петров",
        "phone": "+79000000002",
        "email": "boroda@example.com",
    },
    {
        "id": 500003,
        "name": "Студия маникюра «Ноготок»",
        "owner_name": "Мария Кузнецова",
        "phone": "+79000000003",
        "email": "nogotok@example.com",
    },
)


def _checked_fault(mode: str | None) -> str | None:
    # A typo in a test or on the sandbox page must not silently mean "no fault".
    if mode not in FAULTS:
        raise ValueError(f"unknown sandbox fault {mode!r}; expected one of {FAULTS}")
    return mode


class SandboxMarketplace:
    """What the fake YClients knows: partner credentials, installs, faults, received calls."""

    def __init__(
        self,
        public_base: str,
        *,
        partner_token: str = "sandbox-partner-token",  # noqa: S107 - the sandbox's own stand-in token
        application_id: int = 777,
        hang_s: float = 120.0,
    ) -> None:
        # Where the sandbox is reachable from a browser, e.g. "http://127.0.0.1:8000/sandbox";
        # redirects YClients hands back are absolute, so ours are too.
        self.public_base = public_base.rstrip("/")
        self.partner_token = partner_token
        self.application_id = application_id
        self.hang_s = hang_s
        self.installed: dict[int, dict[str, Any]] = {}
        self.removed: set[int] = set()  # salons whose install was removed at least once
        self.calls: list[tuple[str, str]] = []
        # Salon ids of the install callbacks received, in order (a chain: one per branch).
        self.callbacks: list[int] = []
        # Branches whose next callback fails with a 500 (a fault for one branch of a chain).
        self.fail_next_callback: set[int] = set()
        self.demo_salons: list[dict[str, Any]] = [dict(s) for s in DEMO_SALONS]
        self._fault: str | None = None
        self._status_fault: str | None = None
        self._install_answer = "redirect"

    @property
    def install_answer(self) -> str:
        """"redirect": a finished install answers 301 + Location; "json": 200 {"success": true}."""
        return self._install_answer

    @install_answer.setter
    def install_answer(self, answer: str) -> None:
        if answer not in INSTALL_ANSWERS:
            raise ValueError(f"unknown install answer {answer!r}; expected one of {INSTALL_ANSWERS}")
        self._install_answer = answer

    @property
    def fault(self) -> str | None:
        """How every partner call but the install status read is answered (None: normally)."""
        return self._fault

    @fault.setter
    def fault(self, mode: str | None) -> None:
        self._fault = _checked_fault(mode)

    @property
    def status_fault(self) -> str | None:
        """How the install status read (`GET /salon/{id}/application/{app}`) is answered."""
        return self._status_fault

    @status_fault.setter
    def status_fault(self, mode: str | None) -> None:
        self._status_fault = _checked_fault(mode)

    def record_call(self, method: str, path: str) -> None:
        self.calls.append((method, path))

    def demo_salon(self, salon_id: int) -> dict[str, Any] | None:
        return next((s for s in self.demo_salons if s["id"] == salon_id), None)

    def grant(self, salon_id: int) -> dict[str, Any]:
        """The owner pressed Install in the marketplace: the install waits, `pending`, for the
        partner's callback (the platform holds it for 12 hours). Pressing it again while it
        waits changes nothing; an installed salon stays as it is."""
        if (install := self.installed.get(salon_id)) is not None:
            return install
        now = datetime.now(UTC)
        install = {"api_key": None, "webhook_urls": [], "installed_at": now.isoformat(timespec="seconds"),
                   "status": "pending", "logs": [_log_entry(now, "uninstalled", "pending")]}
        self.installed[salon_id] = install
        return install

    def pending(self, salon_id: int) -> bool:
        install = self.installed.get(salon_id)
        return install is not None and install["status"] == "pending"

    def install(self, salon_id: int, api_key: str, webhook_urls: list[str]) -> dict[str, Any]:
        """The partner's callback for a pending install: `active` from now on."""
        install = self.installed.get(salon_id) or self.grant(salon_id)
        install.update(api_key=api_key, webhook_urls=list(webhook_urls))
        self._move(install, "active")
        return install

    def freeze(self, salon_id: int) -> bool:
        """The licence ran out: `active` → `freezed`. False when there is no active install."""
        install = self.installed.get(salon_id)
        if install is None or install["status"] != "active":
            return False
        self._move(install, "freezed")
        return True

    def pay(self, salon_id: int) -> bool:
        """A successful payment: a `freezed` install is `active` again. False when none is frozen."""
        install = self.installed.get(salon_id)
        if install is None or install["status"] != "freezed":
            return False
        self._move(install, "active")
        return True

    def _move(self, install: dict[str, Any], status: str) -> None:
        install["logs"].append(_log_entry(datetime.now(UTC), install["status"], status))
        install["status"] = status

    def set_status(self, salon_id: int, status: str) -> None:
        """The install's connection status as YClients names it: active, pending, freezed."""
        if status not in INSTALL_STATUSES:
            raise ValueError(f"unknown install status {status!r}; expected one of {INSTALL_STATUSES}")
        self._move(self.installed[salon_id], status)

    def install_status(self, salon_id: int) -> dict[str, Any]:
        """`data` of YClients' install status, with exactly its documented fields."""
        install = self.installed[salon_id]
        created = datetime.fromisoformat(install["installed_at"])
        return {
            "connection_status": {"status": install["status"], "created_at": _stamp(created)},
            "payments": [],
            "logs": [dict(entry) for entry in install["logs"]],
        }

    def uninstall(self, salon_id: int) -> bool:
        """Any state → uninstalled: the status endpoint answers 404 again."""
        if self.installed.pop(salon_id, None) is None:
            return False
        self.removed.add(salon_id)
        return True

    def status_of(self, salon_id: int) -> str | None:
        install = self.installed.get(salon_id)
        return None if install is None else str(install["status"])

    def redirect_after_install(self, salon_id: int) -> str:
        """Where YClients sends the owner's browser once the partner finished the install."""
        return f"{self.public_base}/installed/{salon_id}"
