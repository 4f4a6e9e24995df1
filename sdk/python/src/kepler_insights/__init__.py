"""Kepler Insights: the Python SDK of the Kepler domain-scoring API.

    from kepler_insights import Client, RateLimitError

    with Client("ki_live_...", base_url="https://kepler.example") as kepler:
        try:
            record = kepler.score("example.com")   # posts, polls a cold run, returns the record
        except RateLimitError as limit:
            print(f"{limit.code}: retry in {limit.retry_after}s")
"""

from ._core import DEFAULT_BASE_URL, RetryPolicy
from ._version import __version__
from .async_client import AsyncClient
from .client import Client
from .errors import (
    AccountBreakerOpenError,
    APIConnectionError,
    APIError,
    AuthenticationError,
    ColdBudgetExhaustedError,
    ForbiddenError,
    ForceFreshNotAllowedError,
    FreeTierSandboxOnlyError,
    IdempotencyKeyInUseError,
    IdempotencyKeyReusedError,
    InvalidDomainError,
    InvalidInputError,
    InvalidRequestError,
    JobFailedError,
    JobNotFoundError,
    KeplerError,
    KeyHourlyColdLimitError,
    NotFoundError,
    NotScoredError,
    PayloadTooLargeError,
    PollTimeoutError,
    RateLimitError,
    SandboxDomainUnknownError,
    ServerError,
    ServiceUnavailableError,
    UnexpectedResponseError,
)
from .models import (
    Category,
    Check,
    Job,
    JobStatus,
    MonthUsage,
    ResultRef,
    ScoreRecord,
    Usage,
    WindowUsage,
)

__all__ = [
    "__version__",
    "DEFAULT_BASE_URL",
    "RetryPolicy",
    "Client",
    "AsyncClient",
    "ScoreRecord",
    "Category",
    "Check",
    "Job",
    "JobStatus",
    "ResultRef",
    "Usage",
    "MonthUsage",
    "WindowUsage",
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
    "IdempotencyKeyInUseError",
    "IdempotencyKeyReusedError",
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
