"""Staff credentials for tests."""

from functools import lru_cache

from portal.support.staff import hash_password

USERNAME = "support"
PASSWORD = "correct horse battery staple"
API_KEY = "admin-api-key-for-tests-0123456789"


@lru_cache(maxsize=1)
def password_hash() -> str:
    return hash_password(PASSWORD)


def staff_env() -> dict:
    return {"ADMIN_USERNAME": USERNAME, "ADMIN_PASSWORD_HASH": password_hash(), "ADMIN_API_KEY": API_KEY}


def sign_in(client) -> None:
    r = client.post("/admin/login", data={"username": USERNAME, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 303, r.text
