"""What a FHIR Consent's provision permits, read into PeerBridge's consent terms: the recipient
organization, purposes, data classes and period. The provision itself is kept as sent.

`DATA_CLASSES_OF` is the one table from the codings a clinic may send in `provision.class` and
`provision.securityLabel` (its own nested rules included) to PeerBridge data classes; it is
documented, row for row, in docs/consent-classes.md (a test keeps the two equal). A rule
PeerBridge cannot honour as written is refused naming the element, never narrowed or widened
in silence. See https://hl7.org/fhir/R4/consent.html#provision
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from api.domain.consents import DataClass, Purpose
from api.domain.errors import Invalid
from api.integrations.fhir.resources import codes
from api.integrations.fhir.resources.datatypes import codes_in, parse_date_time, ref_id

RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
CONSENT_ACTION = "http://terminology.hl7.org/CodeSystem/consentaction"

_CARE = frozenset({DataClass.REFERRAL, DataClass.SESSIONS, DataClass.OUTCOMES})
_ALL_BUT_PART2 = frozenset(DataClass) - {DataClass.SUBSTANCE_USE}

# (system, code) → the data classes a permit naming it covers. PeerBridge's records are a
# person's mental-health care (referrals, sessions, outcome measures): the mental-health and
# psychiatry sensitivity codes cover those three. Substance-use codes cover `substance_use`
# only, and nothing but an explicit substance-use code does (42 CFR Part 2).
DATA_CLASSES_OF: dict[tuple[str, str], frozenset[DataClass]] = {
    **{(codes.CS_DATA_CLASS, c.value): frozenset({c}) for c in DataClass},
    (RESOURCE_TYPES, "Patient"): frozenset({DataClass.DEMOGRAPHICS}),
    (RESOURCE_TYPES, "ServiceRequest"): frozenset({DataClass.REFERRAL}),
    (RESOURCE_TYPES, "Task"): frozenset({DataClass.REFERRAL}),
    (RESOURCE_TYPES, "Procedure"): frozenset({DataClass.REFERRAL}),
    (RESOURCE_TYPES, "Encounter"): frozenset({DataClass.SESSIONS}),
    (RESOURCE_TYPES, "QuestionnaireResponse"): frozenset({DataClass.OUTCOMES}),
    (RESOURCE_TYPES, "Observation"): frozenset({DataClass.OUTCOMES}),
    (codes.ACT_CODE, "ALLCAT"): _ALL_BUT_PART2,
    (codes.ACT_CODE, "DEMOCAT"): frozenset({DataClass.DEMOGRAPHICS}),
    (codes.ACT_CODE, "MENCAT"): _CARE,
    (codes.ACT_CODE, "MH"): _CARE,
    (codes.ACT_CODE, "PSY"): _CARE,
    (codes.ACT_CODE, "BH"): _CARE,
    (codes.ACT_CODE, "42CFRPart2"): frozenset({DataClass.SUBSTANCE_USE}),
    (codes.ACT_CODE, "SUD"): frozenset({DataClass.SUBSTANCE_USE}),
    (codes.ACT_CODE, "ETH"): frozenset({DataClass.SUBSTANCE_USE}),
    (codes.ACT_CODE, "ETHUD"): frozenset({DataClass.SUBSTANCE_USE}),
    (codes.ACT_CODE, "OPIOIDUD"): frozenset({DataClass.SUBSTANCE_USE}),
}
# Confidentiality codes in `securityLabel` say how data is handled, not which data: kept,
# covering no class of their own (PeerBridge's own Part 2 consents carry R beside 42CFRPart2).
HANDLING_LABELS = frozenset((codes.CONFIDENTIALITY, c) for c in ("U", "L", "M", "N", "R", "V"))
# What a recipient does with shared data; a permit for none of these (only `collect` or
# `correct`) does not let PeerBridge share anything.
SHARING_ACTIONS = frozenset({"access", "use", "disclose"})
# Elements that narrow a rule to data PeerBridge cannot tell apart: honouring the rest of the
# rule without them would share more than the patient agreed to.
_NARROWING = {
    "code": "PeerBridge shares whole data classes, not data by clinical code",
    "data": "PeerBridge shares whole data classes, not named resources",
    "dataPeriod": "PeerBridge shares whole data classes, not data from a time window",
}
# What a nested rule may say: more data classes for the same recipient and purposes.
_NESTED_ELEMENTS = frozenset({"id", "extension", "type", "class", "securityLabel", "provision"})


@dataclass(frozen=True)
class ConsentTerms:
    recipient_organization_id: UUID
    purposes: frozenset[Purpose]
    data_classes: frozenset[DataClass]
    period_start: datetime | None
    period_end: datetime | None


def consent_terms(resource: Mapping[str, Any]) -> ConsentTerms:
    """The terms a Consent's provision states, or Invalid naming what cannot be honoured."""
    provision = resource.get("provision")
    where = "Consent.provision"
    if not isinstance(provision, Mapping):
        raise Invalid(
            "PeerBridge records consents that permit sharing with a named recipient", field=where
        )
    if provision.get("type", "permit") != "permit":
        raise Invalid(
            "PeerBridge records permits naming the recipient; a deny rule cannot be honoured",
            field=f"{where}.type",
        )
    for key, why in _NARROWING.items():
        if key in provision:
            raise Invalid(why, field=f"{where}.{key}")
    _check_actions(provision, where)
    period = provision.get("period") or {}
    return ConsentTerms(
        recipient_organization_id=_recipient(provision, where),
        purposes=_purposes(provision, where),
        data_classes=_data_classes(provision, where),
        period_start=parse_date_time(period["start"], f"{where}.period.start")
        if "start" in period
        else None,
        period_end=parse_date_time(period["end"], f"{where}.period.end", end=True)
        if "end" in period
        else None,
    )


def _check_actions(provision: Mapping[str, Any], where: str) -> None:
    actions = provision.get("action")
    if actions and not SHARING_ACTIONS & set(codes_in(actions, CONSENT_ACTION)):
        raise Invalid(
            "PeerBridge shares data for access, use or disclosure; this permit allows none of them",
            field=f"{where}.action",
        )


def _recipient(provision: Mapping[str, Any], where: str) -> UUID:
    recipients = [
        (index, actor)
        for index, actor in enumerate(provision.get("actor", ()))
        if "IRCP" in codes_in([actor.get("role", {})], codes.PARTICIPATION_TYPE)
    ]
    if len(recipients) != 1:
        raise Invalid("name exactly one recipient organization (role IRCP)", field=f"{where}.actor")
    index, actor = recipients[0]
    return ref_id(actor.get("reference"), "Organization", f"{where}.actor[{index}].reference")


def _purposes(provision: Mapping[str, Any], where: str) -> frozenset[Purpose]:
    found = set()
    for index, item in enumerate(provision.get("purpose", ())):
        purpose = (
            codes.PURPOSE_OF_CODE.get(item.get("code", ""))
            if item.get("system") == codes.ACT_REASON
            else None
        )
        if purpose is None:
            raise Invalid(
                "purposes are v3-ActReason TREAT or CAREMGT", field=f"{where}.purpose[{index}]"
            )
        found.add(purpose)
    if not found:
        raise Invalid("name at least one purpose", field=f"{where}.purpose")
    return frozenset(found)


def _data_classes(provision: Mapping[str, Any], where: str) -> frozenset[DataClass]:
    classes: set[DataClass] = set()
    for path, coding in _class_codings(provision, where):
        key = (str(coding.get("system")), str(coding.get("code")))
        if key in DATA_CLASSES_OF:
            classes |= DATA_CLASSES_OF[key]
        elif not (path.split(".")[-1].startswith("securityLabel") and key in HANDLING_LABELS):
            raise Invalid(
                "not a class PeerBridge can map to its data classes (see docs/consent-classes.md)",
                field=path,
            )
    if not classes:
        raise Invalid("name at least one data class", field=f"{where}.class")
    return frozenset(classes)


def _class_codings(rule: Mapping[str, Any], where: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every class and security label coding of a rule and its nested permits, with its path."""
    for element in ("class", "securityLabel"):
        for index, coding in enumerate(rule.get(element, ())):
            yield f"{where}.{element}[{index}]", coding
    for index, nested in enumerate(rule.get("provision", ())):
        path = f"{where}.provision[{index}]"
        if nested.get("type") != "permit":
            raise Invalid(
                "PeerBridge cannot honour an exception that withholds part of a permit; "
                "state only the classes permitted",
                field=f"{path}.type",
            )
        for key in nested:
            if key not in _NESTED_ELEMENTS:
                raise Invalid(
                    "a nested rule may only add data classes for the same recipient and purposes",
                    field=f"{path}.{key}",
                )
        yield from _class_codings(nested, path)
