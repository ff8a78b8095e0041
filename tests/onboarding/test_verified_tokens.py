"""The per-instance memory of verified onboarding tokens: never wider than a full verify."""

import time

import pytest

from portal.onboarding.token import InvalidToken, VerifiedTokens, issue, verify
from portal.salons.ids import YclientsSalonId

SECRET = "s" * 40


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_verified_token_is_remembered_until_its_own_expiry():
    clock, checks = Clock(time.time()), []

    def counting_verify(token, *, secret):
        checks.append(token)
        return verify(token, secret=secret)

    token = issue(YclientsSalonId(77), secret=SECRET, ttl_s=60)
    tokens = VerifiedTokens(SECRET, clock=clock, verifier=counting_verify)
    assert tokens.verify(token).yclients_salon_id == 77
    assert tokens.verify(token).yclients_salon_id == 77
    assert len(checks) == 1  # the second time from memory
    clock.now += 61  # past its exp: not served from memory, checked in full again
    tokens.verify(token)
    assert len(checks) == 2


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
