"""The CapabilityStatement: exactly what this server supports, built from the same tables the
handlers use (search parameters, includes, interactions)."""

from __future__ import annotations

from api.domain.referrals import PEER_SUPPORT_SERVICES
from api.integrations.fhir.resources.datatypes import Json
from api.integrations.fhir.resources.subscriptions import (
    SUBSCRIPTION_DOCUMENTATION,
    subscription_capability,
)
from api.integrations.fhir.rest.conditional_create import CONDITIONAL_CREATE
from api.integrations.fhir.rest.search_parameters import (
    INCLUDES,
    REVINCLUDES,
    SEARCH_PARAMS,
    SORT_DOCUMENTATION,
    SORTABLE,
)

# resource type → interactions. Reads go through the consent rule; creates and updates through
# the same services as GraphQL.
INTERACTIONS: dict[str, tuple[str, ...]] = {
    "ServiceRequest": ("read", "vread", "search-type", "create"),
    "Task": ("read", "vread", "search-type", "create", "update"),
    "Procedure": ("read", "vread", "search-type", "create", "update"),
    "Patient": ("read", "vread", "search-type", "create"),
    "Consent": ("read", "vread", "search-type", "create", "update"),
    "DocumentReference": ("read", "vread", "search-type", "create"),
    "HealthcareService": ("read", "vread", "search-type"),
    "Location": ("read", "vread", "search-type", "create", "update"),
    "Practitioner": ("read", "vread", "search-type"),
    "PractitionerRole": ("read", "vread", "search-type"),
    "Organization": ("read", "vread", "search-type"),
    "Observation": ("read", "vread", "search-type"),
    "QuestionnaireResponse": ("read", "vread", "search-type", "create"),
    "Encounter": ("read", "vread", "search-type", "create"),
    "AuditEvent": ("read", "search-type"),
    "Subscription": ("read", "search-type", "create", "delete"),
}
_SERVICES = ", ".join(f"{code} {name}" for code, name in PEER_SUPPORT_SERVICES.items())
_DOCS = {
    "ServiceRequest": "Create: a clinic's (or peer organization's) order, kept as sent: every "
    "element is stored and read back as sent, or the request is refused naming it (422). code "
    f"carries a peer-support or behavioural-health service, SNOMED CT: {_SERVICES}. requester "
    "is the caller's Organization or one of its PractitionerRole / Practitioner (the requesting "
    "organization stays the caller's); supportingInfo may cite the Consent that permits the "
    "referral; doNotPerform true is refused. The Task follows with its own POST (or in the "
    "same transaction).",
    "Task": "Create: the requester, once per ServiceRequest created over FHIR (a referral "
    "created through GraphQL has its Task); a second POST is refused naming Task.focus. "
    "Update: the author (requester) may change status (cancel), statusReason and "
    "priority; the owner (performer) only status, statusReason, output and the "
    'assigned-supporter extension. Status moves follow the referral state machine; If-Match W/"'
    '<version>" is honoured (412 on mismatch). output lists the Procedures recorded for the '
    "referral; an update may name only those (e.g. one created earlier in the same "
    "transaction).",
    "Consent": "Update revokes (status inactive); nothing else changes. The source is the "
    "signed form as sourceReference (a DocumentReference recorded here) or sourceAttachment "
    "(a URL).",
    "DocumentReference": "The signed consent form a Consent cites. Create: the organization "
    "holding the patient's record; one attachment with contentType (application/pdf, "
    "image/jpeg, image/png, image/tiff, text/plain) and either a url or base64 data of at most "
    "1 MiB (bigger: 413). Read and search: that organization and the parties to a consent "
    "citing the form.",
    "Encounter": "Read: session Encounters and attendance Encounters (one per attendee). "
    "Search: attendance by patient.",
    "Procedure": "What a referral's performer delivered (the Task's output). Create: the "
    "referral's performer, while the referral is in-progress or completed; status in-progress, "
    "completed or not-done; code HCPCS H0038 or SNOMED CT; billed 15-minute units in the "
    "billing extension. Left out, units and performedPeriod come from the attendance recorded "
    "for the referral. Patient data in it follows the referral's consent (redacted stub "
    "otherwise). Creates honour an Idempotency-Key header. Update: the organization that "
    "recorded it, with the same checks; basedOn, subject and performer Organization cannot "
    'change; If-Match W/"<version>" is honoured (412 on mismatch).',
    "HealthcareService": "A peer program; location lists where it meets (Location).",
    "Location": "Where peer programs meet. Create and update: a peer organization, for its "
    "own locations (managingOrganization, if sent, is the caller's organization); If-Match "
    'W/"<version>" is honoured (412 on mismatch). name, description, status, mode, '
    "physicalType, address, telecom and position are modelled (a part of them PeerBridge "
    "does not model, e.g. an extension inside address, is refused by path); every other "
    "element is kept as sent. Search: name and address-postalcode match from the start "
    "(name:exact matches whole), address-city and address-state match whole, all "
    "case-insensitively.",
    "Subscription": SUBSCRIPTION_DOCUMENTATION,
    "AuditEvent": "The accounting of disclosures: the patient's holding organization sees every "
    "access to the patient's data, other organizations their own accesses.",
}
_UPDATED_INTERACTIONS = {"update"}
_NO_HISTORY = {"AuditEvent"}  # append-only records without versions
_REST_DOCS = (
    "Search: unknown parameters are refused (400); _count is capped at 100; next links carry "
    "a keyset _cursor; total is given when the result fits one page. Where _sort is listed, "
    "_sort=_lastUpdated walks oldest change first: a resource that changes during the walk "
    "moves to its end and is met again, so polling never misses one. Consent is enforced on "
    "every read: a revoked consent hides the patient's data on the next request. Read and "
    'vread answer 304 to If-None-Match W/"<versionId>" or If-Modified-Since when nothing '
    "changed (never for a redacted answer, a Task with output or a Consent with an end date)."
)


def capability_statement(base_url: str, token_url: str, software_version: str) -> Json:
    resources = []
    for kind, interactions in INTERACTIONS.items():
        entry: Json = {
            "type": kind,
            "interaction": [{"code": code} for code in interactions],
            "versioning": "versioned-update"
            if _UPDATED_INTERACTIONS & set(interactions)
            else "no-version"
            if kind in _NO_HISTORY
            else "versioned",
            "readHistory": False,
            "conditionalRead": "full-support",  # If-None-Match and If-Modified-Since → 304
            "updateCreate": False,
            "conditionalCreate": kind in CONDITIONAL_CREATE,
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
            "searchParam": [
                {
                    "name": p.name,
                    **({"definition": p.definition} if p.definition else {}),
                    "type": p.kind.value,
                    "documentation": p.documentation,
                }
                for p in SEARCH_PARAMS.get(kind, ())
            ]
            + (
                [{"name": "_sort", "type": "special", "documentation": SORT_DOCUMENTATION}]
                if kind in SORTABLE
                else []
            ),
        }
        documentation = [_DOCS[kind]] if kind in _DOCS else []
        if kind in CONDITIONAL_CREATE:
            documentation.append(f"Conditional create: {CONDITIONAL_CREATE[kind].documentation}.")
        if documentation:
            entry["documentation"] = " ".join(documentation)
        if kind in INCLUDES:
            entry["searchInclude"] = list(INCLUDES[kind])
        if kind in REVINCLUDES:
            entry["searchRevInclude"] = list(REVINCLUDES[kind])
        if not entry["searchParam"]:
            del entry["searchParam"]
        if kind == "Subscription":
            entry.update(subscription_capability())
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "id": "peerbridge",
        "url": f"{base_url}/metadata",
        "name": "PeerBridge",
        "title": "PeerBridge FHIR R4 API (Gravity Coordination Platform role)",
        "status": "active",
        "date": "2026-11-25",
        "publisher": "PeerBridge",
        "kind": "instance",
        "instantiates": [
            "http://hl7.org/fhir/us/sdoh-clinicalcare/CapabilityStatement/SDOHCC-CoordinationPlatform"
        ],
        "software": {"name": "PeerBridge", "version": software_version},
        "implementation": {"description": "PeerBridge FHIR door", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": _REST_DOCS,
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [{"url": "token", "valueUri": token_url}],
                        }
                    ],
                    "description": "SMART Backend Services (private_key_jwt) or client secret; "
                    "SMART v2 scopes on the FHIR type.",
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
            }
        ],
    }
