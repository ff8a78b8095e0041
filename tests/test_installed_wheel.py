"""The portal as a package: `pip install <repo>` into a fresh virtualenv outside the
repository, then the installed `portal serve` in demo mode, run from a directory that is not
the repository, serves the sandbox, an owner's page with its stylesheet and htmx, and
migrates its embedded database. Every file it serves comes from the installed copy
(portal/_resources in site-packages; see portal/platform/resources.py).

Also: the sdist holds what a wheel build needs (the wheel built from it carries every
template, static file, migration and catalogue).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ("templates", "static", "migrations")
DEMO_SALON = 500001


@dataclass(frozen=True)
class Installed:
    venv: Path

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    @property
    def portal(self) -> Path:
        return self.venv / "bin" / "portal"


def _clean_env(**extra: str) -> dict[str, str]:
    """What an operator's shell has, and nothing that points at the repository: no
    PYTHONPATH, no DATABASE_URL (demo mode starts its own embedded PostgreSQL)."""
    keep = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    return {**keep, **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    venv = tmp_path_factory.mktemp("installed") / "venv"
    assert not venv.is_relative_to(ROOT)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # pip's own settings (index, cache, certificates) stay; PYTHONPATH and the test run's
    # virtualenv do not, so nothing of the repository is importable but what pip installs.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", str(ROOT)],
                          cwd=venv.parent, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return Installed(venv)


def test_the_installed_package_reads_its_files_from_the_virtualenv(installed, tmp_path):
    probe = ("import json, portal\n"
             "from portal.platform.resources import resource_path\n"
             "names = ('templates', 'static', 'migrations', 'locale')\n"
             "print(json.dumps({'package': portal.__file__, **{n: str(resource_path(n)) for n in names}}))\n")
    done = subprocess.run([str(installed.python), "-c", probe], cwd=tmp_path, env=_clean_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    found = {name: Path(path) for name, path in json.loads(done.stdout).items()}
    package = found.pop("package").parent
    assert package.is_relative_to(installed.venv) and not package.is_relative_to(ROOT)
    assert package.parent.name == "site-packages"
    for name in RESOURCES:
        assert found[name] == package / "_resources" / name
    assert found["locale"] == package / "locale"
    # Every migration of the repository made it into the package.
    assert sorted(p.name for p in found["migrations"].glob("*.sql")) == _migration_names()


def _migration_names() -> list[str]:
    return sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))


@contextlib.contextmanager
def _serving(installed: Installed, workdir: Path) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / "portal.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(installed.portal), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
            env=_clean_env(LOG_FORMAT="json", LOG_LEVEL="INFO", PORTAL_BASE_URL=url, PYTHONUNBUFFERED="1"))
    try:
        _wait_until_ready(url, process, log_path)
        yield url, process, log_path
    finally:
        # SIGTERM, so the portal stops its embedded PostgreSQL on the way out.
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def _wait_until_ready(url: str, process: subprocess.Popen, log_path: Path) -> None:
    # /readyz answers 200 once the database is up and migrated (the lifespan has run).
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the installed portal exited on start-up:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"the installed portal never became ready:\n{log_path.read_text()[-3000:]}")


def _log_lines(log_path: Path) -> list[dict]:
    lines = []
    for raw in log_path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            lines.append(json.loads(raw))
    return lines


def test_the_installed_portal_serves_demo_mode(installed, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    assert not workdir.is_relative_to(ROOT)
    with _serving(installed, workdir) as (url, _process, log_path), httpx.Client(base_url=url, timeout=15) as http:
        # The database was migrated: every migration of the repository, applied at start-up.
        applied = sorted(line["version"] for line in _log_lines(log_path) if line.get("msg") == "migration applied")
        assert applied == _migration_names()
        assert (workdir / ".portal").is_dir()  # the embedded database lives in the working directory

        sandbox = http.get("/sandbox/")
        assert sandbox.status_code == 200 and f'data-salon-id="{DEMO_SALON}"' in sandbox.text

        # The owner presses Install: the landing records the salon in the migrated tables and
        # the owner's onboarding page follows.
        page = http.get(f"/sandbox/install/{DEMO_SALON}", follow_redirects=True)
        assert page.status_code == 200 and page.url.path == "/onboarding"
        stylesheet = re.search(r'<link rel="stylesheet" href="(/static/portal\.css)">', page.text)
        htmx = re.search(r'<script src="(/static/htmx-[0-9.]+\.min\.js)"', page.text)
        assert stylesheet and htmx, page.text[:2000]

        site = installed.venv / "lib"
        for path, content_type in ((stylesheet[1], "text/css"), (htmx[1], "text/javascript")):
            served = http.get(path)
            assert served.status_code == 200, path
            assert served.headers["content-type"].startswith(content_type), served.headers["content-type"]
            copy = next(site.glob(f"python*/site-packages/portal/_resources{path}"))
            assert served.content == copy.read_bytes()


def test_the_sdist_builds_a_wheel_with_every_resource(tmp_path):
    """hatchling's own PEP 517 hooks, in-process: the sdist from the repository, then the
    wheel from the unpacked sdist alone."""
    def build(kind: str, source: Path, out: Path) -> Path:
        out.mkdir()
        done = subprocess.run([sys.executable, "-c", f"from hatchling.build import build_{kind}; "
                               f"print(build_{kind}({str(out)!r}))"],
                              cwd=source, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return out / done.stdout.strip().splitlines()[-1]

    sdist = build("sdist", ROOT, tmp_path / "sdist")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp_path / "unpacked", filter="data")
    (unpacked,) = (tmp_path / "unpacked").iterdir()
    wheel = build("wheel", unpacked, tmp_path / "wheel")

    names = set(zipfile.ZipFile(wheel).namelist())
    for folder in RESOURCES:
        expected = {f"portal/_resources/{p.relative_to(ROOT).as_posix()}"
                    for p in (ROOT / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts}
        assert expected and expected <= names, sorted(expected - names)
    for language in ("ru", "en"):
        assert f"portal/locale/{language}/LC_MESSAGES/messages.po" in names
    assert "portal/platform/resources.py" in names
    # Only the package goes in: no tests, benchmarks or deployment files.
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"portal"}, tops
