"""Every failure the SDK reports, as one exception tree rooted at `KeplerError`.

API errors carry the stable `error` code of the problem document (API.md), the HTTP
status and the human `detail`. Catch a broad class (`RateLimitError`, `InvalidInputError`)
or a precise one (`ColdBudgetExhaustedError`); the code is on every instance either way.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._parse import optional_datetime, optional_int

if TYPE_CHECKING:
    from .models import Job

__all__ = [
    "KeplerError",
    "APIError",
    "APIConnectionError",
    "UnexpectedResponseError",
    "AuthenticationError",
    "InvalidInputError",
    "InvalidRequestError",
    "InvalidDomainError",
    "PayloadTooLargeError",
    "SandboxDomainUnknownError",
    "IdempotencyKeyReusedError",
    "IdempotencyKeyInUseError",
    "ForbiddenError",
    "ForceFreshNotAllowedError",
    "FreeTierSandboxOnlyError",
    "RateLimitError",
    "ColdBudgetExhaustedError",
    "KeyHourlyColdLimitError",
    "AccountBreakerOpenError",
    "NotFoundError",
    "JobNotFoundError",
    "NotScoredError",
    "ServerError",
    "ServiceUnavailableError",
    "JobFailedError",
    "PollTimeoutError",
]


class KeplerError(Exception):
    """Base of every SDK error.

    `code` is the API's stable error code (or an SDK code such as `job_failed`),
    `status` the HTTP status when the error is an HTTP answer (else None), `detail`
    a sentence for humans.
    """

    code: str
    status: int | None
    detail: str
    retry_after: float | None

    def __init__(
        self,
        detail: str,
        *,
        code: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status
        self.detail = detail
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = f" (HTTP {self.status})" if self.status is not None else ""
        return f"{self.code}{where}: {self.detail}"


class APIError(KeplerError):
    """An error answer from the API: a problem document with a stable `error` code.

    `body` is the whole decoded document (unknown fields included), `title` and
    `type` its RFC 9457 members, `request_id` the `Request-Id` header to quote to
    support, `retry_after` the `Retry-After` header in seconds when there was one.
    """

    body: dict[str, Any]
    title: str | None
    type: str | None
    request_id: str | None

    def __init__(
        self,
        detail: str,
        *,
        code: str,
        status: int,
        body: dict[str, Any] | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail, code=code, status=status, retry_after=retry_after)
        self.body = dict(body or {})
        title = self.body.get("title")
        kind = self.body.get("type")
        self.title = title if isinstance(title, str) else None
        self.type = kind if isinstance(kind, str) else None
        self.request_id = request_id


class APIConnectionError(KeplerError):
    """The API could not be reached (after the SDK's retries): DNS, refused, reset, timed out."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, code="connection_error")


class UnexpectedResponseError(KeplerError):
    """The API answered something this SDK cannot read (not JSON, a required field missing)."""

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail, code="unexpected_response", status=status)


class AuthenticationError(APIError):
    """401 `invalid_api_key`: the key is missing, unknown or revoked."""


class InvalidInputError(APIError):
    """A 4xx the caller can fix by changing the request (domain, body, idempotency key)."""


class InvalidRequestError(InvalidInputError):
    """400 `invalid_request`: malformed JSON or a missing field."""


class InvalidDomainError(InvalidInputError):
    """400 `invalid_domain`: not a hostname Kepler can score (an IP, a URL, one label...)."""


class PayloadTooLargeError(InvalidInputError):
    """413 `payload_too_large`: the body is over 16 KiB."""


class SandboxDomainUnknownError(InvalidInputError):
    """400 `sandbox_domain_unknown`: sandbox keys answer only the canned domains, listed in `sandbox_domains`."""

    sandbox_domains: list[str]

    def __init__(self, detail: str, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        listed = self.body.get("sandbox_domains")
        self.sandbox_domains = (
            [d for d in listed if isinstance(d, str)] if isinstance(listed, list) else []
        )


class IdempotencyKeyReusedError(InvalidInputError):
    """422 `idempotency_key_reused`: the same Idempotency-Key came with a different body."""


class IdempotencyKeyInUseError(APIError):
    """409 `idempotency_key_in_use`: a request with this Idempotency-Key is still being
    answered; still so after the SDK's retries. Retrying later under the same key replays
    its answer.
    """


class ForbiddenError(APIError, builtins.PermissionError):
    """403: the account's tier does not allow this; `tier` names it.

    Also a builtin `PermissionError`, so generic handlers catch it too.
    """

    tier: str | None

    def __init__(self, detail: str, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        tier = self.body.get("tier")
        self.tier = tier if isinstance(tier, str) else None


class ForceFreshNotAllowedError(ForbiddenError):
    """403 `force_fresh_not_allowed`: only tiers with force_fresh may skip the cache."""


class FreeTierSandboxOnlyError(ForbiddenError):
    """403 `free_tier_sandbox_only`: the free tier gets cached records and the sandbox, no cold runs."""


class RateLimitError(APIError):
    """429: a cold-call limit is reached.

    `retry_after` (seconds, from the header) says when to try again; `limit`,
    `used` and `resets_at` come from the body when it has them.
    """

    limit: int | None
    used: int | None
    resets_at: datetime | None

    def __init__(self, detail: str, **kwargs: Any) -> None:
        super().__init__(detail, **kwargs)
        self.limit = optional_int(self.body.get("limit"))
        self.used = optional_int(self.body.get("used"))
        self.resets_at = optional_datetime(self.body.get("resets_at"))


class ColdBudgetExhaustedError(RateLimitError):
    """429 `cold_budget_exhausted`: the account's monthly cold-call cap is spent."""


class KeyHourlyColdLimitError(RateLimitError):
    """429 `key_hourly_cold_limit`: this key's cold calls in the last hour hit its limit."""


class AccountBreakerOpenError(RateLimitError):
    """429 `account_breaker_open`: the account's 24-hour cold-call breaker is open."""


class NotFoundError(APIError):
    """404: the thing asked for does not exist (for this account)."""


class JobNotFoundError(NotFoundError):
    """404 `job_not_found`: no such job for this account."""


class NotScoredError(NotFoundError):
    """404 `not_scored`: the domain has no stored record yet; `score()` starts a run."""


class ServerError(APIError):
    """5xx: the API failed; not the caller's fault."""


class ServiceUnavailableError(ServerError):
    """503 (`store_unavailable`, or a proxy's 502/504): still failing after the SDK's retries.

    `retry_after` says when the API expects to be back, when it said so.
    """


class JobFailedError(KeplerError):
    """The cold run settled as `failed`; `failure_reason` is its stable code
    (`timeout`, `domain_not_resolvable`, `private_address_refused`, `engine_error`, ...)."""

    failure_reason: str
    job: Job

    def __init__(self, job: Job) -> None:
        reason = job.failure_reason or "unknown"
        super().__init__(
            f"the run for {job.domain} (job {job.job_id}) failed: {reason}",
            code="job_failed",
        )
        self.failure_reason = reason
        self.job = job


class PollTimeoutError(KeplerError, builtins.TimeoutError):
    """Polling gave up before the job settled. The run goes on server-side:
    `wait_for_score(error.job.job_id)` picks it up again, and is not charged again.

    Also a builtin `TimeoutError`.
    """

    job: Job

    def __init__(self, job: Job, waited: float) -> None:
        super().__init__(
            f"job {job.job_id} for {job.domain} was still {job.status} after {waited:.1f}s",
            code="poll_timeout",
        )
        self.job = job


# The stable codes of API.md (and the server's own extras), each to its class.
_BY_CODE: dict[str, type[APIError]] = {
    "invalid_api_key": AuthenticationError,
    "invalid_request": InvalidRequestError,
    "invalid_domain": InvalidDomainError,
    "payload_too_large": PayloadTooLargeError,
    "sandbox_domain_unknown": SandboxDomainUnknownError,
    "idempotency_key_reused": IdempotencyKeyReusedError,
    "idempotency_key_in_use": IdempotencyKeyInUseError,
    "force_fresh_not_allowed": ForceFreshNotAllowedError,
    "free_tier_sandbox_only": FreeTierSandboxOnlyError,
    "cold_budget_exhausted": ColdBudgetExhaustedError,
    "key_hourly_cold_limit": KeyHourlyColdLimitError,
    "account_breaker_open": AccountBreakerOpenError,
    "job_not_found": JobNotFoundError,
    "not_scored": NotScoredError,
    "not_found": NotFoundError,
    "method_not_allowed": InvalidRequestError,
    "store_unavailable": ServiceUnavailableError,
    "internal_error": ServerError,
}

# A code this SDK does not know yet still lands in the right broad class.
_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidInputError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    405: InvalidRequestError,
    409: InvalidInputError,
    413: PayloadTooLargeError,
    422: InvalidInputError,
    429: RateLimitError,
    502: ServiceUnavailableError,
    503: ServiceUnavailableError,
    504: ServiceUnavailableError,
}


def error_class(code: str, status: int) -> type[APIError]:
    """The exception class for an error answer: by code first, then by status."""
    known = _BY_CODE.get(code)
    if known is not None:
        return known
    by_status = _BY_STATUS.get(status)
    if by_status is not None:
        return by_status
    if status >= 500:
        return ServerError
    if 400 <= status < 500:
        return InvalidInputError
    return APIError
