"""De-identified program metrics with small-cell suppression."""

from __future__ import annotations

from datetime import datetime

import strawberry

from api.schema.ids import to_id
from api.services import metrics as service


@strawberry.type(description="One count; null when suppressed as a small cell.")
class MetricCount:
    name: str
    value: int | None
    suppressed: bool


@strawberry.type(description="De-identified counts for a program over a period.")
class ProgramMetrics:
    program_id: strawberry.ID
    period_start: datetime
    period_end: datetime
    counts: list[MetricCount]
    suppression_threshold: int = strawberry.field(
        description="Counts between 1 and this minus one are withheld."
    )

    @classmethod
    def from_domain(cls, metrics: service.ProgramMetrics) -> ProgramMetrics:
        return cls(
            program_id=to_id(metrics.program_id),
            period_start=metrics.period_start,
            period_end=metrics.period_end,
            counts=[
                MetricCount(name=name, value=value, suppressed=value is None)
                for name, value in sorted(metrics.counts.items())
            ],
            suppression_threshold=metrics.suppression_threshold,
        )
