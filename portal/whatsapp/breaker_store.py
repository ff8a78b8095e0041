"""SQL of the shared circuit breaker (`circuit_breakers`): its row (state, counters,
half-open trial claims); the running instances with the breaker version each has applied
are `instance_store.py`'s, written on the same connection.

Every change is one transaction: lock the row, apply a pure rule (breaker.Rules) to it with
the database's clock, write it back with the next version and announce that version on
portal_events (delivered on commit). The database's clock is the one clock all instances
share, so opened-at and claim expiry mean the same thing everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from portal.platform.database import Connection, Pool
from portal.platform.notifications import publish
from portal.whatsapp import instance_store as instances
from portal.whatsapp.breaker import BreakerState, Shared, Totals

_COLUMNS = ("version, state, forced, episode, extract(epoch FROM opened_at)::float8 AS opened_at,"
            " consecutive_failures, half_open_successes, trials::text AS trials, last_error,"
            " extract(epoch FROM clock_timestamp())::float8 AS now")

Change = Callable[[Shared, float], Shared | None]  # (state, now) -> new state, or None: no write


def _shared(row: Any) -> Shared:
    trials = json.loads(row["trials"])
    return Shared(
        state=BreakerState(row["state"]), forced=row["forced"], episode=row["episode"],
        opened_at=row["opened_at"], opened_wall=row["opened_at"],
        consecutive_failures=row["consecutive_failures"], half_open_successes=row["half_open_successes"],
        trials=tuple(sorted(((str(k), float(v)) for k, v in trials.items()), key=lambda t: t[1])),
        last_error=row["last_error"], version=row["version"])


class BreakerStore:
    def __init__(self, pool: Pool, name: str, instance_id: str, instance_name: str | None) -> None:
        self._pool = pool
        self.name = name
        self.instance_id = instance_id
        self._instance_name = instance_name

    async def register(self) -> None:
        """Make sure the breaker's row exists and this instance is listed as running."""
        async with self._pool.acquire() as conn:
            await conn.execute("INSERT INTO circuit_breakers (name) VALUES ($1) ON CONFLICT DO NOTHING", self.name)
            await instances.register(conn, self.instance_id, self._instance_name)
            await instances.prune(conn)

    async def load(self) -> tuple[Shared, float]:
        """The shared state and the database's now (epoch seconds)."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM circuit_breakers WHERE name = $1", self.name)
        if row is None:
            raise LookupError(f"no circuit breaker row {self.name!r}")
        return _shared(row), row["now"]

    async def change(self, change: Change) -> tuple[Shared, float]:
        """Apply `change` atomically; returns the state after it and the database's now."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM circuit_breakers WHERE name = $1 FOR UPDATE", self.name)
            if row is None:
                raise LookupError(f"no circuit breaker row {self.name!r}")
            current, now = _shared(row), row["now"]
            new = change(current, now)
            if new is None or new == current:
                return current, now
            version = await self._write(conn, new)
            await self._applied(conn, version)
            await publish(conn, "breaker", f"{self.name}:{version}")
        return replace(new, version=version), now

    async def _write(self, conn: Connection, s: Shared) -> int:
        version: int = await conn.fetchval(
            "UPDATE circuit_breakers SET version = version + 1, state = $2, forced = $3, episode = $4,"
            " opened_at = to_timestamp($5), consecutive_failures = $6, half_open_successes = $7,"
            " trials = $8::jsonb, last_error = $9, updated_at = now() WHERE name = $1 RETURNING version",
            self.name, s.state.value, s.forced, s.episode, s.opened_at, s.consecutive_failures,
            s.half_open_successes, json.dumps(dict(s.trials)), s.last_error)
        return version

    async def _applied(self, conn: Connection, version: int) -> None:
        await instances.applied(conn, self.instance_id, version)

    async def applied(self, version: int) -> None:
        """Record that this instance now decides with `version` of the breaker, and say so on
        portal_events (`breaker_seen:<name>:<version>`): a staff action waiting for every
        instance to apply its change is woken by it instead of reading the table in a loop."""
        async with self._pool.acquire() as conn, conn.transaction():
            await self._applied(conn, version)
            await publish(conn, "breaker_seen", f"{self.name}:{version}")

    async def add_totals(self, counted: Totals) -> Totals:
        """Add what this instance counted since it last did; the deployment's totals after it."""
        async with self._pool.acquire() as conn:
            if counted == Totals():
                row = await conn.fetchrow(
                    "SELECT total_calls, total_failures, total_rejections FROM circuit_breakers WHERE name = $1",
                    self.name)
            else:
                row = await conn.fetchrow(
                    "UPDATE circuit_breakers SET total_calls = total_calls + $2,"
                    " total_failures = total_failures + $3, total_rejections = total_rejections + $4"
                    " WHERE name = $1 RETURNING total_calls, total_failures, total_rejections",
                    self.name, counted.calls, counted.failures, counted.rejections)
        if row is None:
            raise LookupError(f"no circuit breaker row {self.name!r}")
        return Totals(row["total_calls"], row["total_failures"], row["total_rejections"])

    async def heartbeat(self) -> int:
        """Say this instance is alive (re-listing it if it was pruned); returns the breaker's
        current version, so a lost announcement is noticed here at the latest."""
        async with self._pool.acquire() as conn:
            await instances.register(conn, self.instance_id, self._instance_name)
            version: int = await conn.fetchval("SELECT version FROM circuit_breakers WHERE name = $1", self.name)
        return version

    async def seen(self, version: int, recent_s: float) -> tuple[int, int]:
        """(instances that applied `version` or later, instances running): running means
        heartbeated within `recent_s`."""
        async with self._pool.acquire() as conn:
            return await instances.seen(conn, version, recent_s)

    async def leave(self) -> None:
        """A clean shutdown: this instance is no longer running."""
        async with self._pool.acquire() as conn:
            await instances.leave(conn, self.instance_id)
