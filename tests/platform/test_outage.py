"""Which errors mean "the database is away for now" (503) rather than a bug (500)."""

from __future__ import annotations

import asyncpg
import pytest

from portal.platform.database import is_outage


async def test_a_refused_database_socket_is_an_outage():
    with pytest.raises(OSError) as refused:
        await asyncpg.connect("postgresql://nobody@127.0.0.1:1/none", timeout=2)
    assert is_outage(refused.value)


def test_errors_outside_asyncpg_and_misuse_are_not_outages():
    assert not is_outage(FileNotFoundError("templates/missing.html"))
    assert not is_outage(asyncpg.InterfaceError("cannot perform operation: another operation is in progress"))
    assert is_outage(asyncpg.InterfaceError("connection is closed"))
    assert is_outage(asyncpg.AdminShutdownError("terminating connection due to administrator command"))
    assert not is_outage(asyncpg.UniqueViolationError("duplicate key"))
