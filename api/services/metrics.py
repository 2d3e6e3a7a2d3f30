"""De-identified program metrics with small-cell suppression."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from api.domain.errors import Invalid, NotFound
from api.domain.principal import Principal
from api.services.policy import Capability, require
from api.services.repositories import UnitOfWork

# Counts below this are withheld so no small group of participants can be singled out
# (the CMS cell-size suppression policy uses 11).
SMALL_CELL_THRESHOLD = 11


@dataclass(frozen=True)
class ProgramMetrics:
    program_id: UUID
    period_start: datetime
    period_end: datetime
    counts: dict[str, int | None]  # None = suppressed small cell
    suppression_threshold: int = SMALL_CELL_THRESHOLD


def suppress(counts: dict[str, int]) -> dict[str, int | None]:
    return {
        name: (n if n == 0 or n >= SMALL_CELL_THRESHOLD else None) for name, n in counts.items()
    }


async def program_metrics(
    uow: UnitOfWork, principal: Principal, program_id: UUID, since: datetime, until: datetime
) -> ProgramMetrics:
    require(principal, Capability.READ_METRICS)
    if until <= since:
        raise Invalid("must be after `from`", field="to")
    async with uow:
        (program,) = await uow.programs.get_many([program_id])
        if program is None:
            raise NotFound("PeerProgram", program_id)
        counts = await uow.metrics.program_counts(program_id, since, until)
    return ProgramMetrics(program_id, since, until, suppress(counts))
