"""One hierarchy of domain errors, each with a stable code the doors map to their wire format."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class DomainError(Exception):
    """Base of every error a user can cause; `str()` is safe to show (never holds PHI)."""

    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Forbidden(DomainError):
    """The caller lacks the scope or the tenancy for this action."""

    code = "FORBIDDEN"

    def __init__(self, message: str, *, needed_scope: str | None = None) -> None:
        super().__init__(message)
        self.needed_scope = needed_scope


class ConsentRequired(DomainError):
    """No active consent of the patient covers this disclosure."""

    code = "CONSENT_REQUIRED"


class ConsentRevoked(ConsentRequired):
    """A consent that once covered this disclosure is no longer in force."""

    code = "CONSENT_REVOKED"


class NotFound(DomainError):
    code = "NOT_FOUND"

    def __init__(self, resource_type: str, resource_id: object) -> None:
        super().__init__(f"{resource_type} {resource_id} not found")
        self.resource_type = resource_type
        self.resource_id = str(resource_id)


class Conflict(DomainError):
    """A stale version, a duplicate, or an idempotency key reused with another request."""

    code = "CONFLICT"


class VersionConflict(Conflict):
    def __init__(self, resource_type: str, expected: int, actual: int) -> None:
        super().__init__(
            f"{resource_type} is at version {actual}, the request expected version {expected}"
        )
        self.expected = expected
        self.actual = actual


class IdempotencyKeyInUse(Conflict):
    """Another request with this idempotency key is still running: retrying shortly gets its
    answer (or, if it failed and stored nothing, runs the request anew)."""

    code = "IDEMPOTENCY_KEY_IN_USE"


@dataclass(frozen=True)
class InvalidDetail:
    """One problem with the input: where (a dotted field path) and what."""

    field: str
    message: str


class Invalid(DomainError):
    code = "INVALID_INPUT"

    def __init__(self, details: Sequence[InvalidDetail] | str, field: str = "") -> None:
        if isinstance(details, str):
            details = [InvalidDetail(field, details)]
        self.details = tuple(details)
        super().__init__("; ".join(_describe(d) for d in self.details))


def _describe(detail: InvalidDetail) -> str:
    return f"{detail.field}: {detail.message}" if detail.field else detail.message


class MalformedRequest(Invalid):
    """The request itself cannot be read (not JSON, nested too deep, an unusable header or
    parameter): HTTP 400 on either door, before any use case runs."""

    code = "INVALID_REQUEST"


class NotSupported(DomainError):
    """This address does not take this method (HTTP 405)."""

    code = "NOT_SUPPORTED"


class UnknownAddress(DomainError):
    """Nothing is served at this address (HTTP 404); `NotFound` is for records."""

    code = "NOT_FOUND"


class UnsupportedMediaType(DomainError):
    """The body's content type is not one this door reads (HTTP 415)."""

    code = "UNSUPPORTED_MEDIA_TYPE"


class InvalidTransition(DomainError):
    code = "INVALID_TRANSITION"


class EventsDropped(DomainError):
    """A live event stream ended early (the subscriber fell behind, or the server lost its
    event source): resubscribe from the last event's cursor to get what followed it."""

    code = "EVENTS_DROPPED"


class EventsExpired(DomainError):
    """A resume cursor names an event the server no longer holds (past the retention window):
    what followed it cannot be replayed in full; catch up with a query instead."""

    code = "EVENTS_EXPIRED"


class SupporterUnavailable(DomainError):
    """The supporter cannot take this referral (certification or caseload)."""

    code = "SUPPORTER_UNAVAILABLE"


class Retryable(DomainError):
    """Refused for now, not for good: the same request may succeed after `retry_after_s`
    seconds (the doors answer `Retry-After`)."""

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class RateLimited(Retryable):
    """The client sent more requests than its rate limit allows."""

    code = "RATE_LIMITED"


class Unavailable(Retryable):
    """The database cannot be reached or has no free connection right now (HTTP 503)."""

    code = "UNAVAILABLE"


class TooLarge(Invalid):
    """The input is well formed but bigger than this server accepts (e.g. an inline file)."""

    code = "TOO_LARGE"
