"""The command line: hash-password and migrate, as an operator runs them."""

import subprocess
import sys

from portal.support.staff import verify_password


def run_portal(*args, stdin="", env=None):
    return subprocess.run([sys.executable, "-m", "portal", *args], input=stdin, capture_output=True, text=True,
                          timeout=60, env=env)


def test_hash_password_makes_a_hash_that_verifies():
    done = run_portal("hash-password", stdin="a long enough password\n")
    assert done.returncode == 0
    stored = done.stdout.strip()
    assert stored.startswith("scrypt$") and "a long enough password" not in stored
    assert verify_password("a long enough password", stored)
    assert not verify_password("another password", stored)


def test_hash_password_refuses_a_short_one():
    done = run_portal("hash-password", stdin="short\n")
    assert done.returncode == 2 and "10 characters" in done.stderr


def test_migrate_applies_and_a_bad_setting_is_one_clear_line(database_url, tmp_path, db):
    import os

    env = {**os.environ, "DATABASE_URL": database_url, "PORTAL_DATA_DIR": str(tmp_path)}
    # Undo 004 (the webhook table) and every migration after it, as if never applied.
    db.execute("DELETE FROM schema_migrations WHERE version >= '004'")
    db.execute("DROP VIEW salon_links, activation_checks, activation_intent_salons, salon_events,"  # 019
               " salon_overview")
    db.execute("DROP TABLE webhook_deliveries; ALTER TABLE salons DROP COLUMN gateway_cleanup_pending_since")
    db.execute("DROP INDEX whatsapp_links_waiting_idx")  # 008 (012 dropped the rest of it)
    db.execute("DROP TRIGGER whatsapp_links_version ON whatsapp_links;"  # 006
               " DROP TRIGGER whatsapp_links_announce ON whatsapp_links;"
               " DROP FUNCTION whatsapp_links_bump_version(); DROP FUNCTION whatsapp_links_announce();"
               " ALTER TABLE whatsapp_links DROP COLUMN version")
    db.execute("DROP TABLE circuit_breakers, portal_instances")  # 009
    db.execute("DROP TRIGGER salons_uninstall_clock ON salons; DROP FUNCTION salons_uninstall_clock();"  # 010
               " ALTER TABLE salons DROP COLUMN uninstalled_at, DROP COLUMN personal_data_erased_at")
    done = run_portal("migrate", env=env)
    assert done.returncode == 0 and "migrations applied" in done.stdout
    assert db.fetchval("SELECT to_regclass('webhook_deliveries') IS NOT NULL")
    bad = run_portal("migrate", env={**env, "YCLIENTS_TIMEOUT_S": "soon"})
    assert bad.returncode == 2
    assert bad.stderr.strip() == "portal: configuration error: YCLIENTS_TIMEOUT_S must be a float, got 'soon'"
