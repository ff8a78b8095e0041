"""Reaching the running portal from a request: the one reader of the request's state.

The app's lifespan puts the composition root's container (built in `portal.runtime`) in the
request state. No layer below the root names that container: each package says what it
reads as a Protocol (`web.deps.WebDeps`, `whatsapp.deps.WhatsAppDeps`, ...) and hands it out
through its own accessor, so nothing a handler holds is `Any`.

The container derives from `Container`, and an accessor checks that, cheaply, per request.
That it fits every package's Protocol is proved once by the type checker (`runtime._fits`)
and at run time by `tests/app/test_deps.py`: not per request, because Python 3.11's isinstance
against a Protocol with attributes walks every member each time (30-50 µs measured, and a
poll reaches its deps several times).
"""

from __future__ import annotations

from starlette.requests import Request

# The lifespan state's key for the container; tests reach it as `client.app_state["runtime"]`.
STATE_KEY = "runtime"


class Container:
    """What the composition root's container derives from: the accessors' check."""


class MissingDeps(LookupError):
    """The request carries no container: served outside the app's lifespan, or something else
    put in its place. A programming error."""

    def __init__(self, wanted: type, found: object) -> None:
        super().__init__(f"{wanted.__name__} not on this request (found {type(found).__name__})")


def container_if_any(request: Request) -> Container | None:
    """The lifespan's container, or None outside a lifespan."""
    deps = getattr(request.state, STATE_KEY, None)
    return deps if isinstance(deps, Container) else None


def container(request: Request) -> Container:
    if (deps := container_if_any(request)) is not None:
        return deps
    raise MissingDeps(Container, getattr(request.state, STATE_KEY, None))
