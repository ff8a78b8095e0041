"""One driver per gateway for the conformance suite: how to point a portal at it, and how to
play its other side (the phone, the gateway's clock, an outage, its webhooks).

A new gateway joins the suite by adding its fake beside the others and a driver here; the
scenarios in tests/whatsapp/test_conformance.py stay as they are. Every gateway is driven on
a clock the test moves (`advance`), with WhatsApp's QR rhythm: the first QR 60 s, each next
one 20 s, six in all.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
from collections.abc import Iterator
from typing import Any, Protocol

from portal.whatsapp.gateways.simulator import SimulatedGateway
from tests.helpers.clock import FakeClock
from tests.helpers.gateways.fake_evolution import create_fake_evolution
from tests.helpers.gateways.fake_waha import create_fake_waha
from tests.helpers.servers import serve

WAHA_HOOK_KEY = "conformance-waha-hmac-key"
EVOLUTION_TOKEN = "conformance-evolution-token-0123456789"
QR_FIRST_S, QR_NEXT_S, QR_COUNT = 60.0, 20.0, 6


class Driver(Protocol):
    name: str
    has_passkey: bool
    clock: FakeClock

    def env(self) -> dict[str, str]: ...
    def attach(self, client: Any) -> None: ...
    def shown_qr(self, session: str) -> str | None: ...
    def starts(self, session: str) -> int: ...
    def scan(self, session: str, phone: str) -> None: ...
    def unlink(self, session: str) -> None: ...
    def set_down(self, down: bool) -> None: ...
    def ask_passkey(self, session: str, phone: str, code: str) -> None: ...
    def pairing_code(self, session: str) -> str | None: ...
    def events(self, session: str) -> list[tuple[bytes, dict[str, str]]]: ...
    def state_reads(self, session: str) -> int: ...
    def logged_out(self, session: str) -> bool: ...
    def exists(self, session: str) -> bool: ...


class WahaDriver:
    name, has_passkey = "waha", True

    def __init__(self, url: str, state: Any, clock: FakeClock) -> None:
        self.url, self.state, self.clock = url, state, clock
        state.status_on_start = "SCAN_QR_CODE"
        state.qr_first_s, state.qr_next_s, state.qr_count = QR_FIRST_S, QR_NEXT_S, QR_COUNT

    def env(self) -> dict[str, str]:
        return {"WHATSAPP_GATEWAY": "waha", "WAHA_URL": self.url, "WAHA_API_KEY": "waha-key",
                "WAHA_WEBHOOK_HMAC_KEY": WAHA_HOOK_KEY}

    def attach(self, client: Any) -> None:
        pass

    def shown_qr(self, session: str) -> str | None:
        self.state.tick()
        found = self.state.sessions.get(session)
        return found.qr if found is not None and found.status == "SCAN_QR_CODE" else None

    def starts(self, session: str) -> int:
        # The first create starts the session; a later one is refused (422) and starts nothing.
        created = any((method, path) == ("POST", "/api/sessions") and (body or {}).get("name") == session
                      for method, path, body in self.state.requests)
        return created + sum(1 for _, path, _ in self.state.requests
                             if path in (f"/api/sessions/{session}/start", f"/api/sessions/{session}/restart"))

    def scan(self, session: str, phone: str) -> None:
        self.state.set_me(session, phone)
        self.state.set_status(session, "WORKING")

    def unlink(self, session: str) -> None:
        # waha#223: the session is left FAILED, the account gone from it.
        self.state.set_me(session, None)
        self.state.set_status(session, "FAILED")

    def set_down(self, down: bool) -> None:
        self.state.fail_with = 503 if down else None

    def ask_passkey(self, session: str, phone: str, code: str) -> None:
        self.state.set_me(session, phone)
        self.state.ask_passkey(session, code=code)

    def pairing_code(self, session: str) -> str | None:
        return self.state.pairing_code if self.state.pairing_requests else None

    def events(self, session: str) -> list[tuple[bytes, dict[str, str]]]:
        return [(body, headers) for _, body, headers in self.state.webhook_delivery(session)]

    def state_reads(self, session: str) -> int:
        return sum(1 for p in self.state.paths() if p in (f"GET /api/sessions/{session}", f"GET /api/{session}/auth/qr"))

    def logged_out(self, session: str) -> bool:
        return f"POST /api/sessions/{session}/logout" in self.state.paths()

    def exists(self, session: str) -> bool:
        return session in self.state.sessions


class EvolutionDriver:
    name, has_passkey = "evolution", False

    def __init__(self, url: str, state: Any, clock: FakeClock) -> None:
        self.url, self.state, self.clock = url, state, clock
        # Evolution's QRCODE_LIMIT set to WhatsApp's six, so every gateway runs out alike.
        state.qr_first_s, state.qr_next_s, state.qr_limit = QR_FIRST_S, QR_NEXT_S, QR_COUNT

    def env(self) -> dict[str, str]:
        return {"WHATSAPP_GATEWAY": "evolution", "EVOLUTION_URL": self.url, "EVOLUTION_API_KEY": "evo-key",
                "EVOLUTION_WEBHOOK_TOKEN": EVOLUTION_TOKEN}

    def attach(self, client: Any) -> None:
        pass

    def shown_qr(self, session: str) -> str | None:
        self.state.tick()
        found = self.state.instances.get(session)
        return found.qr_code if found is not None and found.state == "connecting" else None

    def starts(self, session: str) -> int:
        found = self.state.instances.get(session)
        return found.connections if found is not None else 0

    def scan(self, session: str, phone: str) -> None:
        self.state.scan(session, phone)

    def unlink(self, session: str) -> None:
        self.state.remove_device(session)

    def set_down(self, down: bool) -> None:
        self.state.fail_with = 503 if down else None

    def ask_passkey(self, session: str, phone: str, code: str) -> None:
        raise AssertionError("Evolution API has no passkey step")

    def pairing_code(self, session: str) -> str | None:
        found = self.state.instances.get(session)
        return found.pairing_code if found is not None else None

    def events(self, session: str) -> list[tuple[bytes, dict[str, str]]]:
        return [(body, headers) for _, body, headers in self.state.deliveries()]

    def state_reads(self, session: str) -> int:
        return sum(1 for p in self.state.paths() if p in (f"GET /instance/connectionState/{session}",
                                                          f"GET /instance/connect/{session}"))

    def logged_out(self, session: str) -> bool:
        return f"DELETE /instance/logout/{session}" in self.state.paths()

    def exists(self, session: str) -> bool:
        return session in self.state.instances


class RecordingSimulator(SimulatedGateway):
    """The in-process simulator, counting the calls that begin a QR cycle or end a session."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock=clock, starting_s=0.0, qr_first_ttl_s=QR_FIRST_S, qr_next_ttl_s=QR_NEXT_S,
                         qr_count=QR_COUNT, linking_s=0.0)
        self.calls: list[tuple[str, str]] = []

    async def start_session(self, name: str, *, metadata: Any) -> Any:
        before = self._sessions.get(name)
        old_qrs = before.qrs if before is not None else None
        state = await super().start_session(name, metadata=metadata)
        after = self._sessions[name]
        if after.phase == "cycle" and after.qrs is not old_qrs:  # a new cycle draws new QRs
            self.calls.append(("start", name))
        return state

    async def get_state(self, name: str) -> Any:
        self.calls.append(("state", name))
        return await super().get_state(name)

    async def logout(self, name: str) -> None:
        self.calls.append(("logout", name))
        await super().logout(name)


class SimulatorDriver:
    name, has_passkey = "simulator", True

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.gateway = RecordingSimulator(clock)

    def env(self) -> dict[str, str]:
        return {"WHATSAPP_GATEWAY": "simulator"}

    def attach(self, client: Any) -> None:
        client.app_state["runtime"].gateway = self.gateway

    def _session(self, session: str) -> Any:
        return self.gateway._sessions.get(session)

    def shown_qr(self, session: str) -> str | None:
        found = self._session(session)
        return self.gateway._state(found).qr if found is not None else None

    def starts(self, session: str) -> int:
        return self.gateway.calls.count(("start", session))

    def scan(self, session: str, phone: str) -> None:
        self.gateway.scan(session, phone)

    def unlink(self, session: str) -> None:
        self.gateway.unlink_device(session)

    def set_down(self, down: bool) -> None:
        self.gateway.set_fault("down" if down else None)

    def ask_passkey(self, session: str, phone: str, code: str) -> None:
        self.gateway.scan(session, phone, passkey_code=code)

    def pairing_code(self, session: str) -> str | None:
        found = self._session(session)
        return next(iter(found.pairing), None) if found is not None else None

    def events(self, session: str) -> list[tuple[bytes, dict[str, str]]]:
        return []  # the simulator sends no webhooks: every delivery claiming to be one is forged

    def state_reads(self, session: str) -> int:
        return self.gateway.calls.count(("state", session))

    def logged_out(self, session: str) -> bool:
        return ("logout", session) in self.gateway.calls

    def exists(self, session: str) -> bool:
        return self._session(session) is not None


GATEWAYS = ("waha", "evolution", "simulator")
WITH_PASSKEY = ("waha", "simulator")


@contextlib.contextmanager
def driver_for(name: str) -> Iterator[Driver]:
    clock = FakeClock()
    if name == "waha":
        app, state = create_fake_waha("waha-key", clock=clock)
        with serve(app) as url:
            yield WahaDriver(url, state, clock)
    elif name == "evolution":
        app, evo = create_fake_evolution("evo-key", clock=clock)
        with serve(app) as url:
            yield EvolutionDriver(url, evo, clock)
    else:
        yield SimulatorDriver(clock)


def waha_signed(body: bytes) -> dict[str, str]:
    return {"X-Webhook-Hmac": hmac.new(WAHA_HOOK_KEY.encode(), body, hashlib.sha512).hexdigest(),
            "X-Webhook-Hmac-Algorithm": "sha512", "Content-Type": "application/json"}
