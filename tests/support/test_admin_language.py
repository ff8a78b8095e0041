"""The support dashboard speaks Russian and English through the owner pages' i18n: Russian for
`Accept-Language: ru`, English for en (and for a client that names no language we speak),
the visible switch on every dashboard page; no English sentence is left on a Russian page."""

import re

import pytest
from starlette.testclient import TestClient

from portal.app import create_app
from tests.helpers.landing import land, land_for_token
from tests.helpers.staff import PASSWORD, USERNAME, sign_in, staff_env

RU = {"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}
EN = {"Accept-Language": "en-US,en;q=0.9"}

# Sentences and labels of each page, (Russian, English): the Russian must be there and the
# English must not, and the other way round.
PAGES = {
    "/admin/login": [("Вход для поддержки", "Support sign-in"), ("Имя пользователя", "User name"),
                     ("Пароль", "Password")],
    "/admin": [("Салоны по статусам", "Salons by status"), ("Воронка", "Funnel"),
               ("Последние 7 дней", "Last 7 days"), ("Незавершённые активации", "Unfinished activations"),
               ("Требуют внимания", "Needs attention"), ("QR-код истёк", "QR code expired"),
               ("ждёт WhatsApp", "pending whatsapp"), ("Журнал действий", "Audit log")],
    "/admin/salons": [("Все статусы", "All statuses"), ("требуют внимания", "needs attention"),
                      ("Последнее событие", "Last event"), ("Салонов: 2", "2 salons"), ("код истёк", "expired"),
                      ("показан QR-код", "QR code shown")],
    "/admin/salons/500001": [("Интеграция", "Integration"), ("Требует внимания: QR-код истёк",
                                                             "Needs attention: QR code expired"),
                             ("задан (хранится только его хеш)", "set (only its hash is kept)"), ("История", "Timeline"),
                             ("пользователь YClients 5000011", "YClients user 5000011"),
                             ("Отключить WhatsApp", "Disconnect WhatsApp"),
                             ("Перезапустить сессию WhatsApp", "Restart the WhatsApp session"),
                             # the timeline in words: event types, payload fields, coded values
                             ("показан QR-код", "QR code shown"), ("владелец пришёл из YClients", "owner arrived from YClients"),
                             ("подпись YClients: да", "signed by YClients: yes"), ("было: не начато", "was: idle")],
    "/admin/salons/500001/disconnect": [("Причина (сохраняется в журнале действий)",
                                         "Reason (kept in the audit log)"), ("Отмена", "Cancel")],
    "/admin/system": [("Предохранитель QR-кодов", "QR circuit breaker"), ("Сбросить (закрыть)", "Reset (close)"),
                      ("из запущенных экземпляров: 1", "instance running"), ("Вебхуки YClients", "YClients webhooks"),
                      ("Не завершено доставок: 0.", "0 deliveries not finished yet."),
                      ("Пул соединений с базой", "Database pool"), ("Внешние сервисы", "Outside services"),
                      ("Переключатели", "Feature flags"), ("закрыт — QR-коды выдаются", "closed — QR codes are served")],
    "/admin/audit": [("Журнал действий", "Audit log"), ("Результат", "Result"), ("Выйти (support)", "Sign out"),
                     ("вход", "sign-in"), ("выполнено", "done")],
}
# Words of the old English-only dashboard that must not appear on any Russian page.
ENGLISH_LEFT = ("Sign out", "Overview", "Salons", "Needs attention", "Last error", "Nothing", "Timeline",
                "Landed", "Activated", "Reset (close)", "deliveries", "Support", "Salon portal", "Filter",
                "Version",
                # codes the dashboard once showed as stored
                "qr shown", "qr_shown", "landed", "True", "False", "None", "closed", "login", "signed:")


@pytest.fixture
def staff_client(make_settings, db):
    settings = make_settings(**staff_env())
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        land_for_token(client, settings.partner_token, salon_id=500002)
        land(client, settings.partner_token, salon_id=500001)
        client.post("/onboarding/whatsapp/start", headers={"HX-Request": "true"})
        # Salon 500001's QR expired: it needs attention, with a reason and a link status to translate.
        db.execute("UPDATE whatsapp_links SET status = 'expired', qr = NULL")
        db.execute("UPDATE salons SET api_key_hash = 'x', owner_user_id = 5000011 WHERE yclients_salon_id = 500001")
        sign_in(client)
        yield client


def _visible(html: str) -> str:
    """The page's text as a person reads it: no tags, attributes, scripts or comments."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    html = re.sub(r"<!--.*?-->", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def _get(client: TestClient, path: str, headers: dict) -> str:
    if path == "/admin/login":  # the sign-in page is for the signed-out
        saved = dict(client.cookies)
        client.cookies.clear()
        response = client.get(path, headers=headers)
        client.cookies.update(saved)
    else:
        response = client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.text)
    return response.text


@pytest.mark.parametrize("path", list(PAGES))
def test_dashboard_reads_in_russian_for_accept_language_ru(staff_client, path):
    html = _get(staff_client, path, RU)
    text = _visible(html)
    assert '<html lang="ru">' in html
    for russian, english in PAGES[path]:
        assert russian in text, (path, russian)
        assert english not in text, (path, english)
    for word in ENGLISH_LEFT:
        assert word not in text, (path, word)
    assert 'data-testid="lang-switch">English<' in html


@pytest.mark.parametrize("path", list(PAGES))
def test_dashboard_reads_in_english_for_accept_language_en(staff_client, path):
    html = _get(staff_client, path, EN)
    text = _visible(html)
    assert '<html lang="en">' in html
    for russian, english in PAGES[path]:
        assert english in text, (path, english)
        assert russian not in text, (path, russian)
    assert not re.search("[А-Яа-яЁё]", text.replace("Русский", "").replace("Анна", "").replace("Лилия", "")), path


def test_no_language_named_keeps_english_on_the_dashboard_and_russian_for_owners(staff_client):
    assert '<html lang="en">' in staff_client.get("/admin", headers={"Accept-Language": "de"}).text
    assert '<html lang="ru">' in staff_client.get("/onboarding", headers={"Accept-Language": "de"}).text


def test_the_visible_switch_changes_the_dashboard_language_and_comes_back(staff_client):
    html = staff_client.get("/admin/system", headers=EN).text
    assert 'name="next" value="/admin/system"' in html
    switched = staff_client.post("/language", data={"lang": "ru", "next": "/admin/system"}, headers=EN,
                                 follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/admin/system"
    # The cookie wins over the browser's English.
    assert "Предохранитель QR-кодов" in staff_client.get("/admin/system", headers=EN).text


def test_messages_built_in_python_follow_the_language(staff_client):
    wrong = staff_client.post("/admin/login", data={"username": USERNAME, "password": PASSWORD + "x"}, headers=RU)
    assert wrong.status_code == 401 and "Неверное имя пользователя или пароль." in wrong.text
    refused = staff_client.post("/admin/salons/500001/disconnect", data={"reason": " "}, headers=RU)
    assert refused.status_code == 422 and "Укажите причину" in refused.text
    retry = staff_client.post("/admin/salons/500001/retry", headers=RU, follow_redirects=False)
    page = staff_client.get(retry.headers["location"], headers=RU).text
    assert "Повторить можно только неудавшуюся активацию." in page
    reset = staff_client.post("/admin/system/breaker", data={"action": "reset"}, headers=RU, follow_redirects=False)
    page = staff_client.get(reset.headers["location"], headers=RU).text
    assert "Предохранитель сброшен: закрыт. Видят 1 из запущенных экземпляров: 1." in page
    bad = staff_client.get("/admin/salons?status=nonsense", headers=RU)
    assert bad.status_code == 400 and "Статус должен быть одним из" in bad.text
    # The admin API (JSON for scripts) keeps its English sentences.
    assert "Salons" in staff_client.get("/admin/salons", headers=EN).text
