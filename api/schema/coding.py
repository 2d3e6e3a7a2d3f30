"""Codes from a code system (FHIR Coding), in and out."""

from __future__ import annotations

import strawberry

from api.domain.referrals import Coding as DomainCoding


@strawberry.type(description="A code from a code system (FHIR Coding).")
class Coding:
    system: str
    code: str
    display: str | None

    @classmethod
    def from_domain(cls, coding: DomainCoding) -> Coding:
        return cls(system=coding.system, code=coding.code, display=coding.display)


@strawberry.input(description="A code from a code system (FHIR Coding).")
class CodingInput:
    system: str
    code: str
    display: str | None = None

    def to_domain(self) -> DomainCoding:
        return DomainCoding(self.system, self.code, self.display)
