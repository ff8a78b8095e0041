"""portal/platform/resources.py: one resolver for the files the portal reads at run time, in
the source tree and in an installed package (tests/house/test_installed_wheel.py runs the latter
for real)."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.platform import resources
from portal.platform.resources import resource_path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_in_the_source_tree_the_folders_beside_the_package_are_used():
    for name in ("templates", "static", "migrations"):
        assert resource_path(name) == ROOT / name
    assert resource_path("locale") == ROOT / "portal" / "locale"


def _layout(monkeypatch, root: Path, *, source_tree: bool) -> Path:
    package = root / "portal"
    package.mkdir(parents=True)
    if source_tree:
        (root / "pyproject.toml").write_text("")
    monkeypatch.setattr(resources, "PACKAGE_DIR", package)
    monkeypatch.setattr(resources, "BUNDLED_DIR", package / "_resources")
    monkeypatch.setattr(resources, "SOURCE_ROOT", root)
    return package


def test_an_installed_copy_wins_over_a_source_tree(monkeypatch, tmp_path):
    package = _layout(monkeypatch, tmp_path, source_tree=True)
    (tmp_path / "templates").mkdir()
    (package / "_resources" / "templates").mkdir(parents=True)
    assert resource_path("templates") == package / "_resources" / "templates"


def test_site_packages_is_not_a_source_tree(monkeypatch, tmp_path):
    # An installed package whose wheel lacked the folder: a "templates" folder beside it in
    # site-packages is someone else's, and start-up stops naming where it looked.
    package = _layout(monkeypatch, tmp_path, source_tree=False)
    (tmp_path / "templates").mkdir()
    with pytest.raises(FileNotFoundError, match="templates") as raised:
        resource_path("templates")
    looked_in = str(raised.value).split("looked in: ")[1].split(", ")
    assert looked_in == [str(package / "_resources" / "templates"), str(package / "templates")]
