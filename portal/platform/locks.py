"""Advisory lock keys, in one place so no two uses can collide.

PostgreSQL's two-int form `(namespace, key)` is used throughout: the first int is a fixed
namespace for this application and purpose, the second the object (a salon's YClients id,
which fits an int4 by the landing's validation). Other applications sharing the database
would have to pick the same namespace number by accident to collide.
"""

from __future__ import annotations

# 0x53414C = "SAL": this portal's prefix; the low digit names the purpose.
MIGRATIONS_LOCK = (0x53414C0, 0)
ACTIVATION_NAMESPACE = 0x53414C1
# The gateway safety sweep: one holder per deployment (whatsapp/sweep.py).
SWEEP_LOCK = (0x53414C2, 0)


def activation_lock(yclients_salon_id: int) -> tuple[int, int]:
    return (ACTIVATION_NAMESPACE, yclients_salon_id)
