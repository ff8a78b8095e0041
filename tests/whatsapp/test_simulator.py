"""The in-process simulated gateway, driven by a fake clock."""

import asyncio
import re
import time

import pytest

from portal.whatsapp.gateways.simulator import SimulatedGateway
from portal.whatsapp.link import (
    GatewayConflict,
    GatewayUnavailable,
    InvalidWebhook,
    LinkState,
    LinkStatus,
    SessionNotFound,
    WhatsAppGateway,
)
from tests.helpers.clock import FakeClock

SALON = "salon-12345"
PHONE = "79161234567"
QR_SHAPE = re.compile(r"2@[^,]+,[^,]+,[^,]+,[^,]+")
CODE_SHAPE = re.compile(r"[A-Z0-9]{4}-[A-Z0-9]{4}")


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def sim(clock):
    return SimulatedGateway(clock=clock)  # defaults: 2 s starting, QR 60 s then 5 × 20 s, 2 s linking


async def awaiting_scan(sim, clock, name=SALON):
    await sim.start_session(name, metadata={})
    clock.advance(2)
    state = await sim.get_state(name)
    assert state.status is LinkStatus.AWAITING_SCAN
    return state


def test_it_is_a_whatsapp_gateway(sim):
    assert isinstance(sim, WhatsAppGateway)


async def test_a_new_session_starts_then_shows_its_first_qr(sim, clock):
    assert await sim.start_session(SALON, metadata={"yclients_salon_id": "12345"}) == LinkState(LinkStatus.STARTING)
    clock.advance(1.5)
    assert (await sim.get_state(SALON)).status is LinkStatus.STARTING

    clock.advance(0.5)
    state = await sim.get_state(SALON)

    assert state.status is LinkStatus.AWAITING_SCAN
    assert QR_SHAPE.fullmatch(state.qr)
    assert state.qr_expires_in == pytest.approx(60)
    assert sim.session_metadata(SALON) == {"yclients_salon_id": "12345"}


async def test_qr_rotates_60_s_then_every_20_s_six_codes_then_expires(sim, clock):
    first = await awaiting_scan(sim, clock)
    clock.advance(59.75)
    assert (await sim.get_state(SALON)).qr == first.qr  # the first lives 60 s

    clock.advance(0.25)
    seen = [first.qr]
    for _ in range(5):
        state = await sim.get_state(SALON)
        assert state.status is LinkStatus.AWAITING_SCAN
        assert state.qr_expires_in == pytest.approx(20)
        clock.advance(19.75)
        assert (await sim.get_state(SALON)).qr == state.qr  # each next one lives 20 s
        clock.advance(0.25)
        seen.append(state.qr)

    assert len(set(seen)) == 6
    assert await sim.get_state(SALON) == LinkState(LinkStatus.EXPIRED)


async def test_qr_codes_differ_between_sessions(sim, clock):
    one = await awaiting_scan(sim, clock, "salon-1")
    await sim.start_session("salon-2", metadata={})
    clock.advance(2)
    two = await sim.get_state("salon-2")
    assert one.qr != two.qr


async def test_start_session_is_idempotent_mid_cycle(sim, clock):
    first = await awaiting_scan(sim, clock)
    clock.advance(10)

    again = await sim.start_session(SALON, metadata={})

    assert again.qr == first.qr
    assert again.qr_expires_in == pytest.approx(50)


async def test_an_expired_session_gets_a_new_cycle_from_start_session(sim, clock):
    first = await awaiting_scan(sim, clock)
    clock.advance(160)
    assert (await sim.get_state(SALON)).status is LinkStatus.EXPIRED

    assert (await sim.start_session(SALON, metadata={})).status is LinkStatus.STARTING
    clock.advance(2)
    fresh = await sim.get_state(SALON)

    assert fresh.status is LinkStatus.AWAITING_SCAN
    assert fresh.qr != first.qr
    assert fresh.qr_expires_in == pytest.approx(60)


async def test_restart_mid_cycle_begins_a_new_cycle(sim, clock):
    first = await awaiting_scan(sim, clock)
    clock.advance(70)

    await sim.restart(SALON)

    assert (await sim.get_state(SALON)).status is LinkStatus.STARTING
    clock.advance(2)
    fresh = await sim.get_state(SALON)
    assert fresh.qr != first.qr and fresh.qr_expires_in == pytest.approx(60)


async def test_scan_links_then_connects_with_that_phone(sim, clock):
    await awaiting_scan(sim, clock)

    sim.scan(SALON, PHONE)

    assert await sim.get_state(SALON) == LinkState(LinkStatus.LINKING, phone=PHONE)
    clock.advance(2)
    assert await sim.get_state(SALON) == LinkState(LinkStatus.CONNECTED, phone=PHONE)
    clock.advance(3600)  # connected stays connected; the QR clock no longer matters
    assert await sim.get_state(SALON) == LinkState(LinkStatus.CONNECTED, phone=PHONE)


async def test_scan_is_only_possible_while_a_qr_is_shown(sim, clock):
    await sim.start_session(SALON, metadata={})
    with pytest.raises(GatewayConflict):
        sim.scan(SALON, PHONE)  # still starting
    clock.advance(2 + 160)
    with pytest.raises(GatewayConflict):
        sim.scan(SALON, PHONE)  # expired
    with pytest.raises(SessionNotFound):
        sim.scan("salon-404", PHONE)


async def test_pairing_code_links_the_phone_it_was_requested_for(sim, clock):
    await awaiting_scan(sim, clock)

    code = await sim.request_pairing_code(SALON, PHONE)
    sim.enter_pairing_code(SALON, code.lower())  # people type codes in any case

    assert CODE_SHAPE.fullmatch(code)
    assert await sim.get_state(SALON) == LinkState(LinkStatus.LINKING, phone=PHONE)
    clock.advance(2)
    assert await sim.get_state(SALON) == LinkState(LinkStatus.CONNECTED, phone=PHONE)


async def test_a_wrong_or_stale_pairing_code_does_not_link(sim, clock):
    await awaiting_scan(sim, clock)
    stale = await sim.request_pairing_code(SALON, PHONE)
    await sim.restart(SALON)
    clock.advance(2)

    with pytest.raises(GatewayConflict):
        sim.enter_pairing_code(SALON, stale)  # belonged to the previous cycle
    with pytest.raises(GatewayConflict):
        sim.enter_pairing_code(SALON, "ZZZZ-0000")
    assert (await sim.get_state(SALON)).status is LinkStatus.AWAITING_SCAN


async def test_pairing_code_needs_a_shown_qr_and_plain_digits(sim, clock):
    await sim.start_session(SALON, metadata={})
    with pytest.raises(GatewayConflict):
        await sim.request_pairing_code(SALON, PHONE)
    clock.advance(2)
    with pytest.raises(ValueError):
        await sim.request_pairing_code(SALON, "+7 916 123 45 67")


async def test_logout_of_a_connected_session_is_logged_out_and_can_relink(sim, clock):
    await awaiting_scan(sim, clock)
    sim.scan(SALON, PHONE)
    clock.advance(2)

    await sim.logout(SALON)

    assert await sim.get_state(SALON) == LinkState(LinkStatus.LOGGED_OUT)
    assert (await sim.start_session(SALON, metadata={})).status is LinkStatus.STARTING


async def test_logout_of_an_unlinked_session_is_idle(sim, clock):
    await awaiting_scan(sim, clock)

    await sim.logout(SALON)

    assert await sim.get_state(SALON) == LinkState(LinkStatus.IDLE)


async def test_restart_of_a_connected_session_reconnects_without_a_scan(sim, clock):
    await awaiting_scan(sim, clock)
    sim.scan(SALON, PHONE)
    clock.advance(2)

    await sim.restart(SALON)

    assert await sim.get_state(SALON) == LinkState(LinkStatus.LINKING, phone=PHONE)
    clock.advance(2)
    assert await sim.get_state(SALON) == LinkState(LinkStatus.CONNECTED, phone=PHONE)


async def test_a_failed_session_shows_failed_and_start_session_retries(sim, clock):
    await awaiting_scan(sim, clock)

    sim.fail_session(SALON)

    assert await sim.get_state(SALON) == LinkState(LinkStatus.FAILED)
    assert (await sim.start_session(SALON, metadata={})).status is LinkStatus.STARTING


async def test_delete_forgets_the_session(sim, clock):
    await awaiting_scan(sim, clock)

    await sim.delete(SALON)
    await sim.delete(SALON)  # deleting what is gone is fine

    assert await sim.get_state(SALON) == LinkState(LinkStatus.IDLE)
    with pytest.raises(SessionNotFound):
        await sim.restart(SALON)
    with pytest.raises(SessionNotFound):
        await sim.logout(SALON)


async def test_two_simulators_share_nothing(clock):
    one, two = SimulatedGateway(clock=clock), SimulatedGateway(clock=clock)
    await one.start_session(SALON, metadata={})
    assert await two.get_state(SALON) == LinkState(LinkStatus.IDLE)


def test_the_simulator_accepts_no_webhooks(sim):
    with pytest.raises(InvalidWebhook):
        sim.parse_webhook(b'{"event": "session.status"}', {})


# --- fault injection -------------------------------------------------------------------


async def test_down_fails_every_call_until_healed(sim, clock):
    await awaiting_scan(sim, clock)
    sim.set_fault("down")
    assert sim.fault == "down"

    for call in (
        sim.start_session(SALON, metadata={}),
        sim.get_state(SALON),
        sim.request_pairing_code(SALON, PHONE),
        sim.restart(SALON),
        sim.logout(SALON),
        sim.delete(SALON),
    ):
        with pytest.raises(GatewayUnavailable):
            await call

    sim.set_fault(None)
    assert (await sim.get_state(SALON)).status is LinkStatus.AWAITING_SCAN  # nothing changed meanwhile


async def test_slow_calls_can_be_cancelled_by_the_callers_timeout(sim):
    sim.set_fault("slow")  # waits 60 s by default
    started = time.monotonic()

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(sim.start_session(SALON, metadata={}), timeout=0.05)

    assert time.monotonic() - started < 1
    sim.set_fault(None)
    assert await sim.get_state(SALON) == LinkState(LinkStatus.IDLE)  # the cancelled call did nothing


async def test_slow_calls_complete_after_the_delay(clock):
    sim = SimulatedGateway(clock=clock, slow_s=0.01)
    sim.set_fault("slow")

    assert (await sim.start_session(SALON, metadata={})).status is LinkStatus.STARTING


async def test_failing_refuses_to_start_sessions_but_still_reads(sim, clock):
    await awaiting_scan(sim, clock)
    sim.set_fault("failing")

    with pytest.raises(GatewayUnavailable):
        await sim.start_session("salon-2", metadata={})
    with pytest.raises(GatewayUnavailable):
        await sim.restart(SALON)

    assert (await sim.get_state(SALON)).status is LinkStatus.AWAITING_SCAN
    assert await sim.get_state("salon-2") == LinkState(LinkStatus.IDLE)


def test_unknown_fault_modes_are_rejected(sim):
    with pytest.raises(ValueError):
        sim.set_fault("flaky")
    assert sim.fault is None


async def test_a_connected_session_sends_texts_the_phone_can_read(sim, clock):
    await awaiting_scan(sim, clock)
    with pytest.raises(GatewayConflict):
        await sim.send_text(SALON, PHONE, "too early")  # only a connected session sends
    sim.scan(SALON, PHONE)
    clock.advance(2)

    await sim.send_text(SALON, PHONE, "first")
    await sim.send_text(SALON, PHONE, "second")

    assert [(m.to, m.text) for m in sim.sent_texts(SALON)] == [(PHONE, "second"), (PHONE, "first")]
    assert sim.sent_texts("salon-other") == []
    sim.set_fault("down")
    with pytest.raises(GatewayUnavailable):
        await sim.send_text(SALON, PHONE, "third")


async def test_every_session_is_listed_without_its_qr(sim, clock):
    await awaiting_scan(sim, clock)
    await awaiting_scan(sim, clock, name="salon-2")
    sim.scan("salon-2", PHONE)
    clock.advance(5)
    assert await sim.list_states() == {SALON: LinkState(LinkStatus.AWAITING_SCAN),
                                       "salon-2": LinkState(LinkStatus.CONNECTED, phone=PHONE)}
