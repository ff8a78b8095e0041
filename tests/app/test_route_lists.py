"""Every route lives in its package's route list, and the app is those lists assembled.

Each package's handler module ends with `routes(...)`; `portal/app.py` assembles them and
adds only what belongs to the app itself (static files, the favicon). So "every package's
route list is assembled in app.py" is true by construction, and these tests notice a route
added anywhere else, or a list app.py forgot.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route

from portal.app import create_app
from portal.sandbox import SandboxMarketplace

PORTAL = Path(__file__).resolve().parent.parent.parent / "portal"
# The app's own routes (in app.py's `_routes`) and the sandbox's stand-in for YClients'
# partner API, a Starlette app of its own that the sandbox's route list mounts.
OWN_ROUTES = {("portal/app.py", "_routes"), ("portal/sandbox/partner_api.py", "create_partner_api")}


def _module_name(path: Path) -> str:
    return ".".join(path.relative_to(PORTAL.parent).with_suffix("").parts)


def _route_list_modules() -> list[str]:
    """Modules with a top-level `routes` function: the packages' route lists."""
    found = []
    for path in sorted(PORTAL.rglob("*.py")):
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.FunctionDef) and n.name == "routes" for n in tree.body):
            found.append(_module_name(path))
    return found


def _key(route: BaseRoute) -> tuple[str, tuple[str, ...]]:
    if isinstance(route, Route):
        return route.path, tuple(sorted(route.methods or ()))
    assert isinstance(route, Mount)
    return route.path, ("MOUNT",)


async def _a_page(*args: object, **kwargs: object) -> None:  # stands in for a composed page part
    return None


def _sample(name: str, settings) -> object:
    """An argument for a route list that depends on wiring (the page parts, the sandbox)."""
    if name == "market":
        return SandboxMarketplace(f"{settings.base_url}/sandbox", partner_token="t", application_id=1)
    return _a_page


def _lists(settings) -> list[tuple[str, tuple[str, ...]]]:
    keys = []
    for name in _route_list_modules():
        routes = importlib.import_module(name).routes
        params = inspect.signature(routes).parameters
        args = {p: _sample(p, settings) for p, spec in params.items() if spec.default is inspect.Parameter.empty}
        keys += [_key(r) for r in routes(**args)]
    return keys


def test_the_app_is_the_packages_route_lists_assembled(make_settings):
    settings = make_settings(SANDBOX="true")
    app_routes = [_key(r) for r in create_app(settings).routes]
    own = [("/static", ("MOUNT",)), ("/favicon.ico", ("GET", "HEAD"))]
    assert sorted(app_routes) == sorted(_lists(settings) + own)


def test_the_lists_cover_each_package_that_serves_http():
    packages = {name.split(".")[1] for name in _route_list_modules()}
    assert packages >= {"activation", "onboarding", "platform", "salon_pages", "sandbox", "support", "web",
                        "whatsapp", "yclients_webhooks"}


def _routes_outside_lists(rel: str, node: ast.AST, function: str | None) -> list[str]:
    """`Route(...)`s and `Mount(...)`s under `node` not inside a `routes` function."""
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        # A helper nested in a route list counts as the list.
        function = function if function in ("routes", *[f for _, f in OWN_ROUTES]) else node.name
    found = []
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("Route", "Mount", "WebSocketRoute", "Host")
            and function != "routes" and (rel, function) not in OWN_ROUTES):
        found.append(f"{rel}:{node.lineno} in {function}")
    for child in ast.iter_child_nodes(node):
        found += _routes_outside_lists(rel, child, function)
    return found


def test_no_route_is_defined_outside_a_route_list():
    outside = [
        hit for path in sorted(PORTAL.rglob("*.py"))
        for hit in _routes_outside_lists(str(path.relative_to(PORTAL.parent)), ast.parse(path.read_text()), None)
    ]
    assert outside == []


def test_route_lists_live_in_modules_named_routes():
    """The house's names: a package's handlers are in `routes.py` or `<audience>_routes.py`."""
    misnamed = [m for m in _route_list_modules() if not m.rsplit(".", 1)[1].endswith("routes")]
    assert misnamed == []
