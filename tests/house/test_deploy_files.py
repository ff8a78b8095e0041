"""The deployment files in deploy/: nginx.conf is valid nginx and balances as it says, the
Dockerfile runs unprivileged with a health check and no baked-in secret, and compose.yaml
has every service. Nothing here imports the portal."""

from __future__ import annotations

import contextlib
import http.server
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy"
SECRETS = ("JWT_SECRET", "SESSION_SECRET", "API_KEY_SECRET", "YCLIENTS_PARTNER_TOKEN")


def nginx_binary() -> str:
    # /usr/sbin is not on every user's PATH; it is where Debian puts nginx.
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
    if found is None:
        pytest.skip("nginx is not installed (scripts/ensure-test-tools installs it: apt-get install nginx)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def render(tmp_path: Path, listen: str, upstreams: list[str]) -> Path:
    out = tmp_path / "nginx.conf"
    args = [sys.executable, str(DEPLOY / "render-nginx-conf"), "--listen", listen,
            "--pid", str(tmp_path / "nginx.pid"), "--tmp", str(tmp_path), "--out", str(out)]
    for upstream in upstreams:
        args += ["--upstream", upstream]
    subprocess.run(args, check=True, capture_output=True, text=True, timeout=30)
    return out


def nginx_test(conf: Path, prefix: Path) -> subprocess.CompletedProcess:
    return subprocess.run([nginx_binary(), "-t", "-e", "stderr", "-p", str(prefix), "-c", str(conf)],
                          check=False, capture_output=True, text=True, timeout=30)


# --- nginx.conf -------------------------------------------------------------------------

def test_rendered_nginx_conf_passes_nginx_t(tmp_path):
    conf = render(tmp_path, f"127.0.0.1:{free_port()}", ["127.0.0.1:18001", "127.0.0.1:18002"])
    text = conf.read_text()
    assert not re.search(r"__[A-Z]+__", text)
    assert text.count("server 127.0.0.1:1800") == 2
    done = nginx_test(conf, tmp_path)
    assert done.returncode == 0, done.stderr


def test_render_refuses_a_value_that_would_change_the_config(tmp_path):
    done = subprocess.run([sys.executable, str(DEPLOY / "render-nginx-conf"), "--listen", "80; evil",
                           "--upstream", "a:1", "--pid", "p", "--tmp", "t"],
                          check=False, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "not a plain nginx value" in done.stderr


def test_nginx_conf_says_what_the_deployment_relies_on():
    text = (DEPLOY / "nginx.conf").read_text()
    directives = "\n".join(line.split("#")[0] for line in text.splitlines())
    for needed in ("proxy_set_header Host $host;",
                   "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                   "proxy_set_header X-Forwarded-Proto $scheme;",
                   "proxy_set_header X-Request-Id $request_id;",
                   "client_max_body_size 64k;", "proxy_read_timeout 60s;",
                   "proxy_next_upstream error timeout;"):
        assert needed in directives, needed
    # A POST that reached one instance must never be resent to another.
    assert "non_idempotent" not in directives
    # The access log must not carry query strings (signed landing data).
    assert "$request " not in directives and "$request_uri" not in directives and "$args" not in directives


def test_compose_renders_every_placeholder_of_nginx_conf():
    placeholders = set(re.findall(r"__[A-Z]+__", (DEPLOY / "nginx.conf").read_text()))
    command = "\n".join(load_compose()["services"]["nginx"]["command"])
    assert placeholders == {"__LISTEN__", "__UPSTREAMS__", "__PID__", "__TMP__"}
    for name in placeholders:
        assert f"s|{name}|" in command, name


class _Upstream(http.server.BaseHTTPRequestHandler):
    """Answers with its own name; "drop" instances read the request and close unanswered."""

    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        self.server.seen.append((self.command, self.path, dict(self.headers)))
        if self.server.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        body = self.server.name.encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def handle(self) -> None:
        with contextlib.suppress(OSError):  # the "drop" instances' own closed sockets
            super().handle()

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def upstream(name: str, *, drop: bool = False):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    server.name, server.drop, server.seen = name, drop, []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def running_nginx(tmp_path: Path, upstreams: list[str]):
    port = free_port()
    conf = render(tmp_path, f"127.0.0.1:{port}", upstreams)
    log = (tmp_path / "stderr.log").open("w")
    process = subprocess.Popen([nginx_binary(), "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
                               stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not start:\n{(tmp_path / 'stderr.log').read_text()}")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()  # SIGTERM: nginx's fast shutdown
        process.wait(timeout=10)
        log.close()


def fetch(url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_nginx_spreads_requests_over_both_instances_and_forwards_what_the_portal_needs(tmp_path):
    nginx_binary()
    with upstream("a") as a, upstream("b") as b, \
            running_nginx(tmp_path, [f"127.0.0.1:{a.server_port}", f"127.0.0.1:{b.server_port}"]) as url:
        answers = [fetch(f"{url}/livez", headers={"X-Forwarded-For": "6.6.6.6"}) for _ in range(6)]
        assert {status for status, _ in answers} == {200}
        # Round robin over a shared zone: the instances take turns whichever worker answers.
        assert sorted(body for _, body in answers) == ["a"] * 3 + ["b"] * 3
        _, _, headers = a.seen[0]
        headers = {k.lower(): v for k, v in headers.items()}
        # The client's own X-Forwarded-For is kept, the real peer appended after it.
        assert headers["x-forwarded-for"] == "6.6.6.6, 127.0.0.1"
        assert headers["x-forwarded-proto"] == "http"
        assert headers["host"] == "127.0.0.1"
        assert re.fullmatch(r"[0-9a-f]{32}", headers["x-request-id"])
        # Bodies over 64 KiB are refused by nginx, as the portal would.
        status, _ = fetch(f"{url}/marketplace/activate", "POST", b"x" * (64 * 1024 + 1))
        assert status == 413
        assert all(method == "GET" for method, _, _ in a.seen + b.seen)
    access = (tmp_path / "access.log").read_text()
    assert "GET /livez HTTP/1.1" in access


def test_a_failed_get_goes_to_the_next_instance(tmp_path):
    nginx_binary()
    with upstream("one", drop=True) as one, upstream("two", drop=True) as two, \
            running_nginx(tmp_path, [f"127.0.0.1:{one.server_port}", f"127.0.0.1:{two.server_port}"]) as url:
        status, _ = fetch(f"{url}/onboarding")
        assert status == 502
        assert len(one.seen) + len(two.seen) == 2


def test_a_post_that_reached_an_instance_is_never_sent_to_another(tmp_path):
    """A dropped POST /marketplace/activate may already have called YClients: nginx must
    answer 502 rather than run the activation on the second instance too."""
    nginx_binary()
    with upstream("one", drop=True) as one, upstream("two", drop=True) as two, \
            running_nginx(tmp_path, [f"127.0.0.1:{one.server_port}", f"127.0.0.1:{two.server_port}"]) as url:
        status, _ = fetch(f"{url}/marketplace/activate", "POST", b'{"token": "t"}',
                          {"Content-Type": "application/json"})
        assert status == 502
        assert len(one.seen) + len(two.seen) == 1


# --- Dockerfile -------------------------------------------------------------------------

def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def test_dockerfile_runs_unprivileged_with_a_livez_health_check_and_no_secret():
    instructions = dockerfile_instructions()
    stages = [value for name, value in instructions if name == "FROM"]
    assert len(stages) >= 2 and stages[-1].startswith("python:3.11-slim")
    # The last USER of the final stage is not root.
    final = instructions[max(i for i, (name, _) in enumerate(instructions) if name == "FROM"):]
    users = [value for name, value in final if name == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    health = [value for name, value in final if name == "HEALTHCHECK"]
    assert health and "/livez" in health[0] and "curl" not in health[0]
    for name, value in instructions:
        if name in ("ENV", "ARG"):
            for secret in SECRETS:
                assert not re.search(rf"(^|\s){secret}(=|\s|$)", value), f"{name} {value}"
    assert ("ENTRYPOINT", '["python", "-m", "portal"]') in final


def test_dockerfile_installs_the_portal_from_its_wheel():
    """The build stage makes the portal's wheel and installs it into the virtualenv; the
    runtime stage takes that virtualenv and nothing of the repository."""
    instructions = dockerfile_instructions()
    starts = [i for i, (name, _) in enumerate(instructions) if name == "FROM"]
    build, final = instructions[starts[-2]:starts[-1]], instructions[starts[-1]:]
    runs = [value for name, value in build if name == "RUN"]
    assert any(re.search(r"pip wheel --no-deps --wheel-dir (\S+) \.(\s|$)", run) for run in runs), runs
    assert any(re.search(r"pip install --no-index --no-deps \S+/salon_portal-\*\.whl", run) for run in runs), runs
    # The wheel is built after the whole package and the folders it carries are in the stage.
    wheel_at = next(i for i, (name, value) in enumerate(build) if name == "RUN" and "--no-deps --wheel-dir" in value)
    for folder in ("portal", "templates", "static", "migrations"):
        assert any(name == "COPY" and value.split()[-2] == folder for name, value in build[:wheel_at]), folder
    copies = [value for name, value in final if name == "COPY"]
    assert copies and all(value.startswith("--from=") for value in copies), copies
    assert any(value.split()[-2:] == ["/opt/venv", "/opt/venv"] for value in copies), copies
    # Nothing points the interpreter at a source tree.
    assert not any(name == "ENV" and "PYTHONPATH" in value for name, value in instructions)


# --- compose.yaml -----------------------------------------------------------------------

def load_compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_compose_has_every_service_and_two_portal_instances():
    services = load_compose()["services"]
    assert {"postgres", "redis", "waha", "evolution", "migrate", "portal", "nginx"} <= set(services)
    portal = services["portal"]
    assert portal["deploy"]["replicas"] >= 2
    assert portal["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["command"] == ["migrate"] and services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "ports" not in services["waha"] and "ports" not in services["evolution"] and "ports" not in portal
    # A profile per gateway; the portal waits for whichever one is started.
    assert services["waha"]["profiles"] == ["waha"] and services["evolution"]["profiles"] == ["evolution"]
    assert portal["depends_on"]["waha"]["required"] is False and portal["depends_on"]["evolution"]["required"] is False
    env = portal["environment"]
    assert env["WHATSAPP_GATEWAY"] == "${WHATSAPP_GATEWAY:-waha}" and env["WAHA_URL"] == "http://waha:3000"
    assert env["EVOLUTION_URL"] == "http://evolution:8080"
    assert env["FORWARDED_ALLOW_IPS"] == services["nginx"]["networks"]["edge"]["ipv4_address"]
    assert portal["env_file"] == "portal.env"


def test_portal_env_example_is_committed_and_the_real_one_ignored():
    assert (DEPLOY / "portal.env.example").is_file()
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/portal.env"], check=False, cwd=ROOT, timeout=30)
    if ignored.returncode == 128:
        pytest.skip("not a git checkout")
    assert ignored.returncode == 0
