"""Every sentence a person reads, in Russian and English, and how a language is chosen.

Salon owners mostly read Russian, so Russian is the default. `Accept-Language` picks, and
the visible switch (a `lang` cookie) overrides. Templates call `t("key", name=...)`.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"
LANG_COOKIE = "lang"

MESSAGES: dict[str, tuple[str, str]] = {
    # key: (ru, en)
    "app.title": ("Подключение WhatsApp к записи", "Connect WhatsApp to bookings"),
    "app.lang_switch": ("English", "Русский"),
    "error.title": ("Что-то пошло не так", "Something went wrong"),
    "error.next_step_marketplace": (
        "Откройте приложение в маркетплейсе YClients ещё раз — мы начнём подключение заново.",
        "Open the app in the YClients marketplace again and we will start over.",
    ),
    "error.salon_id_missing": ("В ссылке нет номера филиала.", "The link has no branch number."),
    "error.salon_id_invalid": ("Номер филиала в ссылке неверный.", "The branch number in the link is not valid."),
    "error.signature_missing": (
        "Ссылка не подписана YClients, поэтому мы не можем ей доверять.",
        "The link is not signed by YClients, so we cannot trust it.",
    ),
    "error.signature_invalid": (
        "Подпись ссылки не совпала — возможно, ссылку изменили.",
        "The link's signature does not match; the link may have been changed.",
    ),
    "error.user_data_corrupt": ("Данные пользователя в ссылке повреждены.", "The user details in the link are damaged."),
    "error.salon_mismatch": (
        "Ссылка выдана для другого филиала — возможно, её изменили.",
        "The link was issued for another branch; it may have been changed.",
    ),
    "error.landing_link_expired": (
        "Эта ссылка из маркетплейса больше не действует.",
        "This marketplace link is no longer valid.",
    ),
    "error.not_configured": (
        "Подключение временно недоступно: приложение ещё не настроено. Попробуйте позже.",
        "Connecting is unavailable for now: the app is not configured yet. Please try later.",
    ),
    "error.rate_limited": (
        "Слишком много запросов подряд. Подождите минуту и попробуйте снова.",
        "Too many requests in a row. Wait a minute and try again.",
    ),
    "error.reload": ("Обновить страницу", "Reload the page"),
    "error.not_found": ("Такой страницы нет.", "There is no such page."),
    "error.too_large": ("Запрос слишком большой.", "The request is too large."),
    "error.body_timeout": ("Запрос пришёл не целиком. Попробуйте ещё раз.",
                           "The request did not arrive in full. Please try again."),
    "error.cross_site": (
        "Запрос пришёл с другого сайта и был отклонён.",
        "The request came from another site and was refused.",
    ),
    "error.internal": (
        "У нас что-то сломалось. Мы уже знаем; попробуйте ещё раз через минуту.",
        "Something broke on our side. We know about it; please try again in a minute.",
    ),
    "onboarding.heading": ("Подключение WhatsApp: {name}", "Connecting WhatsApp: {name}"),
    "onboarding.heading_unnamed": ("Подключение WhatsApp для филиала {id}", "Connecting WhatsApp for branch {id}"),
    "onboarding.intro": (
        "Три шага: привяжите WhatsApp салона, включите интеграцию — и ассистент начнёт записывать клиентов.",
        "Three steps: link the salon's WhatsApp, switch the integration on, and the assistant starts taking bookings.",
    ),
    "onboarding.step_whatsapp": ("WhatsApp", "WhatsApp"),
    "onboarding.step_activation": ("Активация", "Activation"),
    "onboarding.step_done": ("Готово", "Done"),
    "onboarding.whatsapp_next": (
        "Сейчас: привяжите номер WhatsApp салона к ассистенту.",
        "Now: link the salon's WhatsApp number to the assistant.",
    ),
    "onboarding.activation_next": (
        "Потом: мы включим интеграцию в YClients — это займёт несколько секунд.",
        "Then: we switch the integration on in YClients; it takes a few seconds.",
    ),
    "onboarding.done_next": (
        "В конце вы вернётесь в YClients, а ассистент начнёт отвечать клиентам.",
        "Finally you return to YClients and the assistant starts answering clients.",
    ),
    "onboarding.whatsapp_done": ("Готово: WhatsApp салона подключён.", "Done: the salon's WhatsApp is linked."),
    "onboarding.activation_now": (
        "Сейчас: включите интеграцию в YClients — это займёт несколько секунд.",
        "Now: switch the integration on in YClients; it takes a few seconds.",
    ),
    "onboarding.activation_done": ("Готово: интеграция с YClients включена.", "Done: the YClients integration is on."),
    "salon.heading": ("Салон «{name}»", "Salon “{name}”"),
    "salon.heading_unnamed": ("Филиал {id}", "Branch {id}"),
    "salon.integration_on": ("Интеграция с YClients включена.", "The integration with YClients is on."),
    "salon.working": (
        "Ассистент работает: он отвечает клиентам салона в WhatsApp и записывает их.",
        "The assistant is working: it answers the salon's clients in WhatsApp and books them.",
    ),
    "salon.lost": (
        "WhatsApp отключён: ассистент не может отвечать клиентам, пока вы не подключите номер снова.",
        "WhatsApp disconnected: the assistant cannot answer clients until you link the number again.",
    ),
    "salon.relink_next": (
        "Получите новый QR-код и отсканируйте его телефоном салона — можно тот же номер или другой.",
        "Get a new QR code and scan it with the salon's phone: the same number or another one.",
    ),
    "salon.since": ("Подключён с {time}.", "Connected since {time}."),
    "salon.relink": ("Подключить WhatsApp заново", "Relink WhatsApp"),
    "salon.disconnect": ("Отключить WhatsApp", "Disconnect WhatsApp"),
    "salon.relink_confirm_title": ("Подключить WhatsApp заново?", "Relink WhatsApp?"),
    "salon.relink_confirm": (
        "Текущий номер отключится от ассистента, и мы сразу покажем новый QR-код. Пока вы его не отсканируете, ассистент не отвечает клиентам. Интеграция с YClients останется включённой.",
        "The current number is unlinked from the assistant and a new QR code appears at once. Until you scan it, the assistant does not answer clients. The YClients integration stays on.",
    ),
    "salon.relink_yes": ("Да, показать новый QR-код", "Yes, show a new QR code"),
    "salon.disconnect_confirm_title": ("Отключить WhatsApp?", "Disconnect WhatsApp?"),
    "salon.disconnect_confirm": (
        "Ассистент перестанет отвечать клиентам в WhatsApp, пока вы не подключите номер снова. Интеграция с YClients останется включённой.",
        "The assistant stops answering clients in WhatsApp until you link a number again. The YClients integration stays on.",
    ),
    "salon.disconnect_yes": ("Да, отключить", "Yes, disconnect"),
    "salon.cancel": ("Отмена", "Cancel"),
    "onboarding.no_session_title": ("Начните из YClients", "Start from YClients"),
    "onboarding.no_session": (
        "Эта страница открывается из маркетплейса YClients. Откройте YClients → Маркетплейс → наше приложение → «Подключить». Ссылка действует один час.",
        "This page opens from the YClients marketplace. Open YClients → Marketplace → our app → “Connect”. The link works for one hour.",
    ),
    "onboarding.session_expires": ("Ссылка действует до {time}.", "This link works until {time}."),
    "whatsapp.preparing": ("Готовим код для подключения…", "Preparing your link code…"),
    "whatsapp.preparing_hint": ("Это занимает несколько секунд.", "This takes a few seconds."),
    "whatsapp.show_qr": ("Показать QR-код", "Show the QR code"),
    "whatsapp.refresh": ("Обновить страницу", "Refresh the page"),
    "whatsapp.scan_title": ("Отсканируйте QR-код телефоном салона", "Scan the QR code with the salon's phone"),
    "whatsapp.scan_steps": (
        "Откройте WhatsApp → Настройки → Связанные устройства → Привязка устройства и наведите камеру на код.",
        "Open WhatsApp → Settings → Linked devices → Link a device, and point the camera at the code.",
    ),
    "whatsapp.qr_refreshes": ("Код обновляется сам — держите страницу открытой.", "The code refreshes by itself; keep this page open."),
    "whatsapp.linking": ("Телефон отсканировал код. Секунду, завершаем подключение…", "The phone scanned the code. Hold on, finishing the link…"),
    "whatsapp.connected": ("WhatsApp подключён: {phone}", "WhatsApp is connected: {phone}"),
    "whatsapp.connected_next": ("Дальше — активация интеграции.", "Next: switch the integration on."),
    "whatsapp.next": ("Далее → активация", "Next → activation"),
    "whatsapp.expired": ("Срок действия кода истёк.", "The code expired."),
    "whatsapp.new_code": ("Получить новый код", "Get a new code"),
    "whatsapp.failed": ("Не получилось подготовить подключение WhatsApp.", "We could not prepare the WhatsApp link."),
    "whatsapp.try_again": ("Попробовать ещё раз", "Try again"),
    "whatsapp.logged_out": ("WhatsApp отключён от ассистента.", "WhatsApp was disconnected from the assistant."),
    "whatsapp.reconnect": ("Подключить снова", "Reconnect"),
    "whatsapp.busy_title": ("Сервис WhatsApp сейчас перегружен", "WhatsApp connection is busy right now"),
    "whatsapp.busy_retry": ("Попробуем снова автоматически через", "We will try again automatically in"),
    "whatsapp.seconds": ("с", "s"),
    "whatsapp.problem_gateway": (
        "Сервис WhatsApp не ответил. Обычно это проходит за минуту.",
        "The WhatsApp service did not answer. This usually passes within a minute.",
    ),
    "whatsapp.problem_pairing_state": (
        "Код по номеру сейчас нельзя получить — получите новый QR-код и попробуйте снова.",
        "A code by phone number cannot be issued right now; get a new QR code and try again.",
    ),
    "whatsapp.phone_title": ("Подключить по номеру телефона", "Link with phone number instead"),
    "whatsapp.phone_hint": (
        "Удобно, если вы открыли эту страницу на том же телефоне, где WhatsApp салона.",
        "Handy when this page is open on the same phone as the salon's WhatsApp.",
    ),
    "whatsapp.phone_label": ("Номер WhatsApp салона", "The salon's WhatsApp number"),
    "whatsapp.phone_submit": ("Получить код", "Get a code"),
    "whatsapp.phone_invalid": (
        "Введите номер целиком, с кодом страны, например +7 916 123-45-67.",
        "Enter the whole number with the country code, e.g. +7 916 123-45-67.",
    ),
    "whatsapp.pairing_title": ("Ваш код подключения", "Your link code"),
    "whatsapp.pairing_step1": ("Откройте WhatsApp на телефоне салона.", "Open WhatsApp on the salon's phone."),
    "whatsapp.pairing_step2": ("Настройки → Связанные устройства → Привязка устройства.", "Settings → Linked devices → Link a device."),
    "whatsapp.pairing_step3": ("Нажмите «Связать по номеру телефона».", "Tap “Link with phone number instead”."),
    "whatsapp.pairing_step4": ("Введите этот код.", "Enter this code."),
    "whatsapp.pairing_expires": ("Код действует ещё около {minutes} мин.", "The code works for about {minutes} more min."),
    "activation.waiting_whatsapp": ("Сначала подключите WhatsApp — затем здесь появится кнопка активации.", "Link WhatsApp first; the activation button appears here then."),
    "activation.ready": ("WhatsApp подключён. Осталось включить интеграцию с YClients.", "WhatsApp is linked. One step left: switch the YClients integration on."),
    "activation.button": ("Активировать", "Activate"),
    "activation.running": ("Включаем интеграцию…", "Switching the integration on…"),
    "activation.in_progress": ("Активация уже идёт. Подождите несколько секунд — мы проверим снова.", "Activation is already in progress. Give it a few seconds; we will check again."),
    "activation.done": ("Интеграция включена. Ассистент уже работает.", "The integration is on. The assistant is at work."),
    "activation.back_to_yclients": ("Вернуться в YClients", "Back to YClients"),
    "activation.not_found": ("Мы не нашли ваш салон. Откройте приложение в YClients ещё раз.", "We could not find your salon. Open the app from YClients again."),
    "activation.whatsapp_first": ("Сначала подключите WhatsApp.", "Link WhatsApp first."),
    "activation.expired": (
        "С момента установки прошло больше часа, и YClients больше не ждёт подключения. Начните заново из маркетплейса.",
        "More than an hour passed since the install, so YClients no longer waits for it. Start again from the marketplace.",
    ),
    "activation.busy": ("Сейчас много подключений. Попробуйте через пару секунд.", "Many activations are running. Try again in a couple of seconds."),
    "activation.database": ("Нас ненадолго прервали. Нажмите «Попробовать ещё раз».", "We were interrupted for a moment. Press Try again."),
    "activation.partner_failed": ("YClients не принял подключение. Попробуйте ещё раз через минуту.", "YClients did not accept the connection. Try again in a minute."),
    "activation.partner_timeout": ("YClients слишком долго не отвечает. Попробуйте ещё раз через минуту.", "YClients is taking too long to answer. Try again in a minute."),
    "activation.partner_unreachable": ("Не удаётся связаться с YClients. Попробуйте ещё раз через минуту.", "We cannot reach YClients. Try again in a minute."),
    "activation.partner_config": (
        "Подключение временно недоступно из-за настройки на нашей стороне. Мы уже знаем и исправляем.",
        "Connecting is unavailable because of a setting on our side. We know and are fixing it.",
    ),
    "activation.partner_already_installed": (
        "YClients считает, что приложение уже установлено. Удалите его в маркетплейсе YClients и установите снова.",
        "YClients says the app is already installed. Remove it in the YClients marketplace and install it again.",
    ),
    "activation.session_over": ("Сессия подключения закончилась. Откройте приложение в YClients ещё раз.", "Your onboarding session ended. Open the app from YClients again."),
    "sandbox.banner": (
        "ПЕСОЧНИЦА: это демонстрационная замена маркетплейса YClients, а не настоящий YClients.",
        "SANDBOX: a demo stand-in for the YClients marketplace, not the real YClients.",
    ),
    "sandbox.title": ("Маркетплейс YClients (песочница)", "YClients marketplace (sandbox)"),
    "sandbox.intro": (
        "Выберите демо-салон и нажмите «Установить» — вы попадёте на портал так же, как из настоящего YClients.",
        "Pick a demo salon and press Install: you reach the portal just as you would from the real YClients.",
    ),
    "sandbox.install": ("Установить", "Install"),
    "sandbox.installed_title": ("Приложение установлено", "App installed"),
    "sandbox.installed": (
        "YClients принял подключение филиала {id}. В настоящем YClients здесь открылась бы страница приложения.",
        "YClients accepted the connection of branch {id}. The real YClients would show the app's page here.",
    ),
    "sandbox.back": ("Назад в песочницу", "Back to the sandbox"),
    "sandbox.simulator_title": ("Симулятор WhatsApp", "WhatsApp simulator"),
    "sandbox.simulator_intro": (
        "Здесь вы играете роль телефона салона и самого шлюза WhatsApp.",
        "Here you play the salon's phone and the WhatsApp gateway itself.",
    ),
    "sandbox.scan": ("Отсканировать QR телефоном", "Scan the QR with phone"),
    "sandbox.enter_code": ("Ввести код на телефоне", "Enter the code on the phone"),
    "sandbox.logout": (
        "Выйти из сессии на шлюзе (телефон отвязал устройство)",
        "Log the session out at the gateway (the phone unlinked the device)",
    ),
    "sandbox.gateway_mode": ("Шлюз сейчас: {mode}", "Gateway now: {mode}"),
    "sandbox.fault_down": ("Сломать шлюз", "Make the gateway fail"),
    "sandbox.fault_slow": ("Подвесить шлюз", "Make the gateway hang"),
    "sandbox.fault_none": ("Починить шлюз", "Make the gateway recover"),
    "sandbox.simulator_off": ("Симулятор выключен: портал работает с настоящим шлюзом.", "The simulator is off: the portal uses a real gateway."),
    "sandbox.done": ("Готово.", "Done."),
    "sandbox.webhooks_title": ("Вебхуки YClients", "YClients webhooks"),
    "sandbox.webhooks_intro": (
        "Что пришлёт YClients, если владелец удалит или заморозит приложение.",
        "What YClients sends when the owner removes or freezes the app.",
    ),
    "sandbox.uninstall": ("Удалить приложение", "Uninstall"),
    "sandbox.freeze": ("Заморозить", "Freeze"),
    "sandbox.uninstall_twice": ("Удалить (доставка дважды)", "Uninstall (delivered twice)"),
    "sandbox.partner_title": ("Партнёрский API YClients", "YClients partner API"),
    "sandbox.partner_mode": ("Ответ на установку: {mode}", "Install answer: {mode}"),
    "sandbox.partner_none": ("Как обычно (301)", "As usual (301)"),
    "sandbox.partner_fail": ("Ошибка 500", "Fail with 500"),
    "sandbox.partner_hang": ("Зависнуть", "Hang"),
    "sandbox.partner_already_installed": ("«Уже установлено»", "“Already installed”"),
    "sandbox.refused": ("Не вышло: {reason}", "Refused: {reason}"),
    # The support dashboard (/admin).
    "admin.support": ("Поддержка", "Support"),
    "admin.portal": ("Портал салонов", "Salon portal"),
    "admin.brand": ("Портал салонов · Поддержка", "Salon portal · Support"),
    "admin.sandbox": ("ПЕСОЧНИЦА: демонстрационные данные, не рабочие.", "SANDBOX: demo data, not production."),
    "admin.nav_overview": ("Обзор", "Overview"),
    "admin.nav_salons": ("Салоны", "Salons"),
    "admin.nav_system": ("Система", "System"),
    "admin.nav_audit": ("Журнал действий", "Audit log"),
    "admin.sign_out": ("Выйти ({name})", "Sign out ({name})"),
    "admin.sign_in": ("Войти", "Sign in"),
    "admin.login_title": ("Вход для поддержки", "Support sign-in"),
    "admin.username": ("Имя пользователя", "User name"),
    "admin.password": ("Пароль", "Password"),
    "admin.login_wrong": ("Неверное имя пользователя или пароль.", "Wrong user name or password."),
    "admin.login_limited": ("Слишком много попыток. Подождите минуту и попробуйте снова.",
                            "Too many attempts. Wait a minute and try again."),
    "admin.not_found_title": ("Не найдено", "Not found"),
    "admin.not_found": ("Нет такого салона или действия.", "No such salon or action."),
    "admin.all_salons": ("Все салоны", "All salons"),
    "admin.audit_when": ("Когда", "When"),
    "admin.audit_who": ("Кто", "Who"),
    "admin.audit_what": ("Что", "What"),
    "admin.audit_target": ("Над чем", "Target"),
    "admin.audit_result": ("Результат", "Result"),
    "admin.audit_detail": ("Подробности", "Detail"),
    "admin.nothing_yet": ("Пока ничего.", "Nothing yet."),
    "admin.salon": ("Салон", "Salon"),
    "admin.reason_label": ("Причина (сохраняется в журнале действий)", "Reason (kept in the audit log)"),
    "admin.confirm_yes": ("Да: {action}", "Yes, {action}"),
    "admin.cancel": ("Отмена", "Cancel"),
    "admin.reason_required": ("Укажите причину: от 1 до 500 символов текста.", "Give a reason: 1-500 characters of text."),
    "admin.by_status": ("Салоны по статусам", "Salons by status"),
    "admin.funnel": ("Воронка", "Funnel"),
    "admin.funnel_landed": ("Зашли", "Landed"),
    "admin.funnel_qr_shown": ("Увидели QR", "QR shown"),
    "admin.funnel_linked": ("Привязали", "Linked"),
    "admin.funnel_active": ("Активны", "Active"),
    "admin.today": ("Сегодня", "Today"),
    "admin.last_7_days": ("Последние 7 дней", "Last 7 days"),
    "admin.foreign_title": ("Установлено в YClients, но не этим порталом", "Installed in YClients, not by this portal"),
    "admin.foreign_explain": (
        "YClients сообщает, что наше приложение установлено в этих салонах, но этот портал установку не запускал"
        " (другая система или другое развёртывание с нашим партнёрским токеном). Владельцу сказали, что приложение"
        " уже установлено.",
        "YClients reports our app installed in these salons, but this portal never attempted the install (another"
        " system, or another deployment with our partner token). The owner was told the app is already installed.",
    ),
    "admin.detected": ("Обнаружено", "Detected"),
    "admin.unfinished_title": ("Незавершённые активации", "Unfinished activations"),
    "admin.unfinished_explain": (
        "Отправлены в YClients, результат пока неизвестен; фоновый обработчик спросит YClients и завершит или отпустит их.",
        "Sent to YClients, outcome not known yet; the worker asks YClients and completes or releases them.",
    ),
    "admin.generation": ("Поколение", "Generation"),
    "admin.attempts": ("Попытки", "Attempts"),
    "admin.started": ("Начата", "Started"),
    "admin.status": ("Статус", "Status"),
    "admin.last_error": ("Последняя ошибка", "Last error"),
    "admin.none": ("Нет.", "None."),
    "admin.attention_title": ("Требуют внимания", "Needs attention"),
    "admin.why": ("Почему", "Why"),
    "admin.nothing_stuck": ("Ничего не застряло.", "Nothing is stuck."),
    "admin.salon_title": ("Салон {id}", "Salon {id}"),
    "admin.needs_attention": ("Требует внимания: {why}", "Needs attention: {why}"),
    "admin.integration": ("Интеграция", "Integration"),
    "admin.landed": ("Зашёл", "Landed"),
    "admin.landing": ("Ссылка входа", "Landing"),
    "admin.landing_bound": ("привязана: подписанные данные назвали этот салон",
                            "bound: the signed data named this salon"),
    "admin.landing_unbound": ("не привязана: подписанные данные не назвали салон, его назвала только ссылка",
                              "not bound: the signed data named no salon, only the link did"),
    "admin.activated": ("Активирован", "Activated"),
    "admin.api_key": ("API-ключ", "API key"),
    "admin.api_key_set": ("задан (хранится только его хеш)", "set (only its hash is kept)"),
    "admin.api_key_not_set": ("не задан", "not set"),
    "admin.timeline": ("История", "Timeline"),
    "admin.no_events": ("Событий пока нет.", "No events yet."),
    "admin.all_statuses": ("Все статусы", "All statuses"),
    "admin.search": ("поиск", "search"),
    "admin.search_placeholder": ("Номер в YClients или название", "YClients id or name"),
    "admin.attention_only": ("требуют внимания", "needs attention"),
    "admin.filter": ("Показать", "Filter"),
    "admin.filter_bad_status": ("Статус должен быть одним из: {statuses}", "status must be one of {statuses}"),
    "admin.filter_bad_page": ("Номер страницы должен быть положительным числом", "page must be a positive number"),
    "admin.salon_count_one": ("Салонов: {n}", "{n} salon"),
    "admin.salon_count": ("Салонов: {n}", "{n} salons"),
    "admin.yclients_id": ("Номер в YClients", "YClients id"),
    "admin.name": ("Название", "Name"),
    "admin.phone": ("Телефон", "Phone"),
    "admin.last_event": ("Последнее событие", "Last event"),
    "admin.no_match": ("Подходящих салонов нет.", "No salons match."),
    "admin.previous": ("← Назад", "← Previous"),
    "admin.next": ("Вперёд →", "Next →"),
    "admin.page_of": ("Страница {page} из {pages}", "Page {page} of {pages}"),
    "admin.breaker_title": ("Предохранитель QR-кодов", "QR circuit breaker"),
    "admin.breaker_state": ("Состояние:", "State:"),
    "admin.breaker_forced": ("(принудительно)", "(forced)"),
    "admin.breaker_next_attempt": ("следующая попытка через {s} с", "next attempt in {s} s"),
    "admin.breaker_seen_one": (
        "Один предохранитель на все экземпляры: версию {version} видят {seen} из запущенных экземпляров: {running}"
        " (этот: {instance}).",
        "One breaker for all instances: version {version} seen by {seen} of {running} instance running"
        " (this one: {instance}).",
    ),
    "admin.breaker_seen": (
        "Один предохранитель на все экземпляры: версию {version} видят {seen} из запущенных экземпляров: {running}"
        " (этот: {instance}).",
        "One breaker for all instances: version {version} seen by {seen} of {running} instances running"
        " (this one: {instance}).",
    ),
    "admin.breaker_failures": ("Ошибок подряд", "Consecutive failures"),
    "admin.breaker_counts": ("Вызовы / ошибки / отказы (этот экземпляр)", "Calls / failures / rejections (this instance)"),
    "admin.breaker_reset": ("Сбросить (закрыть)", "Reset (close)"),
    "admin.breaker_force_open": ("Открыть принудительно (обслуживание)", "Force open (maintenance)"),
    "admin.webhooks_title": ("Вебхуки YClients", "YClients webhooks"),
    "admin.webhooks_pending_one": ("Не завершено доставок: {n}.", "{n} delivery not finished yet."),
    "admin.webhooks_pending": ("Не завершено доставок: {n}.", "{n} deliveries not finished yet."),
    "admin.webhooks_failed_one": (
        "Доставок, брошенных окончательно: {n} (после повторных ошибок; первая трассировка — в логе).",
        "{n} delivery failed for good (given up after repeated errors; the log has the first traceback).",
    ),
    "admin.webhooks_failed": (
        "Доставок, брошенных окончательно: {n} (после повторных ошибок; первая трассировка — в логе).",
        "{n} deliveries failed for good (given up after repeated errors; the log has the first traceback).",
    ),
    "admin.event": ("Событие", "Event"),
    "admin.next_try": ("Следующая попытка", "Next try"),
    "admin.cleanups": ("Сессии WhatsApp, которые ещё нужно удалить в шлюзе (повторяем, пока не выйдет):",
                       "WhatsApp sessions still to delete at the gateway (retried until done):"),
    "admin.since": ("с {time}", "since {time}"),
    "admin.pool_title": ("Пул соединений с базой", "Database pool"),
    "admin.pool": ("{in_use} занято, {idle} свободно, {size} открыто из {max}",
                   "{in_use} in use, {idle} idle, {size} open of {max}"),
    "admin.pool_waiting": (", {n} ждут", ", {n} waiting"),
    "admin.services_title": ("Внешние сервисы", "Outside services"),
    "admin.service_gateway": ("Шлюз WhatsApp", "WhatsApp gateway"),
    "admin.service_partner": ("Партнёрский API YClients", "YClients partner API"),
    "admin.reachable": ("доступен", "reachable"),
    "admin.unreachable": ("недоступен", "unreachable"),
    "admin.ms": ("{n} мс", "{n} ms"),
    "admin.flags_title": ("Переключатели", "Feature flags"),
    "admin.version": ("Версия {version}", "Version {version}"),
    # Codes shown to staff by label("status"/"link"/"attention", code); English reads as before.
    "admin.status.pending_whatsapp": ("ждёт WhatsApp", "pending whatsapp"),
    "admin.status.activating": ("активируется", "activating"),
    "admin.status.active": ("активен", "active"),
    "admin.status.activation_failed": ("активация не удалась", "activation failed"),
    "admin.status.frozen": ("заморожен", "frozen"),
    "admin.status.uninstalled": ("удалён", "uninstalled"),
    "admin.link.idle": ("не начато", "idle"),
    "admin.link.starting": ("запускается", "starting"),
    "admin.link.awaiting_scan": ("ждёт сканирования", "awaiting scan"),
    "admin.link.linking": ("привязывается", "linking"),
    "admin.link.connected": ("подключён", "connected"),
    "admin.link.expired": ("код истёк", "expired"),
    "admin.link.failed": ("сбой", "failed"),
    "admin.link.logged_out": ("отключён", "logged out"),
    "admin.attention.activation failed": ("активация не удалась", "activation failed"),
    "admin.attention.WhatsApp logged out": ("WhatsApp отключён", "WhatsApp logged out"),
    "admin.attention.QR code expired": ("QR-код истёк", "QR code expired"),
    "admin.attention.WhatsApp session failed": ("сбой сессии WhatsApp", "WhatsApp session failed"),
    "admin.attention.stuck activating": ("завис на активации", "stuck activating"),
    "admin.attention.stuck in": ("завис: {status}", "stuck in {status}"),
    # Staff actions (portal/support/dashboard.py, actions.py): titles, what they do, results.
    "admin.action.disconnect": ("Отключить WhatsApp", "Disconnect WhatsApp"),
    "admin.action.disconnect_explain": (
        "Завершает сессию WhatsApp салона в шлюзе. Владельцу придётся привязать номер снова.",
        "Logs the salon's WhatsApp session out at the gateway. The owner must link again.",
    ),
    "admin.action.restart": ("Перезапустить сессию WhatsApp", "Restart the WhatsApp session"),
    "admin.action.restart_explain": (
        "Перезапускает сессию в шлюзе; привязанный телефон подключится сам.",
        "Restarts the session at the gateway; a linked phone reconnects by itself.",
    ),
    "admin.action.retry": ("Разрешить повторную активацию", "Mark activation for retry"),
    "admin.action.retry_explain": (
        "Возвращает владельцу кнопку «Активировать» после неудачной активации, с новым часом.",
        "Puts a failed activation back to the owner's Activate button, with a fresh hour.",
    ),
    "admin.result.disconnect_refused": (
        "Отмечено как отключённое, но шлюз отказал в выходе ({error}).",
        "Marked as disconnected, but the gateway refused the logout ({error}).",
    ),
    "admin.result.disconnected": ("WhatsApp отключён.", "WhatsApp disconnected."),
    "admin.result.gateway_refused": ("Шлюз отказал: {error}", "The gateway refused: {error}"),
    "admin.result.restarted": ("Сессия перезапущена.", "Session restarted."),
    "admin.result.retry_refused": ("Повторить можно только неудавшуюся активацию.",
                                   "Only a failed activation can be marked for retry."),
    "admin.result.retry_marked": ("Повтор разрешён: владелец может снова нажать «Активировать».",
                                  "Marked for retry: the owner can press Activate again."),
    "admin.result.breaker_reset": ("Предохранитель сброшен: закрыт.", "Breaker reset: closed."),
    "admin.result.breaker_forced_open": ("Предохранитель открыт принудительно.", "Breaker forced open."),
    "admin.result.seen_one": ("Видят {seen} из запущенных экземпляров: {running}.",
                              "Seen by {seen} of {running} instance running."),
    "admin.result.seen": ("Видят {seen} из запущенных экземпляров: {running}.",
                          "Seen by {seen} of {running} instances running."),
    "admin.result.unknown_action": ("Неизвестное действие", "Unknown action"),
    "admin.action.erase": ("Стереть персональные данные", "Erase personal data"),
    "admin.action.erase_explain": (
        "Сразу стирает имя, телефон и e-mail владельца и номер WhatsApp. Отменить нельзя.",
        "Erases the owner's name, phone and e-mail and the WhatsApp number now. This cannot be undone.",
    ),
    "admin.result.erased": ("Персональные данные стёрты: имя, телефон и e-mail владельца и номер WhatsApp.",
                            "Personal data erased: the owner's name, phone and e-mail and the WhatsApp number."),
}


def pick_language(request: Request, default: str = DEFAULT_LANGUAGE) -> str:
    """The cookie's language, else the best of Accept-Language we speak, else `default`."""
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    header = request.headers.get("accept-language", "")
    ranked = []
    for i, part in enumerate(header.split(",")):
        tag, _, q = part.strip().partition(";q=")
        try:
            weight = float(q) if q else 1.0
        except ValueError:
            weight = 0.0
        ranked.append((-weight, i, tag.strip().lower()[:2]))
    for _, _, tag in sorted(ranked):
        if tag in LANGUAGES:
            return tag
    return default


def labeler(language: str) -> Callable[..., str]:
    """`label(family, code)`: a code shown to staff (a status, a link state) in `language`;
    a code without a translation yet (added after this catalogue) shows as itself."""
    t = translator(language)

    def label(family: str, code: object, fallback: str | None = None) -> str:
        key = f"admin.{family}.{code}"
        return t(key) if key in MESSAGES else (fallback if fallback is not None else str(code))

    return label


def translator(language: str) -> Callable[..., str]:
    index = LANGUAGES.index(language)

    def t(key: str, **values: object) -> str:
        text = MESSAGES[key][index]
        return text.format(**values) if values else text

    return t
