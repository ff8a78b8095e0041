"""What onboarding reads of the running portal, as a Protocol the composition root's
container fits structurally (see `platform.deps`): the package never names that container.
"""

from __future__ import annotations

from typing import Protocol, cast, runtime_checkable

from starlette.requests import Request

from portal.onboarding.admission import AdmissionRules, InstallStatusSource
from portal.onboarding.token import VerifiedTokens
from portal.platform.database import Pool
from portal.platform.deps import container
from portal.platform.settings import Settings


@runtime_checkable
class OnboardingDeps(Protocol):
    settings: Settings
    pool: Pool
    verified_tokens: VerifiedTokens
    @property
    def install_statuses(self) -> InstallStatusSource: ...  # YClients' answer, asked on landing
    admission_rules: AdmissionRules


def onboarding_deps(request: Request) -> OnboardingDeps:
    return cast(OnboardingDeps, container(request))  # it fits: see `platform.deps`
