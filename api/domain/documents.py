"""The signed consent form a Consent cites as its source (FHIR DocumentReference): a link to
where the clinic keeps it, or the file itself, small and of a known type."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from api.domain import text
from api.domain.errors import Invalid, InvalidDetail, TooLarge
from api.domain.verbatim import Verbatim, nothing_kept

MAX_CONTENT_BYTES = 1024 * 1024  # inline forms; bigger ones are linked by url
CONTENT_TYPES = frozenset(
    {"application/pdf", "image/jpeg", "image/png", "image/tiff", "text/plain"}
)


@dataclass(frozen=True)
class ConsentForm:
    id: UUID
    patient_id: UUID
    organization_id: UUID  # the organization holding the patient's record (custodian, author)
    content_type: str
    title: str | None
    url: str | None  # exactly one of url and data
    data: bytes | None
    version: int
    created_at: datetime
    updated_at: datetime
    verbatim: Verbatim = field(default_factory=nothing_kept)  # elements kept as sent

    @property
    def size(self) -> int | None:
        return len(self.data) if self.data is not None else None

    @property
    def sha1(self) -> str | None:
        """Base64 of the SHA-1 of the content, as FHIR Attachment.hash carries it."""
        if self.data is None:
            return None
        return base64.b64encode(hashlib.sha1(self.data, usedforsecurity=False).digest()).decode()


_SOURCE_PREFIX = "DocumentReference/"


def source_reference_of(form_id: UUID) -> str:
    """How a Consent's source names a form recorded here (FHIR: Consent.sourceReference)."""
    return f"{_SOURCE_PREFIX}{form_id}"


def form_id_in(source_reference: str | None) -> UUID | None:
    """The recorded form a consent's source names, or None for another source (e.g. a URL)."""
    if not source_reference or not source_reference.startswith(_SOURCE_PREFIX):
        return None
    try:
        return UUID(source_reference.removeprefix(_SOURCE_PREFIX))
    except ValueError:
        return None


def check_content(
    content_type: str, title: str | None, url: str | None, data: bytes | None
) -> None:
    """A known type, a url or the bytes (never both, never neither), within the size cap."""
    if data is not None and len(data) > MAX_CONTENT_BYTES:
        raise TooLarge(
            f"inline content is limited to {MAX_CONTENT_BYTES} bytes; link bigger files by url",
            field="data",
        )
    problems = []
    if content_type not in CONTENT_TYPES:
        problems.append(InvalidDetail("contentType", "one of " + ", ".join(sorted(CONTENT_TYPES))))
    if (url is None) == (data is None):
        problems.append(InvalidDetail("url", "give either a url or the data, not both"))
    if url is not None and not url.startswith(("https://", "http://")):
        problems.append(InvalidDetail("url", "an absolute http(s) URL"))
    if data is not None and not data:
        problems.append(InvalidDetail("data", "the content is empty"))
    if title is not None and not title.strip():
        problems.append(InvalidDetail("title", "must not be empty"))
    problems += text.texts_problems([("url", url, text.URI), ("title", title, text.SHORT)])
    if problems:
        raise Invalid(problems)
