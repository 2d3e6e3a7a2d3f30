"""The Mutation root: every area's mutations on one type."""

from __future__ import annotations

import strawberry

from api.schema.mutations.care import CareMutations
from api.schema.mutations.consents import ConsentMutations
from api.schema.mutations.directory import DirectoryMutations
from api.schema.mutations.patients import PatientMutations
from api.schema.mutations.referrals import ReferralMutations
from api.schema.timeliness import TimelinessMutations


@strawberry.type
class Mutation(
    ReferralMutations,
    ConsentMutations,
    DirectoryMutations,
    CareMutations,
    PatientMutations,
    TimelinessMutations,
):
    pass
