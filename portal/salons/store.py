"""Salon rows (`salons`): the record every subsystem reads, SQL by hand.

The landing's upsert (salon and marketplace user) lives with the landing in
`portal/onboarding/store.py`; this module only reads and names the salon.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from portal.platform.database import Connection
from portal.salons.ids import SalonPk, YclientsSalonId
from portal.salons.status import IntegrationStatus


@dataclass(frozen=True)
class Salon:
    pk: SalonPk  # the `id` column: see _COLUMNS
    yclients_salon_id: YclientsSalonId
    name: str | None
    integration_status: IntegrationStatus
    install_generation: int
    landed_at: datetime
    activated_at: datetime | None
    api_key_prefix: str | None
    last_error: str | None
    # The YClients user who started the current install (None: not bound, or an unsigned
    # landing); only they may open the salon (onboarding/admission.py).
    owner_user_id: int | None
    # A chain's branch: the install's first branch, whose WhatsApp link serves them all
    # (None: this salon leads its own install).
    install_lead_id: SalonPk | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Salon:
        values = {f: row[f] for f in cls.__dataclass_fields__}
        values["integration_status"] = IntegrationStatus(values["integration_status"])
        return cls(**values)


# The table keeps its `id` column; the field is `pk` so Python never says a bare "id" for a
# salon. Selecting `id AS pk` lets from_row stay a plain field-by-field copy.
COLUMNS = ", ".join("id AS pk" if f == "pk" else f for f in Salon.__dataclass_fields__)

_BY_YCLIENTS_ID = f"SELECT {COLUMNS} FROM salons WHERE yclients_salon_id = $1"


async def by_pk(conn: Connection, salon_pk: SalonPk) -> Salon | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM salons WHERE id = $1", salon_pk)
    return Salon.from_row(row) if row else None


async def branches(conn: Connection, lead_pk: SalonPk) -> list[Salon]:
    """An install's salons, its lead first, then the other branches by YClients id."""
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM salons WHERE id = $1 OR install_lead_id = $1"
                            " ORDER BY install_lead_id NULLS FIRST, yclients_salon_id", lead_pk)
    return [Salon.from_row(r) for r in rows]


async def by_yclients_id(conn: Connection, yclients_salon_id: YclientsSalonId) -> Salon | None:
    row = await conn.fetchrow(_BY_YCLIENTS_ID, yclients_salon_id)
    return Salon.from_row(row) if row else None
