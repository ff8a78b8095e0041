"""Every route in the route table, fed generated bad input: no 5xx, no dropped connection.

The routes are read from the app itself (`app.routes`, Mounts included), so a route added
later is fuzzed without touching this file. Each route and method gets a fixed number of
generated requests (derandomized: the same requests on every run), each from one of four
callers, so the handlers behind the credentials are reached too: anonymous, an owner with
a landing session (or its Bearer token), a signed-in staff member, and the admin API key.

What is generated is the input the security review found 500s with: NUL bytes, non-ASCII
digits, integers beyond 64 bits, huge strings, lone surrogates, `1e400`/`Infinity`/`NaN`,
nesting thousands deep, wrong types; in path parameters, query strings, form and JSON
bodies and headers. The TestClient re-raises anything the app did not handle (on a real
server: a 500 or a cut connection), so both count as failures.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from portal.app import create_app
from portal.onboarding.landing import encode_user_data, sign_user_data
from portal.support import staff as staff_cookie
from tests.helpers.landing import land, land_for_token
from tests.helpers.staff import API_KEY, sign_in, staff_env

EXAMPLES_PER_ROUTE = 24
OWNER_SALON = 500001  # a demo salon: the sandbox pages know it too
OTHER_SALON = 500002
BASE = "http://127.0.0.1:8000"
GENEROUS = {name: "100000/minute" for name in (
    "ADMIN_RATE_LIMIT", "LOGIN_RATE_LIMIT", "LOGIN_USER_RATE_LIMIT", "LOGIN_USER_CLIENT_RATE_LIMIT",
    "OWNER_RATE_LIMIT", "WEBHOOK_RATE_LIMIT", "LANDING_RATE_LIMIT")}

# Text the review found 500s with, and its relatives; plus a few valid values so that the
# handlers get past their first check.
NASTY = ["\x00", "a\x00b", "²", "١٢٣", "𝟙𝟚", "¹", "Ⅻ", "0", "-1", "+1", " 1", "1 ", "1_000", "007",
         str(2**31), str(2**63 - 1), str(2**63), str(2**64), "9" * 40, "-" + "9" * 40, "1e400", "-1e400",
         "Infinity", "-Infinity", "NaN", "1.5", "0x10", "\ud800", "\udfff", "x\ud83d", "\u202e", "\ufeff",
         "%", "%00", "%zz", "../../etc/passwd", "..", ".", "<script>alert(1)</script>", "' OR 1=1 --",
         "{}", "[]", "null", "true", "", " ", "\n", "\r\n", "\t", "x" * 5000, "9" * 5000, "é" * 3000]
VALID = [str(OWNER_SALON), "500002", "123", "1", "disconnect", "restart", "retry", "uninstall", "freeze",
         "reset", "force_open", "down", "slow", "none", "fail", "hang", "already_installed", "ru", "en",
         "session.status", "WORKING", "79001234567", "+7 900 123-45-67"]
QUERY_KEYS = ["q", "page", "salon_id", "v", "user_data", "user_data_sign", "message", "status", "attention",
              "result", "count", "token", "lang", "next", "salon_ids", "application_id", "id"]
FORM_KEYS = ["reason", "username", "password", "phone", "code", "attempt", "action", "mode", "event",
             "copies", "lang", "next", "token", "salon_id"]
JSON_KEYS = ["token", "reason", "event", "session", "payload", "status", "me", "id", "salon_id",
             "salon_ids", "application_id", "partner_token", "api_key", "webhook_urls", "data", "name",
             "phone", "user_id", "redirect_url", "success"]
DEEP_JSON = [b"[" * 3000, b"{\"a\":" * 3000, b"[" * 3000 + b"]" * 3000, b"{\"token\": " + b"[" * 3000,
             b"{\"reason\": " + b"{\"a\": " * 2000]
RAW_JSON = [b"1e400", b"-1e400", b"Infinity",
            b"NaN", b"{\"id\": 1e400}", b"{\"reason\": \"\\ud800\"}", b"{\"reason\": \"a\\u0000b\"}",
            b"{\"token\": \"\\ud800\"}", b"{\"salon_id\": 99999999999999999999999}", b"\xff\xfe", b"",
            b"{\"token\": " + b"9" * 5000 + b"}", b"\"" + b"x" * 10000 + b"\"", b"{\"a\": NaN}", b"\x00"]
CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data",
                 "multipart/form-data; boundary=x", "text/plain", "application/json; charset=latin-1", None]

# The sharpest of them get a branch of their own, so every route sees them within a few examples.
SHARP = ["\x00", "²", str(2**64), "\ud800", "1e400", "9" * 40, "¹", "١٢٣", "-1"]
junk_text = st.one_of(st.sampled_from(SHARP), st.sampled_from(NASTY + VALID), st.text(max_size=20))
header_bytes = st.binary(max_size=80).map(lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F))
json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**30, 0, -1]),
    st.floats(), junk_text)
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(JSON_KEYS) | st.text(max_size=4), inner,
                                                 max_size=4)), max_leaves=10)


def _pct(value: str, safe: str = "") -> str:
    # Lone surrogates cannot be UTF-8 encoded strictly; sent as the bytes a client would send.
    return quote(value.encode("utf-8", "surrogatepass"), safe=safe)


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{_pct(k)}={_pct(v)}" for k, v in pairs)


def walk(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(path format, method) for every route, through Mounts (their own route tables, or a
    catch-all path for an app without one, like /static)."""
    for route in routes:
        if isinstance(route, Route):
            methods = set(route.methods or {"GET"})
            # Starlette adds HEAD to every GET route: the same handler, fuzzed once as GET.
            for method in sorted(methods - {"HEAD"} if "GET" in methods else methods):
                yield prefix + route.path_format, method
        elif isinstance(route, Mount):
            inner = list(route.routes)
            if inner:
                yield from walk(inner, prefix + route.path)
            else:
                for method in ("GET", "POST"):
                    yield prefix + route.path_format, method


PLACEHOLDER = re.compile(r"\{(\w+)(?::(\w+))?\}")


def _fill(path_format: str, values: list[str]) -> str:
    parts = iter(values)
    return PLACEHOLDER.sub(lambda m: _pct(next(parts), safe="/" if m.group(2) == "path" else ""), path_format)


@st.composite
def signed_landing(draw: st.DrawFn, partner_token: str) -> list[tuple[str, str]]:
    """A landing query whose `user_data` is correctly signed but carries junk: the signature
    passes, so what is inside must be checked."""
    user = draw(st.one_of(
        st.dictionaries(st.sampled_from(["id", "salon_id", "salon_ids", "name", "phone", "email", "salon_name"]),
                        json_value, max_size=5),
        json_value))
    bound = draw(st.booleans())
    if bound and isinstance(user, dict):  # names the salon the query names: the junk is read
        user["salon_id"] = OTHER_SALON
    raw = draw(st.one_of(st.just(json.dumps(user).encode()),
                         st.just(json.dumps(user, ensure_ascii=False).encode("utf-8", "surrogatepass")),
                         st.sampled_from(RAW_JSON + DEEP_JSON)))
    salon = str(OTHER_SALON) if bound else draw(junk_text)
    return [("salon_id", salon), ("user_data", encode_user_data(raw)),
            ("user_data_sign", sign_user_data(raw, partner_token))]


@st.composite
def yclients_shaped(draw: st.DrawFn, partner_token: str, app_id: int) -> dict[str, Any]:
    """A webhook body that passes YClients' authentication some of the time."""
    body: dict[str, Any] = {
        "partner_token": draw(st.one_of(st.just(partner_token), json_value)),
        "application_id": draw(st.one_of(st.just(app_id), json_value)),
        "salon_id": draw(st.one_of(st.sampled_from([OWNER_SALON, 1, 2**31 - 1]), json_value)),
        "event": draw(st.one_of(st.sampled_from(["uninstall", "freeze"]), junk_text)),
    }
    return body


@st.composite
def bad_request(draw: st.DrawFn, path_format: str, ctx: dict[str, Any]) -> dict[str, Any]:
    names = PLACEHOLDER.findall(path_format)
    path = _fill(path_format, [draw(junk_text) for _ in names])
    query = draw(st.one_of(
        # The parameters handlers read most, then any of them.
        st.lists(st.tuples(st.sampled_from(["q", "page", "salon_id", "v"]), junk_text), min_size=1, max_size=2),
        st.lists(st.tuples(st.sampled_from(QUERY_KEYS), junk_text), max_size=3),
        signed_landing(ctx["partner_token"])))
    kind = draw(st.sampled_from(["none", "form", "json", "shaped", "deep", "raw", "bytes"]))
    usual = {"form": "application/x-www-form-urlencoded", "bytes": "application/octet-stream"}.get(
        kind, "application/json")
    content_type = draw(st.one_of(st.just(usual), st.sampled_from(CONTENT_TYPES)))
    body: bytes | None = None
    if kind == "form":
        body = _query(draw(st.lists(st.tuples(st.sampled_from(FORM_KEYS), junk_text), max_size=4))).encode()
    elif kind == "json":
        top = draw(st.one_of(st.dictionaries(st.sampled_from(JSON_KEYS), json_value, max_size=5), json_value))
        body = json.dumps(top).encode()
    elif kind == "shaped":
        body = json.dumps(draw(yclients_shaped(ctx["partner_token"], ctx["app_id"]))).encode()
    elif kind == "deep":
        body = draw(st.sampled_from(DEEP_JSON))
    elif kind == "raw":
        body = draw(st.sampled_from(RAW_JSON))
    elif kind == "bytes":
        body = draw(st.binary(max_size=200))
    headers: dict[str, Any] = {}
    if content_type is not None and body is not None:
        headers["Content-Type"] = content_type
    for name, value in draw(st.lists(st.tuples(
            st.sampled_from(["Authorization", "X-API-Key", "HX-Request", "HX-Target", "Accept", "Accept-Language",
                             "X-Request-Id", "X-Forwarded-For", "Origin"]),
            st.one_of(header_bytes, st.sampled_from([b"true", b"application/json", b"Bearer", b"Bearer \x80",
                                                     b"Bearer " + b"x" * 3000, b"salon-table", b"null"]))),
            max_size=2)):
        headers[name] = value
    # Half the time the caller the route is for, so that its handler is reached.
    caller = draw(st.one_of(st.just(_natural_caller(path_format)),
                            st.sampled_from(["anonymous", "owner", "owner_bearer", "staff", "api_key"])))
    return {"path": path, "query": _query(query), "body": body, "headers": headers, "caller": caller}


def _natural_caller(path_format: str) -> str:
    if path_format.startswith("/marketplace/admin"):
        return "api_key"
    if path_format.startswith("/admin"):
        return "staff"
    if path_format.startswith(("/onboarding", "/marketplace/activate", "/marketplace/api", "/language")):
        return "owner"
    return "anonymous"


def _callers(client: TestClient, settings: Any) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """Each caller as (cookies, headers)."""
    token = land_for_token(client, settings.partner_token, salon_id=OWNER_SALON)
    client.cookies.clear()
    land(client, settings.partner_token, salon_id=OWNER_SALON)
    owner = dict(client.cookies)
    client.cookies.clear()
    sign_in(client)
    staff = {staff_cookie.COOKIE: client.cookies[staff_cookie.COOKIE]}
    client.cookies.clear()
    return {"anonymous": ({}, {}), "owner": (owner, {}), "owner_bearer": ({}, {"Authorization": f"Bearer {token}"}),
            "staff": (staff, {}), "api_key": ({}, {"X-API-Key": API_KEY})}


def _send(client: TestClient, method: str, req: dict[str, Any],
          callers: dict[str, tuple[dict[str, str], dict[str, str]]]) -> int:
    cookies, credential = callers[req["caller"]]
    client.cookies.clear()
    for name, value in cookies.items():
        client.cookies.set(name, value)
    url = req["path"] + (f"?{req['query']}" if req["query"] else "")
    headers = {**req["headers"], **credential}  # junk beside the credential, not instead of it
    return client.request(method, url, content=req["body"], headers=headers, follow_redirects=False).status_code


@pytest.fixture
def fuzz_app(make_settings):
    settings = make_settings(**staff_env(), **GENEROUS)
    with TestClient(create_app(settings), base_url=BASE) as client:
        yield client, settings


def test_no_route_answers_bad_input_with_a_5xx(fuzz_app):
    client, settings = fuzz_app
    callers = _callers(client, settings)
    ctx = {"partner_token": settings.partner_token, "app_id": settings.app_id}
    targets = list(walk(client.app.routes))  # type: ignore[attr-defined]
    assert any(p.startswith("/static/") for p, _ in targets) and any("/sandbox/api/" in p for p, _ in targets)
    failures: list[str] = []
    for path_format, method in targets:
        try:
            _probe(client, callers, ctx, path_format, method)()
        except Exception as exc:  # one failure, or a group of distinct ones
            for one in getattr(exc, "exceptions", [exc]):
                example = " | ".join(getattr(one, "__notes__", []))[:500]
                failures.append(f"{method} {path_format}: {str(one).splitlines()[0][:200]} -- {example}")
    assert not failures, "\n".join(failures)


def _probe(client: TestClient, callers: dict[str, tuple[dict[str, str], dict[str, str]]], ctx: dict[str, Any],
           path_format: str, method: str) -> Any:
    @hsettings(max_examples=EXAMPLES_PER_ROUTE, deadline=None, derandomize=True, database=None,
               suppress_health_check=list(HealthCheck), print_blob=False)
    @given(req=bad_request(path_format, ctx))
    def probe(req: dict[str, Any]) -> None:
        try:
            status = _send(client, method, req, callers)
        except Exception as exc:  # the app did not handle it: a 500 or a cut connection
            raise AssertionError(f"{type(exc).__name__}: {str(exc)[:200]}") from exc
        assert status < 500, f"{status}"

    return probe
