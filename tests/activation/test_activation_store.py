"""The activation store: the idle-in-transaction limit is a bound parameter and holds for
the activation transaction only."""

import asyncpg

from portal.activation import store
from tests.activation.test_activation import partner, portal, portal_env, ready_salon  # noqa: F401 (fixtures)
from tests.helpers.database import run


def test_the_idle_limit_is_set_for_the_transaction_only(database_url):
    async def scenario():
        conn = await asyncpg.connect(database_url)
        try:
            before = await conn.fetchval("SHOW idle_in_transaction_session_timeout")
            async with conn.transaction():
                await store.limit_idle_in_transaction(conn, 17_000)
                inside = await conn.fetchval("SELECT current_setting('idle_in_transaction_session_timeout')")
            after = await conn.fetchval("SHOW idle_in_transaction_session_timeout")
        finally:
            await conn.close()
        return before, inside, after

    before, inside, after = run(scenario())
    assert inside == "17s" and after == before  # like SET LOCAL: gone with the transaction


def test_the_activation_transaction_runs_under_the_idle_limit(portal, partner, db):
    client, settings = portal  # YCLIENTS_TIMEOUT_S=2: the limit is the partner timeout + 15 s
    token = ready_salon(client, settings, db, market=partner[1])
    # Records the setting as the activation's own writes see it, inside its transaction.
    db.execute("""CREATE TABLE seen_idle (value text);
                  CREATE FUNCTION note_idle() RETURNS trigger LANGUAGE plpgsql AS $$
                  BEGIN INSERT INTO seen_idle VALUES (current_setting('idle_in_transaction_session_timeout'));
                  RETURN NEW; END $$;
                  CREATE TRIGGER note_idle BEFORE UPDATE ON salons FOR EACH ROW EXECUTE FUNCTION note_idle();""")
    r = client.post("/marketplace/activate", json={"token": token})
    assert r.status_code == 200, r.text
    assert [row["value"] for row in db.fetch("SELECT value FROM seen_idle")] == ["17s", "17s"]
