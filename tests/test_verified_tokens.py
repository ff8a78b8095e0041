"""The per-instance memory of verified onboarding tokens: never wider than a full verify."""

import pytest

from portal.onboarding.token import InvalidToken, VerifiedTokens, issue
from portal.salons.ids import YclientsSalonId

SECRET = "s" * 40


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_verified_token_is_remembered_until_its_own_expiry():
    clock = Clock(1_000_000.0)
    token = issue(YclientsSalonId(77), secret=SECRET, ttl_s=60, now=clock.now)
    tokens = VerifiedTokens(SECRET, clock=clock)
    assert tokens.verify(token).yclients_salon_id == 77
    assert tokens.verify(token).yclients_salon_id == 77
    clock.now += 61  # past exp: forgotten, and the full verify refuses it
    with pytest.raises(InvalidToken):
        tokens.verify(token)


def test_a_forged_or_foreign_token_is_never_remembered():
    tokens = VerifiedTokens(SECRET)
    foreign = issue(YclientsSalonId(77), secret="x" * 40)
    for _ in range(2):
        with pytest.raises(InvalidToken):
            tokens.verify(foreign)
    with pytest.raises(InvalidToken):
        tokens.verify(None)


def test_the_memory_is_bounded():
    tokens = VerifiedTokens(SECRET, capacity=2)
    first, *rest = (issue(YclientsSalonId(i), secret=SECRET) for i in (1, 2, 3))
    for token in (first, *rest):
        tokens.verify(token)
    assert len(tokens._known) == 2 and first not in tokens._known
