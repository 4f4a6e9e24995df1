"""What the sync and async clients share: settings, requests, answers, retries, polling.

Everything here is free of I/O, so `Client` and `AsyncClient` differ only in how they
send a request and how they sleep.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from ._parse import retry_after_seconds
from ._version import __version__
from .errors import (
    APIConnectionError,
    APIError,
    JobFailedError,
    PollTimeoutError,
    UnexpectedResponseError,
    error_class,
)
from .models import Job, JobStatus, ScoreRecord

DEFAULT_BASE_URL = "http://127.0.0.1:8080"
USER_AGENT = f"kepler-insights-python/{__version__} httpx/{httpx.__version__}"

# Statuses worth another try: the store is briefly away, or a proxy could not reach the API.
RETRYABLE_STATUSES = frozenset({502, 503, 504})
# Codes worth another try: the same request under the same key is still being answered,
# so a later try replays its answer.
RETRYABLE_CODES = frozenset({"idempotency_key_in_use"})


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of transient failures (connection errors, 409 key in use, 502/503/504); never of others.

    Pauses grow exponentially from `backoff` with jitter, capped at `max_backoff`; a
    `Retry-After` is honoured when it is within `max_backoff`, and ends the retries
    when it is longer (the error then carries it for the caller to decide).
    """

    max_retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 10.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("max_retries, backoff and max_backoff must not be negative")

    def pause(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry `attempt + 1`, or None to give up."""
        if attempt >= self.max_retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_backoff else None
        ceiling = min(self.max_backoff, self.backoff * (2.0**attempt))
        # "Equal jitter": at least half the ceiling, so pauses still grow, but spread out.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class Settings:
    """A client's resolved configuration."""

    api_key: str
    base_url: str
    timeout: float
    retry: RetryPolicy
    headers: dict[str, str]


def resolve_settings(
    api_key: str | None,
    base_url: str | None,
    timeout: float,
    max_retries: int,
    backoff: float,
    max_backoff: float,
    headers: dict[str, str] | None,
) -> Settings:
    """Applies the environment defaults (`KEPLER_API_KEY`, `KEPLER_URL`) and checks the values."""
    key = api_key if api_key is not None else os.environ.get("KEPLER_API_KEY")
    if not key:
        raise ValueError("an API key is needed: pass api_key=... or set KEPLER_API_KEY")
    url = base_url or os.environ.get("KEPLER_URL") or DEFAULT_BASE_URL
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {url!r}")
    if timeout <= 0:
        raise ValueError("timeout must be positive")
    merged = {
        "User-Agent": USER_AGENT,
        "Accept": "application/json, application/problem+json",
        **(headers or {}),
        "X-API-Key": key,
    }
    return Settings(
        api_key=key,
        base_url=url.rstrip("/"),
        timeout=timeout,
        retry=RetryPolicy(max_retries=max_retries, backoff=backoff, max_backoff=max_backoff),
        headers=merged,
    )


# ---- requests ------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    json: dict[str, Any] | None = None
    headers: dict[str, str] | None = None


def score_request(domain: str, force_fresh: bool, idempotency_key: str | None) -> Request:
    """`POST /v1/score` with an Idempotency-Key, generated when the caller gave none,
    so that the SDK's own retries replay the first answer instead of charging twice."""
    key = idempotency_key or str(uuid.uuid4())
    return Request(
        "POST",
        "/v1/score",
        json={"domain": domain, "force_fresh": force_fresh},
        headers={"Idempotency-Key": key},
    )


def job_request(job_id: str) -> Request:
    return Request("GET", f"/v1/jobs/{quote(job_id, safe='')}")


def record_request(domain: str) -> Request:
    return Request("GET", f"/v1/score/{quote(domain, safe='')}")


def usage_request() -> Request:
    return Request("GET", "/v1/usage")


# ---- answers -------------------------------------------------------------------


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise UnexpectedResponseError(
            f"{response.request.method} {response.request.url.path}: the answer is not JSON",
            status=response.status_code,
        ) from exc


def retry_after_of(response: httpx.Response) -> float | None:
    return retry_after_seconds(response.headers.get("Retry-After"))


def error_from(response: httpx.Response) -> APIError:
    """The exception for an error answer, read from its problem document.

    A body that is not a problem document (a proxy's HTML page) still gives an error
    of the right broad class, with code `http_<status>`.
    """
    status = response.status_code
    try:
        parsed = response.json()
    except ValueError:
        parsed = None
    body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
    code = body.get("error")
    if not isinstance(code, str) or not code:
        code = f"http_{status}"
    detail = body.get("detail") or body.get("message") or body.get("title")
    if not isinstance(detail, str) or not detail:
        text = response.text.strip() if parsed is None else ""
        detail = text[:200] if text else (response.reason_phrase or f"HTTP {status}")
    cls = error_class(code, status)
    return cls(
        detail,
        code=code,
        status=status,
        body=body,
        request_id=response.headers.get("Request-Id"),
        retry_after=retry_after_of(response),
    )


def score_answer(response: httpx.Response) -> tuple[ScoreRecord | Job, float | None]:
    """A successful `POST /v1/score`: 200 is the record, 202 the job to poll (and its Retry-After)."""
    document = json_body(response)
    if response.status_code == 202:
        return Job.from_dict(document), retry_after_of(response)
    return ScoreRecord.from_dict(document), None


# ---- retries -------------------------------------------------------------------


def is_transient(exc: httpx.TransportError) -> bool:
    """Failures a retry can cure; a bad URL or proxy setting is not one."""
    return isinstance(exc, (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError))


def pause_after_exception(
    policy: RetryPolicy, attempt: int, request: Request, exc: httpx.TransportError
) -> float:
    """How long to pause before retrying a request that raised; raises when it should not be retried."""
    pause = policy.pause(attempt, None) if is_transient(exc) else None
    if pause is None:
        tries = attempt + 1
        raise APIConnectionError(
            f"{request.method} {request.path} failed after {tries} attempt{'s' * (tries > 1)}: "
            f"{exc!r}"
        ) from exc
    return pause


def pause_after_answer(policy: RetryPolicy, attempt: int, response: httpx.Response) -> float:
    """How long to pause before retrying an error answer; raises its error when it should not be retried."""
    error = error_from(response)
    pause = (
        policy.pause(attempt, error.retry_after)
        if response.status_code in RETRYABLE_STATUSES or error.code in RETRYABLE_CODES
        else None
    )
    if pause is None:
        raise error
    return pause


def is_success(response: httpx.Response) -> bool:
    return 200 <= response.status_code < 300


# ---- polling -------------------------------------------------------------------


class Poll:
    """The clock of one wait for a job: the caller's interval and overall deadline."""

    def __init__(self, poll_interval: float, timeout: float | None) -> None:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must not be negative")
        self.poll_interval = poll_interval
        self.started = time.monotonic()
        self.deadline = None if timeout is None else self.started + timeout

    def next_pause(self, retry_after: float | None) -> float:
        """The server's Retry-After wins when it gives one; else the caller's interval."""
        if retry_after is not None and retry_after > 0:
            return retry_after
        return self.poll_interval

    def bounded(self, pause: float, job: Job) -> float:
        """`pause`, shortened to end at the deadline; PollTimeoutError once it has passed."""
        if self.deadline is None:
            return pause
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise PollTimeoutError(job, self.waited())
        return min(pause, remaining)

    def waited(self) -> float:
        return time.monotonic() - self.started


def settled_domain(job: Job) -> str:
    """The domain whose record a settled job points at; JobFailedError when the run failed."""
    if job.status == JobStatus.FAILED:
        raise JobFailedError(job)
    if job.status != JobStatus.COMPLETE:
        raise UnexpectedResponseError(f"job {job.job_id} has an unknown status {job.status!r}")
    return job.result_ref.domain if job.result_ref is not None else job.domain
