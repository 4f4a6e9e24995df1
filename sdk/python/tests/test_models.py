"""Reading API documents: tolerant of additions, strict about what a result needs."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from kepler_insights import (
    AccountBreakerOpenError,
    APIError,
    AuthenticationError,
    ForbiddenError,
    InvalidInputError,
    Job,
    NotFoundError,
    RateLimitError,
    ScoreRecord,
    ServerError,
    ServiceUnavailableError,
    UnexpectedResponseError,
    Usage,
)
from kepler_insights._core import error_from
from kepler_insights._parse import optional_datetime, retry_after_seconds

RECORD = {
    "domain": "example.com",
    "score": 87,
    "grade": "B+",
    "scored_at": "2026-11-28T12:00:00Z",
    "engine_version": "2026.11.1",
    "cached": False,
    "caps": ["bad_certificate"],
    "categories": [
        {
            "id": "http_headers",
            "score": 80,
            "weight": 25,
            "checks": [
                {"id": "hsts", "status": "pass", "points": 0, "evidence": "max-age=63072000",
                 "recommendation": "", "result": "hsts-implemented", "since": "2026"}
            ],
        },
        {"id": "dns", "score": None, "weight": 15, "checks": []},
    ],
    "new_field": {"nested": True},
}


def test_a_record_keeps_unknown_fields_in_extra() -> None:
    record = ScoreRecord.from_dict(RECORD)
    assert (record.score, record.grade, record.caps) == (87, "B+", ["bad_certificate"])
    assert record.scored_at == datetime(2026, 11, 28, 12, tzinfo=timezone.utc)
    assert record.extra == {"new_field": {"nested": True}}
    assert record.raw == RECORD
    headers = record.category("http_headers")
    assert headers is not None and headers.weight == 25
    hsts = headers.check("hsts")
    assert hsts is not None and hsts.result == "hsts-implemented" and hsts.extra == {"since": "2026"}
    dns = record.category("dns")
    assert dns is not None and dns.score is None
    assert record.fresh_for_tier is None


@pytest.mark.parametrize("missing", ["domain", "score", "grade", "scored_at"])
def test_a_record_without_a_required_field_is_unexpected(missing: str) -> None:
    document = {k: v for k, v in RECORD.items() if k != missing}
    with pytest.raises(UnexpectedResponseError, match=missing):
        ScoreRecord.from_dict(document)


def test_not_an_object_is_unexpected() -> None:
    with pytest.raises(UnexpectedResponseError):
        Job.from_dict(["job"])


def test_a_job_with_a_status_from_the_future_is_just_not_settled() -> None:
    job = Job.from_dict({"job_id": "j", "status": "queued_elsewhere", "domain": "a.test"})
    assert not job.is_settled
    assert job.created_at is None and job.result_ref is None


def test_usage_reads_nested_windows() -> None:
    usage = Usage.from_dict({
        "account_id": "a", "tier": "starter",
        "month": {"cold_calls": 3, "cap": 100, "remaining": 97, "cost_usd": 0.24, "resets_at": "2026-12-01T00:00:00Z"},
        "key_hour": {"cold_calls": 3, "limit": 200, "resets_at": "2026-11-29T04:00:00Z"},
        "account_day": {"cold_calls": 3, "limit": 100, "resets_at": "2026-11-30T03:00:00+00:00", "burst": 1},
    })
    assert usage.month.remaining == 97 and usage.month.cost_usd == pytest.approx(0.24)
    assert usage.account_day.extra == {"burst": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-29T03:32:49Z", datetime(2026, 11, 29, 3, 32, 49, tzinfo=timezone.utc)),
        ("2026-11-29T03:32:49.925Z", datetime(2026, 11, 29, 3, 32, 49, 925000, tzinfo=timezone.utc)),
        ("2026-11-29T03:32:49.123456789Z", datetime(2026, 11, 29, 3, 32, 49, 123456, tzinfo=timezone.utc)),
        ("2026-11-29T04:32:49+01:00", datetime(2026, 11, 29, 3, 32, 49, tzinfo=timezone.utc)),
        ("yesterday", None),
        (1700000000, None),
    ],
)
def test_timestamps(text: object, expected: datetime | None) -> None:
    assert optional_datetime(text) == expected


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 11, 29, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("Sun, 29 Nov 2026 12:00:30 GMT", now) == 30
    assert retry_after_seconds("Sun, 29 Nov 2026 11:00:00 GMT", now) == 0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def answer(status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers, request=httpx.Request("GET", "http://k/v1/usage"))


def test_every_code_of_the_contract_has_its_class() -> None:
    import kepler_insights as k

    expected = {
        "invalid_api_key": (401, k.AuthenticationError),
        "invalid_request": (400, k.InvalidRequestError),
        "invalid_domain": (400, k.InvalidDomainError),
        "payload_too_large": (413, k.PayloadTooLargeError),
        "sandbox_domain_unknown": (400, k.SandboxDomainUnknownError),
        "force_fresh_not_allowed": (403, k.ForceFreshNotAllowedError),
        "free_tier_sandbox_only": (403, k.FreeTierSandboxOnlyError),
        "cold_budget_exhausted": (429, k.ColdBudgetExhaustedError),
        "key_hourly_cold_limit": (429, k.KeyHourlyColdLimitError),
        "account_breaker_open": (429, k.AccountBreakerOpenError),
        "idempotency_key_reused": (422, k.IdempotencyKeyReusedError),
        "job_not_found": (404, k.JobNotFoundError),
        "not_scored": (404, k.NotScoredError),
        "not_found": (404, k.NotFoundError),
        "method_not_allowed": (405, k.InvalidRequestError),
        "store_unavailable": (503, k.ServiceUnavailableError),
        "internal_error": (500, k.ServerError),
    }
    for code, (status, cls) in expected.items():
        error = error_from(answer(status, {"error": code, "detail": "d", "status": status}))
        assert type(error) is cls, code
        assert (error.code, error.status, error.detail) == (code, status, "d")


def test_limit_fields_and_headers_are_read() -> None:
    body = {"error": "account_breaker_open", "detail": "open", "limit": 500, "used": 500,
            "resets_at": "2026-11-30T03:00:00Z", "title": "breaker", "type": "/docs/errors#account_breaker_open"}
    error = error_from(answer(429, body, {"Retry-After": "42", "Request-Id": "r-1"}))
    assert isinstance(error, AccountBreakerOpenError)
    assert (error.retry_after, error.limit, error.used, error.request_id) == (42, 500, 500, "r-1")
    assert error.resets_at == datetime(2026, 11, 30, 3, tzinfo=timezone.utc)
    assert (error.title, error.type) == ("breaker", "/docs/errors#account_breaker_open")
    assert "account_breaker_open (HTTP 429): open" == str(error)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(401, AuthenticationError), (403, ForbiddenError), (404, NotFoundError), (429, RateLimitError),
     (418, InvalidInputError), (503, ServiceUnavailableError), (500, ServerError), (302, APIError)],
)
def test_a_code_the_sdk_does_not_know_falls_back_to_its_status(status: int, cls: type[APIError]) -> None:
    error = error_from(answer(status, {"error": "brand_new_code", "message": "m"}))
    assert type(error) is cls
    assert (error.code, error.detail) == ("brand_new_code", "m")
