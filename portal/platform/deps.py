"""Reaching the running portal from a request: the one reader of the request's state.

The app's lifespan puts the composition root's container (`portal.runtime`) in the request
state. No layer below the root names that container: each package reads it through
`lifespan_deps` and narrows it with `isinstance` to its own Protocol of the few things it
uses (`web.deps.WebDeps`, `whatsapp.deps.WhatsAppDeps`, ...), which the container fits
structurally. So nothing a handler holds is `Any`, and each package says what it depends on.
"""

from __future__ import annotations

from starlette.requests import Request

# The lifespan state's key for the container; tests reach it as `client.app_state["runtime"]`.
STATE_KEY = "runtime"


class MissingDeps(LookupError):
    """The request carries no container of the expected shape: served outside the app's
    lifespan, or a container missing what the package needs. A programming error."""

    def __init__(self, wanted: type, found: object) -> None:
        super().__init__(f"{wanted.__name__} not on this request (found {type(found).__name__})")


def lifespan_deps(request: Request) -> object:
    """The lifespan's container, or None outside a lifespan; the caller narrows it."""
    return getattr(request.state, STATE_KEY, None)
