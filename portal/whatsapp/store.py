"""WhatsApp link rows (`whatsapp_links`): one per salon, SQL by hand.

The link state lives in PostgreSQL so any instance answers any poll. The hot path is one
round trip: `read_for_owner` with the gateway's events on (a read; the safety sweep asks the
gateway, `watched_links` and the sweep lock here), `read_for_poll` without them (it also
claims, at most once per refresh interval per salon, the right to ask the gateway). A page
that already holds the salon reads the same through `read_salon_link` / `read_salon_for_poll`,
which take the salon's fields as given and read `whatsapp_links` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import asyncpg

from portal.platform.database import Connection
from portal.platform.locks import SWEEP_LOCK
from portal.salons.ids import SalonPk, YclientsSalonId
from portal.salons.status import IntegrationStatus
from portal.salons.store import Salon
from portal.whatsapp.link import LinkState, LinkStatus, session_name

# A QR is fetched again only this close to its expiry (the gateway rotates it every ~20 s).
QR_REFRESH_MARGIN_S = 5.0

WAITING = (LinkStatus.STARTING, LinkStatus.AWAITING_SCAN, LinkStatus.PASSKEY, LinkStatus.LINKING)


@dataclass(frozen=True)
class Link:
    salon_pk: SalonPk
    session_name: str
    status: LinkStatus
    qr: str | None
    qr_expires_at: datetime | None
    phone: str | None
    last_error: str | None
    pairing_code: str | None
    pairing_expires_at: datetime | None
    version: int  # moves exactly when what the owner sees moves (a trigger keeps it)
    now: datetime  # the database's clock, so expiry maths never mixes two clocks
    connected_at: datetime | None = None  # when the current connection began
    connected_phone: str | None = None  # the number last connected, kept when the link is lost
    passkey_code: str | None = None  # in the passkey step: the code to compare with the phone's
    failed_starts: int = 0  # consecutive saves as failed: where a failed start is in its backoff

    @classmethod
    def from_row(cls, row: asyncpg.Record | None) -> Link:
        if row is None:  # every caller reads a link that exists: say so loudly if it does not
            raise LookupError("no WhatsApp link row")
        fields = {f: row[f] for f in cls.__dataclass_fields__ if f not in ("status", "salon_pk")}
        return cls(**fields, salon_pk=SalonPk(row["salon_id"]), status=LinkStatus(row["status"]))


_LINK_COLUMNS = ("l.salon_id, l.session_name, l.status, l.qr, l.qr_expires_at, l.phone, l.last_error,"
                 " l.pairing_code, l.pairing_expires_at, l.version, now() AS now,"
                 " l.connected_at, l.connected_phone, l.passkey_code, l.failed_starts")

# The poll's salon, from either of two places: the view `salon_links` (migrations/019, this
# module's) by the token's YClients id, for the owner's polls that hold nothing else; or bound
# parameters, from the `Salon` a page already read (its pk, integration status and owner), so
# the page's poll reads `whatsapp_links` alone and `salons` is not read twice in one request.
_SALON_BY_CREDENTIAL = ("SELECT salon_pk AS id, integration_status, owner_user_id FROM salon_links"
                        " WHERE yclients_salon_id = $1")
_SALON_GIVEN = "SELECT $1::bigint AS id, $6::text AS integration_status, $7::bigint AS owner_user_id"


def _poll_sql(salon: str) -> str:
    """One round trip for the hottest path: the salon (the CTE `s`, from `salon`), its link,
    and the claim. The CTE claims the refresh (moving checked_at) only when it is due; the
    outer SELECT still sees the row as it was, which is what the caller shows if it did not win."""
    return f"""
WITH s AS ({salon}),
claim AS (
    UPDATE whatsapp_links l SET checked_at = now() FROM s
    WHERE l.salon_id = s.id AND (
        l.status = ANY($2::text[])
          AND (l.checked_at IS NULL OR l.checked_at < now() - make_interval(secs => $3)
               -- a shown QR about to expire is fetched anew whatever the safety interval
               -- (at most once a second), so the owner never scans a code the gateway dropped
               OR l.status = 'awaiting_scan' AND l.qr_expires_at < now() + make_interval(secs => $5)
                  AND l.checked_at < now() - interval '1 second')
        -- a connected link is looked at too, more rarely: the phone may unlink the device,
        -- and the page that shows it (the salon's own, or the onboarding's activation step)
        -- says so; a salon without the app has no session left to look at
        OR l.status = 'connected' AND s.integration_status <> 'uninstalled'
          AND (l.checked_at IS NULL OR l.checked_at < now() - make_interval(secs => $4)))
    RETURNING l.salon_id
)
SELECT s.id AS salon_pk, s.integration_status, s.owner_user_id, {_LINK_COLUMNS},
       EXISTS (SELECT 1 FROM claim) AS claimed
FROM s LEFT JOIN whatsapp_links l ON l.salon_id = s.id
"""


_POLL = _poll_sql(_SALON_BY_CREDENTIAL)
_POLL_GIVEN = _poll_sql(_SALON_GIVEN)


@dataclass(frozen=True)
class PollRead:
    salon_pk: SalonPk
    integration_status: IntegrationStatus
    link: Link | None
    claimed: bool  # this caller may ask the gateway now
    owner_user_id: int | None  # who may see it (onboarding/owner.py `opens`)

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> PollRead:
        link = Link.from_row(row) if row["session_name"] is not None else None
        return cls(SalonPk(row["salon_pk"]), IntegrationStatus(row["integration_status"]), link, row["claimed"],
                   row["owner_user_id"])


def _poll_args(refresh_s: float, connected_refresh_s: float | None) -> tuple[list[str], float, float, float]:
    """$2..$5 of the poll: a connected link is claimed every `connected_refresh_s` (default: `refresh_s`)."""
    return ([s.value for s in WAITING], refresh_s, refresh_s if connected_refresh_s is None else connected_refresh_s,
            QR_REFRESH_MARGIN_S)


async def read_for_poll(conn: Connection, yclients_salon_id: YclientsSalonId,
                        refresh_s: float, connected_refresh_s: float | None = None) -> PollRead | None:
    """The owner's poll by the token's YClients id; None when there is no such salon."""
    row = await conn.fetchrow(_POLL, yclients_salon_id, *_poll_args(refresh_s, connected_refresh_s))
    return PollRead.from_row(row) if row is not None else None


async def read_salon_for_poll(conn: Connection, salon: Salon,
                              refresh_s: float, connected_refresh_s: float | None = None) -> PollRead:
    """`read_for_poll` for a salon already read: its link (from `whatsapp_links` alone) and the claim."""
    row = await conn.fetchrow(_POLL_GIVEN, salon.pk, *_poll_args(refresh_s, connected_refresh_s),
                              salon.integration_status.value, salon.owner_user_id)
    assert row is not None  # the CTE `s` of bound parameters always has its one row
    return PollRead.from_row(row)


# The poll with the gateway's events on: a read, nothing claimed (the sweep looks at the gateway).
_READ = f"""
SELECT l.salon_pk, l.integration_status, l.owner_user_id, {_LINK_COLUMNS}, false AS claimed
FROM salon_links l WHERE l.yclients_salon_id = $1
"""


async def read_for_owner(conn: Connection, yclients_salon_id: YclientsSalonId) -> PollRead | None:
    """The salon and its link as stored, claiming nothing; None when there is no such salon."""
    row = await conn.fetchrow(_READ, yclients_salon_id)
    return PollRead.from_row(row) if row is not None else None


async def read_salon_link(conn: Connection, salon: Salon) -> PollRead:
    """`read_for_owner` for a salon already read: its link alone (none yet: None), claiming nothing."""
    row = await conn.fetchrow(_LINK, salon.pk)
    return PollRead(salon.pk, salon.integration_status, Link.from_row(row) if row is not None else None, False,
                    salon.owner_user_id)


async def watched_links(conn: Connection) -> list[Link]:
    """The links the safety sweep compares with the gateway's list: every waiting one, and every
    connected one of a salon that still has the app (the phone may unlink the device)."""
    rows = await conn.fetch(
        f"""SELECT {_LINK_COLUMNS} FROM salon_links l
            WHERE l.status = ANY($1::text[])
               OR l.status = 'connected' AND l.integration_status <> 'uninstalled'""",
        [s.value for s in WAITING])
    return [Link.from_row(row) for row in rows]


async def try_hold_sweep(conn: Connection) -> bool:
    """Take the deployment's sweep lock for this session if nobody holds it (it is released
    when the session ends: an instance that stops or dies hands it over)."""
    held: bool = await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *SWEEP_LOCK)
    return held


async def still_holds_sweep(conn: Connection) -> bool:
    """Whether this session holds the sweep lock (a round trip on the lock's own connection,
    so a session the server ended is noticed before the next sweep, not after)."""
    held: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND pid = pg_backend_pid() AND classid = $1 AND objid = $2)", *SWEEP_LOCK)
    return held


_LINK = f"SELECT {_LINK_COLUMNS} FROM whatsapp_links l WHERE l.salon_id = $1"


async def get_or_create(conn: Connection, salon_pk: SalonPk, yclients_salon_id: YclientsSalonId) -> Link:
    """The salon's link, created on first use; race-free under READ COMMITTED.

    Read, else insert, else read again. An insert that meets a concurrent one waits for it to
    commit and then does nothing; only a *new* statement (with a new snapshot) can see the
    row the other one committed, which is why the last read is a statement of its own.
    The ON CONFLICT names no key: the row is unique by salon *and* by session name, and two
    inserts that pass the salon's check together meet on whichever index comes first; a
    named arbiter turns a meeting on the other one into a UniqueViolationError.
    """
    row = await conn.fetchrow(_LINK, salon_pk)
    if row is None:
        row = await conn.fetchrow(
            f"""
            WITH l AS (
                INSERT INTO whatsapp_links (salon_id, session_name) VALUES ($1, $2)
                ON CONFLICT DO NOTHING RETURNING *
            )
            SELECT {_LINK_COLUMNS} FROM l
            """,
            salon_pk, session_name(yclients_salon_id),
        )
    if row is None:
        row = await conn.fetchrow(_LINK, salon_pk)
    return Link.from_row(row)


class Saved(NamedTuple):
    link: Link
    previous: LinkStatus  # the status before this save
    previous_phone: str | None  # the number last connected before this save
    integration_status: IntegrationStatus  # the salon's, read in the same statement


async def save_state(conn: Connection, salon_pk: SalonPk, state: LinkState, *,
                     error: str | None = None) -> Saved:
    """Store what the gateway said; returns the link and what it was before."""
    row = await conn.fetchrow(
        f"""
        WITH before AS (SELECT status, connected_phone FROM whatsapp_links WHERE salon_id = $1 FOR UPDATE)
        UPDATE whatsapp_links l SET
            status = $2,
            qr = $3,
            qr_expires_at = CASE WHEN $3::text IS NULL THEN NULL
                                 ELSE now() + make_interval(secs => COALESCE($4, 20)) END,
            phone = COALESCE($5, CASE WHEN $2 IN ('linking', 'connected') THEN l.phone END),
            -- "since when": a connection that begins again (a relink) starts its own clock
            connected_at = CASE WHEN $2 <> 'connected' THEN l.connected_at
                                WHEN before.status = 'connected' THEN COALESCE(l.connected_at, now())
                                ELSE now() END,
            connected_phone = CASE WHEN $2 = 'connected' THEN COALESCE($5, l.phone, l.connected_phone)
                                   ELSE l.connected_phone END,
            pairing_code = CASE WHEN $2 = 'awaiting_scan' THEN l.pairing_code END,
            pairing_expires_at = CASE WHEN $2 = 'awaiting_scan' THEN l.pairing_expires_at END,
            last_error = $6,
            passkey_code = CASE WHEN $2 = 'passkey' THEN $7 END,
            failed_starts = CASE WHEN $2 <> 'failed' THEN 0
                                 WHEN before.status = 'failed' THEN l.failed_starts + 1 ELSE 1 END,
            checked_at = now(),
            updated_at = now()
        FROM before WHERE l.salon_id = $1
        RETURNING {_LINK_COLUMNS}, before.status AS previous, before.connected_phone AS previous_phone,
            (SELECT integration_status FROM salon_links WHERE salon_pk = $1) AS integration_status
        """,
        salon_pk, state.status.value, state.qr, state.qr_expires_in, state.phone, error, state.passkey_code,
    )
    link = Link.from_row(row)
    assert row is not None
    return Saved(link, LinkStatus(row["previous"]), row["previous_phone"], IntegrationStatus(row["integration_status"]))


async def save_pairing_code(conn: Connection, salon_pk: SalonPk, code: str, lifetime_s: float) -> Link:
    row = await conn.fetchrow(
        f"""UPDATE whatsapp_links l SET pairing_code = $2,
               pairing_expires_at = now() + make_interval(secs => $3), updated_at = now()
            WHERE l.salon_id = $1 RETURNING {_LINK_COLUMNS}""",
        salon_pk, code, lifetime_s,
    )
    return Link.from_row(row)


async def salon_of_session(conn: Connection, name: str) -> SalonPk | None:
    pk = await conn.fetchval("SELECT salon_id FROM whatsapp_links WHERE session_name = $1", name)
    return SalonPk(pk) if pk is not None else None


async def session_link(conn: Connection, name: str) -> tuple[SalonPk, LinkStatus] | None:
    """The salon of a gateway session and the status its link holds now."""
    row = await conn.fetchrow("SELECT salon_id, status FROM whatsapp_links WHERE session_name = $1", name)
    return (SalonPk(row["salon_id"]), LinkStatus(row["status"])) if row is not None else None


async def count_waiting(conn: Connection, other_than: SalonPk, fresh_s: float) -> int:
    """Links of other salons waiting for a scan (starting, QR shown, linking) that changed
    within `fresh_s` seconds: an abandoned one stops counting."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM whatsapp_links WHERE status = ANY($1::text[]) AND salon_id <> $2"
        " AND updated_at > now() - make_interval(secs => $3)",
        [s.value for s in WAITING], other_than, fresh_s)
    return count


async def drop_pairing_code(conn: Connection, salon_pk: SalonPk) -> Link:
    """The owner goes back to the QR: the code is forgotten (the session still shows a QR)."""
    row = await conn.fetchrow(
        f"""UPDATE whatsapp_links l SET pairing_code = NULL, pairing_expires_at = NULL, updated_at = now()
            WHERE l.salon_id = $1 RETURNING {_LINK_COLUMNS}""", salon_pk)
    return Link.from_row(row)


async def reset(conn: Connection, salon_pk: SalonPk) -> None:
    """The salon's gateway session is gone (an uninstall's cleanup): the link starts over."""
    await conn.execute(
        "UPDATE whatsapp_links SET status = 'idle', qr = NULL, qr_expires_at = NULL, phone = NULL,"
        " pairing_code = NULL, pairing_expires_at = NULL, updated_at = now() WHERE salon_id = $1", salon_pk)


async def erase_phones(conn: Connection, salon_pk: SalonPk) -> None:
    """The salon's WhatsApp numbers are personal data: blanked when it is erased."""
    await conn.execute("UPDATE whatsapp_links SET phone = NULL, connected_phone = NULL WHERE salon_id = $1",
                       salon_pk)


async def holds_phone(conn: Connection, salon_pk: SalonPk) -> bool:
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM whatsapp_links WHERE salon_id = $1"
        " AND (phone IS NOT NULL OR connected_phone IS NOT NULL))", salon_pk))
