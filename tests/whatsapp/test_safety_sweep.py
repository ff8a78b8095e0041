"""The safety net as one sweep per deployment: one list call for every session, a confirming
read only for a session that differs, one instance at a time, and polls that ask nothing.

Real PostgreSQL, a fake WAHA over real HTTP (its `GET /api/sessions?all=true` as WAHA documents
it), real portal instances on one database.
"""

from __future__ import annotations

import contextlib
import re
import time

from starlette.testclient import TestClient

from portal.app import create_app
from portal.platform.locks import SWEEP_LOCK
from portal.salons.ids import YclientsSalonId
from portal.whatsapp import service as linking
from tests.helpers.landing import land
from tests.whatsapp.test_gateway_events import HX, state_of, two_instances, until, waha_env

LIST = "GET /api/sessions"
FIRST = 500_000  # salons inserted as rows, next to the ones that land


def waiting_rows(db, state, count: int) -> list[int]:
    """`count` salons whose links wait for a scan with a live QR, each with its session at the
    gateway showing that QR: nothing for a sweep to confirm."""
    db.execute("INSERT INTO salons (yclients_salon_id, landed_at)"
               f" SELECT {FIRST} + n, now() FROM generate_series(1, {count}) n")
    db.execute("INSERT INTO whatsapp_links (salon_id, session_name, status, qr, qr_expires_at)"
               " SELECT id, 'salon-' || yclients_salon_id, 'awaiting_scan', 'qr-' || yclients_salon_id,"
               f" now() + interval '60 seconds' FROM salons WHERE yclients_salon_id > {FIRST}")
    ids = [FIRST + n for n in range(1, count + 1)]
    for salon_id in ids:
        state.add_session(f"salon-{salon_id}", "SCAN_QR_CODE")
    return ids


def status_of(db, salon_id: int) -> str:
    return db.fetchval("SELECT l.status FROM whatsapp_links l JOIN salons s ON s.id = l.salon_id"
                       " WHERE s.yclients_salon_id = $1", salon_id)


def test_the_sweep_lists_every_session_once_and_reads_only_the_ones_that_differ(make_settings, waha, db):
    url, state = waha
    settings = make_settings(**waha_env(url, WHATSAPP_SAFETY_POLL_S="0.2"))
    ids = waiting_rows(db, state, 30)
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        sweep = c.app_state["runtime"].sweep
        until(lambda: sweep.sweeps >= 2)
        assert set(state.paths()) == {LIST}  # thirty waiting links, not one read of a session
        scanned, gone = f"salon-{ids[0]}", f"salon-{ids[1]}"
        state.set_status(scanned, "WORKING")  # and no webhook arrives
        state.set_me(scanned, "79160000701")
        del state.sessions[gone]  # deleted at the gateway behind the portal's back
        until(lambda: status_of(db, ids[0]) == "connected" and status_of(db, ids[1]) == "idle")
        reads = {p for p in state.paths() if p != LIST}
        assert reads == {f"GET /api/sessions/{scanned}", f"GET /api/sessions/{gone}"}
        assert ("GET", "/api/sessions", None) in state.requests
        assert db.fetchval("SELECT phone FROM whatsapp_links WHERE session_name = $1", scanned) == "79160000701"


def test_one_instance_sweeps_at_a_time_and_another_takes_over_when_it_stops_or_dies(make_settings, waha, db):
    url, state = waha
    (_, app_a, _), (_, app_b, _) = two_instances(make_settings, url, WHATSAPP_SAFETY_POLL_S="0.1")
    ids = waiting_rows(db, state, 3)
    with contextlib.ExitStack() as both:
        stacks = [both.enter_context(contextlib.ExitStack()) for _ in range(2)]
        clients = [stack.enter_context(TestClient(app, base_url="http://127.0.0.1:8000"))
                   for stack, app in zip(stacks, (app_a, app_b), strict=True)]
        sweeps = [client.app_state["runtime"].sweep for client in clients]
        until(lambda: any(s.holding for s in sweeps))
        first = next(i for i, s in enumerate(sweeps) if s.holding)
        holder, other = sweeps[first], sweeps[1 - first]
        start = holder.sweeps
        until(lambda: holder.sweeps >= start + 5)  # many intervals: the other never got it
        assert not other.holding and other.sweeps == 0

        # The holder's session ends (as when its process dies): the lock is free, one takes it.
        assert db.fetchval("SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory'"
                           " AND granted AND classid = $1 AND database ="
                           " (SELECT oid FROM pg_database WHERE datname = current_database())",
                           SWEEP_LOCK[0]) == 1
        state.set_status(f"salon-{ids[0]}", "WORKING")  # no webhook: the sweep finds it
        state.set_me(f"salon-{ids[0]}", "79160000702")
        until(lambda: status_of(db, ids[0]) == "connected")
        until(lambda: sum(s.holding for s in sweeps) == 1)  # the old holder notices at its next turn

        # The holder's instance stops: the other one takes over.
        now = next(i for i, s in enumerate(sweeps) if s.holding)
        stacks[now].close()
        until(lambda: sweeps[1 - now].holding)
        state.set_status(f"salon-{ids[1]}", "WORKING")
        state.set_me(f"salon-{ids[1]}", "79160000703")
        until(lambda: status_of(db, ids[1]) == "connected")


def test_with_a_thousand_links_waiting_polls_never_call_the_gateway(make_settings, waha, db):
    """Owners poll; the gateway sees the sweep's list calls only."""
    url, state = waha
    settings = make_settings(**waha_env(url, WHATSAPP_SAFETY_POLL_S="0.5"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        land(c, settings.partner_token, salon_id=701)
        assert 'data-state="awaiting_scan"' in c.post("/onboarding/whatsapp/start", headers=HX).text
        ids = waiting_rows(db, state, 1000)  # after our owner's start: past the cap of waiting starts
        runtime = c.app_state["runtime"]
        state.requests.clear()
        start = runtime.sweep.sweeps
        for salon_id in ids:  # each owner's poll: what the status endpoints answer with
            poll = c.portal.call(linking.current_by_credential, runtime, YclientsSalonId(salon_id))
            assert poll is not None and poll.view.status == "awaiting_scan"
        for _ in range(20):  # and a real owner's page, over HTTP
            assert state_of(c) == "awaiting_scan"
        until(lambda: runtime.sweep.sweeps >= start + 2)
        assert state.requests and {p for p in state.paths()} == {LIST}
        assert re.search(r"awaiting_scan", c.get("/onboarding/whatsapp/status", headers=HX).text)


def test_a_qr_about_to_expire_is_renewed_behind_the_poll_which_never_waits_for_the_gateway(make_settings, waha, db):
    url, state = waha
    settings = make_settings(**waha_env(url, WHATSAPP_SAFETY_POLL_S="3600"))
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as c:
        land(c, settings.partner_token, salon_id=707)
        c.post("/onboarding/whatsapp/start", headers=HX)
        state.sessions["salon-707"].qr = "2@rotated,by,the,gateway"
        state.hang_s = 2.0  # the gateway is slow to answer
        db.execute("UPDATE whatsapp_links SET qr_expires_at = now() + interval '3 seconds', last_error = 'x'")
        until(lambda: [p for p in state.paths() if "auth/qr" in p] or state_of(c) != "awaiting_scan")
        started = time.monotonic()
        assert state_of(c) == "awaiting_scan"  # the QR it has, at once: it is live for 3 s more
        assert time.monotonic() - started < 1.0
        state.hang_s = 0
        until(lambda: "2@rotated,by,the,gateway" in c.get("/onboarding/whatsapp/status", headers=HX).text)
