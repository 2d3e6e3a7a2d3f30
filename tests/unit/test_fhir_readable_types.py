"""Every type the CapabilityStatement says can be read is one `_include` may bring in."""

from __future__ import annotations

from api.integrations.fhir.rest.capability import INTERACTIONS
from api.integrations.fhir.rest.reads import READABLE


def test_readable_types_are_the_ones_with_a_read_interaction() -> None:
    # A Subscription is read through its own handler: no record references one.
    readable = {kind for kind, done in INTERACTIONS.items() if "read" in done}
    assert readable - {"Subscription"} == READABLE
