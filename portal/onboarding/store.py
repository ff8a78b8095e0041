"""What a marketplace landing writes: the salon (upserted), the user who brought it, and
what the portal remembers of the link (the hash of its signature, first use, salon).

YClients' signature has no timestamp or nonce, so a replayed link looks exactly like a fresh
one; only this memory tells them apart. A link works for the registration window from its
first use, for the salon it was first used for only, and not after that salon was
uninstalled. A replay writes nothing: it neither restarts the window nor revives a salon.
"""

from __future__ import annotations

from dataclasses import dataclass

from portal.onboarding.landing import Landing, LandingError
from portal.platform.database import Connection
from portal.salons.ids import SalonPk
from portal.salons.store import COLUMNS, Salon

# A landing restarts onboarding for a salon that is not (or no longer) active: its window
# begins again. An active, activating or frozen salon keeps its status: a second visit
# from the marketplace must not undo an activation. (Frozen salons come back through
# activation, which needs WhatsApp, so they keep the status until then.)
_UPSERT = f"""
INSERT INTO salons (yclients_salon_id, name, landed_at, landing_bound)
VALUES ($1, $2, now(), $3)
ON CONFLICT (yclients_salon_id) DO UPDATE SET
    name = COALESCE(EXCLUDED.name, salons.name),
    landed_at = now(),
    landing_bound = EXCLUDED.landing_bound,
    integration_status = CASE
        WHEN salons.integration_status IN ('uninstalled', 'activation_failed')
        THEN 'pending_whatsapp' ELSE salons.integration_status END,
    updated_at = now()
RETURNING {COLUMNS}, (xmax = 0) AS inserted
"""


_SALON_COLUMNS = ", ".join(f"s.{column}" for column in COLUMNS.split(", "))

# A remembered link, its salon, the seconds left of its window, and whether the salon was
# uninstalled since the link's first use ('uninstalled' is the event the YClients webhook
# worker writes in the same transaction as the status).
_REMEMBERED = f"""
SELECT {_SALON_COLUMNS},
       extract(epoch FROM l.first_used_at + make_interval(secs => $2) - now())::float8 AS left_s,
       (s.integration_status = 'uninstalled' OR EXISTS (
            SELECT 1 FROM marketplace_events e
            WHERE e.salon_id = s.id AND e.event_type = 'uninstalled' AND e.created_at >= l.first_used_at
       )) AS uninstalled_since
FROM landing_links l JOIN salons s ON s.id = l.salon_id
WHERE l.sign_hash = $1
"""


@dataclass(frozen=True)
class Recorded:
    salon: Salon
    is_new: bool
    replay: bool  # the link was used before: nothing was written
    link_left_s: float | None  # seconds left of the link's window (None: an unsigned landing)


class _Raced(Exception):
    """Another landing used the same link first, between our read and our insert."""


async def _replay(conn: Connection, landing: Landing, window_s: float) -> Recorded | None:
    """The answer for a link used before, or None for a first use; refuses what it must."""
    row = await conn.fetchrow(_REMEMBERED, landing.sign_hash, float(window_s))
    if row is None:
        return None
    salon = Salon.from_row(row)
    if salon.yclients_salon_id != landing.yclients_salon_id:
        raise LandingError(403, "LINK_OTHER_SALON", "error.salon_mismatch")
    if row["left_s"] <= 0 or row["uninstalled_since"]:
        raise LandingError(403, "LINK_EXPIRED", "error.landing_link_expired")
    return Recorded(salon, is_new=False, replay=True, link_left_s=float(row["left_s"]))


async def record_landing(conn: Connection, landing: Landing, *, window_s: float) -> Recorded:
    """A first use: upsert the salon and its marketplace user and remember the link, in one
    transaction. A replay: check it and write nothing. Raises `LandingError` on a refusal."""
    for _ in range(2):  # a lost race for the first use is a replay: read it again
        try:
            async with conn.transaction():
                if landing.sign_hash is not None and (replay := await _replay(conn, landing, window_s)):
                    return replay
                return await _first_use(conn, landing, window_s)
        except _Raced:
            continue
    raise LandingError(409, "LINK_BUSY", "error.landing_link_expired")  # pragma: no cover (needs 3 racers)


async def _first_use(conn: Connection, landing: Landing, window_s: float) -> Recorded:
    user = landing.user
    row = await conn.fetchrow(_UPSERT, landing.yclients_salon_id, user.salon_name if user else None,
                              landing.signed and landing.bound)
    assert row is not None  # an upsert with RETURNING always returns its row
    if user is not None and user.id is not None:
        await conn.execute(
            """
            INSERT INTO marketplace_users (salon_id, yclients_user_id, name, phone, email, is_approved)
            VALUES ($1, $2, $3, $4, $5, $6)
            ON CONFLICT (salon_id, yclients_user_id) DO UPDATE SET
                name = EXCLUDED.name, phone = EXCLUDED.phone, email = EXCLUDED.email,
                is_approved = EXCLUDED.is_approved, last_landed_at = now()
            """,
            row["pk"], user.id, user.name, user.phone, user.email, user.is_approved,
        )
    if landing.sign_hash is None:
        return Recorded(Salon.from_row(row), bool(row["inserted"]), replay=False, link_left_s=None)
    remembered = await conn.fetchval(
        "INSERT INTO landing_links (sign_hash, salon_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1",
        landing.sign_hash, row["pk"])
    if remembered is None:
        raise _Raced  # rolls back the upsert: the other first use decides
    return Recorded(Salon.from_row(row), bool(row["inserted"]), replay=False, link_left_s=float(window_s))


async def forget_links(conn: Connection, salon_pk: SalonPk) -> int:
    """Staff's way out when a link must work again (YClients may send the very same signed
    data on a reinstall): forget the links this salon was opened with; how many."""
    result = await conn.execute("DELETE FROM landing_links WHERE salon_id = $1", salon_pk)
    return int(result.split()[-1])


async def owner_phone(conn: Connection, salon_pk: SalonPk) -> str | None:
    """The phone of the salon's most recent marketplace user (from YClients' signed user
    data), the best clue to which country the owner dials from; None once erased."""
    phone: str | None = await conn.fetchval(
        "SELECT phone FROM marketplace_users WHERE salon_id = $1 AND phone IS NOT NULL"
        " ORDER BY last_landed_at DESC LIMIT 1", salon_pk)
    return phone
