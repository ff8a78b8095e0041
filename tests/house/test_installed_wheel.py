"""The portal as a package: `pip install <repo>` into a fresh virtualenv outside the
repository, then the installed `portal serve` in demo mode, run from a directory that is not
the repository, serves the sandbox, an owner's page with its stylesheet and htmx, and
migrates its embedded database. Every file it serves comes from the installed copy
(portal/_resources in site-packages; see portal/platform/resources.py).

Also: the sdist holds what a wheel build needs (the wheel built from it carries every
template, static file, migration and catalogue).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers.portal_process import portal_process
from tests.helpers.servers import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
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


def _clean_env() -> dict[str, str]:
    """What an operator's shell has, and nothing that points at the repository (no
    PYTHONPATH); as tests/helpers/portal_process.py gives the installed portal."""
    return {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}


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
    # The interpreter and environment the served portal below gets: what it imports and
    # reads is the installed copy, not the repository.
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


def test_the_installed_portal_serves_demo_mode(installed, tmp_path):
    workdir = tmp_path / "run"
    assert not workdir.is_relative_to(ROOT)
    port = free_port()
    # No DATABASE_URL: demo mode starts its own embedded PostgreSQL (initdb on first start,
    # hence the longer wait), and stops it on SIGTERM.
    with portal_process({"PORTAL_BASE_URL": f"http://127.0.0.1:{port}", "PYTHONUNBUFFERED": "1"}, port, workdir,
                        startup_timeout_s=120, program=(str(installed.portal),), stop=signal.SIGTERM) as running, \
            httpx.Client(base_url=running.url, timeout=15) as http:
        # The database was migrated: every migration of the repository, applied at start-up.
        applied = sorted(line["version"] for line in running.log_lines() if line.get("msg") == "migration applied")
        assert applied == _migration_names()
        (started,) = [line for line in running.log_lines() if line.get("msg") == "embedded PostgreSQL running"]
        postmaster = Path(started["folder"]) / "postmaster.pid"
        assert postmaster.is_file()
        assert http.get("/readyz").status_code == 200

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
    # SIGTERM: the portal shut down cleanly (uvicorn exits by the signal it was sent, after
    # the lifespan's shutdown), and stopped its embedded PostgreSQL on the way out.
    log = running.log_path.read_text()
    assert running.process.returncode in (0, -signal.SIGTERM) and "Application shutdown complete" in log, log[-3000:]
    assert not postmaster.exists()


def test_the_sdist_builds_a_wheel_with_every_resource(tmp_path):
    """hatchling's own PEP 517 hooks, called directly (no download, no isolation): the sdist
    from the repository, then the wheel from the unpacked sdist alone."""
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
