"""Where the files the portal reads at run time are: templates, static files, migrations and
the message catalogues, in the source tree and in an installed wheel alike.

The repository keeps the layout the product was specified with: `templates/`, `static/` and
`migrations/` beside the `portal/` package, the catalogues in `portal/locale/`. A wheel has no
"beside": the build (pyproject.toml: hatchling, its `sources` path rewrite) puts the three
folders into the package as `portal/_resources/<name>`. This module is the one place that knows both
layouts; every lookup asks `resource_path(name)`.

Real directories, not `importlib.resources` traversables: Jinja2's loader, Starlette's
StaticFiles and the migration runner list and open files on disk, and pip installs a wheel
unpacked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Resource = Literal["templates", "static", "migrations", "locale"]

PACKAGE_DIR = Path(__file__).resolve().parent.parent
# Where the wheel build puts the folders that sit beside the package in the repository.
BUNDLED_DIR = PACKAGE_DIR / "_resources"
# The source tree is recognised by its pyproject.toml next to the package; an installed
# package's parent is site-packages, where a folder called "templates" belongs to nobody.
SOURCE_ROOT = PACKAGE_DIR.parent


def resource_path(name: Resource) -> Path:
    """The folder holding `name`: in the installed package, else in the source tree. A
    missing folder stops start-up here, naming where it was looked for, rather than as a
    500 on the first page."""
    candidates = [BUNDLED_DIR / name, PACKAGE_DIR / name]
    if (SOURCE_ROOT / "pyproject.toml").is_file():
        candidates.append(SOURCE_ROOT / name)
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise FileNotFoundError(f"the portal's {name}/ is missing; looked in: {', '.join(map(str, candidates))}")
