"""The two numbers that name a salon, as distinct types so one is never passed as the other.

`SalonPk` is our own primary key (`salons.id`): what our tables reference. `YclientsSalonId`
is YClients' branch id: what the marketplace sends in landings and webhooks and what the
partner API takes. They are both integers and used to share the name `salon_id`; mypy now
refuses to mix them.
"""

from __future__ import annotations

from typing import NewType

SalonPk = NewType("SalonPk", int)
YclientsSalonId = NewType("YclientsSalonId", int)
