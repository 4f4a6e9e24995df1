"""The synchronous client against a real `kepler serve` on the fixture network."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timezone

import pytest

from conftest import Kepler
from kepler_insights import (
    AccountBreakerOpenError,
    AuthenticationError,
    Client,
    ColdBudgetExhaustedError,
    ForbiddenError,
    ForceFreshNotAllowedError,
    FreeTierSandboxOnlyError,
    IdempotencyKeyReusedError,
    InvalidDomainError,
    InvalidInputError,
    Job,
    JobFailedError,
    JobNotFoundError,
    KeplerError,
    KeyHourlyColdLimitError,
    NotFoundError,
    NotScoredError,
    PollTimeoutError,
    RateLimitError,
    SandboxDomainUnknownError,
    ScoreRecord,
)

SANDBOX = {
    "grade-a.sandbox.test": "A",
    "grade-b.sandbox.test": "B",
    "grade-d.sandbox.test": "D",
    "grade-f.sandbox.test": "F",
}


def client(kepler: Kepler, key: str) -> Client:
    return Client(key, base_url=kepler.base_url, backoff=0.05)


@pytest.mark.parametrize("domain", sorted(SANDBOX))
def test_sandbox_key_gets_the_canned_record_inline(kepler: Kepler, sandbox_key: str, domain: str) -> None:
    with client(kepler, sandbox_key) as kepler_api:
        started = time.monotonic()
        record = kepler_api.score(domain)
        assert time.monotonic() - started < 2, "a sandbox answer is inline, never polled"
    assert record.domain == domain
    assert record.grade.startswith(SANDBOX[domain])
    assert 0 <= record.score <= 100
    assert record.scored_at.tzinfo is not None
    assert {c.id for c in record.categories} >= {"tls", "http_headers", "email", "dns"}
    assert all(check.evidence for c in record.categories for check in c.checks)


def test_sandbox_key_outside_the_canned_domains(kepler: Kepler, sandbox_key: str) -> None:
    with client(kepler, sandbox_key) as kepler_api, pytest.raises(SandboxDomainUnknownError) as caught:
        kepler_api.score("strong.test")
    error = caught.value
    assert isinstance(error, InvalidInputError)
    assert (error.code, error.status) == ("sandbox_domain_unknown", 400)
    assert sorted(error.sandbox_domains) == sorted(SANDBOX)
    assert error.request_id


def test_cold_run_is_polled_to_its_record_honouring_retry_after(kepler: Kepler, enterprise_key: str) -> None:
    with client(kepler, enterprise_key) as kepler_api:
        before = kepler_api.usage().month.cold_calls
        started = time.monotonic()
        # force_fresh makes the run cold whatever other tests scored before.
        record = kepler_api.score("strong.test", force_fresh=True, poll_interval=0.2, timeout=60)
        elapsed = time.monotonic() - started
        after = kepler_api.usage()
    assert isinstance(record, ScoreRecord)
    assert record.domain == "strong.test"
    assert record.grade in ("A", "A+")
    assert record.fresh_for_tier is True
    assert record.engine_version
    # The 202 said Retry-After: 5; the SDK waits that long before its first poll.
    assert elapsed >= 4.5
    assert after.month.cold_calls == before + 1
    assert after.tier == "enterprise"


def test_a_stored_fresh_record_comes_back_inline(kepler: Kepler, enterprise_key: str, growth_key: str) -> None:
    with client(kepler, enterprise_key) as enterprise:
        submitted = enterprise.submit("strong.test", force_fresh=True)
        if isinstance(submitted, Job):
            enterprise.wait_for_score(submitted.job_id, poll_interval=0.1, timeout=60)
    with client(kepler, growth_key) as growth:
        before = growth.usage().month.cold_calls
        started = time.monotonic()
        record = growth.score("strong.test")
        assert time.monotonic() - started < 2
        assert record.cached is True
        assert growth.usage().month.cold_calls == before, "a cached answer is free"
        stored = growth.get_score("strong.test")
    assert stored.score == record.score
    assert stored.fresh_for_tier is True


def test_a_failed_run_raises_job_failed_with_its_reason(kepler: Kepler, growth_key: str) -> None:
    with client(kepler, growth_key) as kepler_api, pytest.raises(JobFailedError) as caught:
        kepler_api.score("nope.test", poll_interval=0.2, timeout=60)
    error = caught.value
    assert error.failure_reason == "domain_not_resolvable"
    assert error.code == "job_failed"
    assert error.job.domain == "nope.test"
    assert error.job.status == "failed"
    assert error.job.finished_at is not None


def test_submit_then_wait_for_score(kepler: Kepler, growth_key: str) -> None:
    with client(kepler, growth_key) as kepler_api:
        job = kepler_api.submit("nope.test")
        assert isinstance(job, Job)
        assert job.poll_url == f"/v1/jobs/{job.job_id}"
        assert job.status in ("pending", "running", "failed")
        with pytest.raises(JobFailedError) as caught:
            kepler_api.wait_for_score(job.job_id, poll_interval=0.1, timeout=30)
        assert caught.value.job.job_id == job.job_id
        settled = kepler_api.get_job(job.job_id)
    assert settled.status == "failed"
    assert settled.failure_reason == "domain_not_resolvable"
    assert settled.created_at is not None and settled.created_at.tzinfo == timezone.utc


@pytest.mark.parametrize("key", ["ki_live_" + "x" * 40, "not-a-key"])
def test_an_unknown_key_is_an_authentication_error(kepler: Kepler, key: str) -> None:
    with client(kepler, key) as kepler_api, pytest.raises(AuthenticationError) as caught:
        kepler_api.usage()
    assert (caught.value.code, caught.value.status) == ("invalid_api_key", 401)


def test_a_revoked_key_is_an_authentication_error(kepler: Kepler) -> None:
    created = kepler.admin("key", "create", "--account", kepler.account("growth"))
    with client(kepler, created["key"]) as kepler_api:
        kepler_api.usage()
        kepler.admin("key", "revoke", "--key-id", created["key_id"])
        with pytest.raises(AuthenticationError):
            kepler_api.score("grade-a.sandbox.test")


@pytest.mark.parametrize("domain", ["http://example.com/", "192.0.2.1", "localhost", "", "bad_label.test"])
def test_an_invalid_domain_is_invalid_input(kepler: Kepler, growth_key: str, domain: str) -> None:
    with client(kepler, growth_key) as kepler_api, pytest.raises(InvalidDomainError) as caught:
        kepler_api.score(domain)
    assert isinstance(caught.value, InvalidInputError)
    assert (caught.value.code, caught.value.status) == ("invalid_domain", 400)
    assert caught.value.detail


def test_the_free_tier_is_forbidden_cold_runs(kepler: Kepler, new_domain: Callable[[], str]) -> None:
    with client(kepler, kepler.live_key("free")) as kepler_api, pytest.raises(FreeTierSandboxOnlyError) as caught:
        kepler_api.score(new_domain())
    error = caught.value
    assert isinstance(error, ForbiddenError) and isinstance(error, PermissionError)
    assert (error.code, error.status, error.tier) == ("free_tier_sandbox_only", 403, "free")


def test_force_fresh_without_the_tier_is_forbidden(kepler: Kepler, growth_key: str) -> None:
    with client(kepler, growth_key) as kepler_api, pytest.raises(ForceFreshNotAllowedError) as caught:
        kepler_api.score("strong.test", force_fresh=True)
    assert (caught.value.code, caught.value.status, caught.value.tier) == ("force_fresh_not_allowed", 403, "growth")


def test_the_monthly_cap_is_a_rate_limit_error_with_retry_after(
    kepler: Kepler, new_domain: Callable[[], str]
) -> None:
    with client(kepler, kepler.live_key("starter")) as kepler_api:
        assert isinstance(kepler_api.submit(new_domain()), Job)
        with pytest.raises(ColdBudgetExhaustedError) as caught:
            kepler_api.score(new_domain())
    error = caught.value
    assert isinstance(error, RateLimitError)
    assert (error.code, error.status) == ("cold_budget_exhausted", 429)
    assert error.retry_after is not None and error.retry_after > 0
    assert (error.limit, error.used) == (1, 1)
    assert error.resets_at is not None
    assert (error.resets_at.day, error.resets_at.hour, error.resets_at.minute) == (1, 0, 0)


def test_the_key_hour_and_account_day_limits(kepler: Kepler, new_domain: Callable[[], str]) -> None:
    account = kepler.account("scale")
    with client(kepler, kepler.key(account)) as first:
        assert isinstance(first.submit(new_domain()), Job)
        with pytest.raises(KeyHourlyColdLimitError) as hourly:
            first.submit(new_domain())
    assert (hourly.value.limit, hourly.value.used) == (1, 1)
    assert hourly.value.retry_after is not None and 0 < hourly.value.retry_after <= 3600
    with client(kepler, kepler.key(account)) as second:
        assert isinstance(second.submit(new_domain()), Job)
    with client(kepler, kepler.key(account)) as third, pytest.raises(AccountBreakerOpenError) as breaker:
        third.score(new_domain())
    assert isinstance(breaker.value, RateLimitError)
    assert (breaker.value.code, breaker.value.limit, breaker.value.used) == ("account_breaker_open", 2, 2)
    assert breaker.value.retry_after is not None and breaker.value.retry_after > 0


def test_unknown_job_and_unscored_domain_are_not_found(
    kepler: Kepler, growth_key: str, new_domain: Callable[[], str]
) -> None:
    with client(kepler, growth_key) as kepler_api:
        with pytest.raises(JobNotFoundError) as job:
            kepler_api.get_job("00000000-0000-4000-8000-000000000000")
        with pytest.raises(NotScoredError) as record:
            kepler_api.get_score(new_domain())
    assert isinstance(job.value, NotFoundError) and job.value.status == 404
    assert (record.value.code, record.value.status) == ("not_scored", 404)


def test_another_accounts_job_is_not_found(kepler: Kepler, growth_key: str) -> None:
    with client(kepler, growth_key) as owner:
        job = owner.submit("nope.test")
    assert isinstance(job, Job)
    with client(kepler, kepler.live_key("growth")) as stranger, pytest.raises(JobNotFoundError):
        stranger.get_job(job.job_id)


def test_usage_is_typed(kepler: Kepler, new_domain: Callable[[], str]) -> None:
    with client(kepler, kepler.live_key("growth")) as kepler_api:
        kepler_api.submit(new_domain())
        usage = kepler_api.usage()
    assert usage.tier == "growth"
    assert (usage.month.cold_calls, usage.month.cap, usage.month.remaining) == (1, 1000, 999)
    assert usage.month.cost_usd == pytest.approx(0.04)
    assert usage.month.resets_at is not None and usage.month.resets_at.day == 1
    assert (usage.key_hour.cold_calls, usage.key_hour.limit) == (1, 200)
    assert (usage.account_day.cold_calls, usage.account_day.limit) == (1, 500)


def test_an_idempotency_key_replays_and_guards_its_body(
    kepler: Kepler, new_domain: Callable[[], str]
) -> None:
    domain = new_domain()
    with client(kepler, kepler.live_key("growth")) as kepler_api:
        first = kepler_api.submit(domain, idempotency_key="sdk-test-key")
        again = kepler_api.submit(domain, idempotency_key="sdk-test-key")
        assert isinstance(first, Job) and isinstance(again, Job)
        assert again.job_id == first.job_id
        assert kepler_api.usage().month.cold_calls == 1, "a replay is not charged again"
        with pytest.raises(IdempotencyKeyReusedError) as caught:
            kepler_api.submit(new_domain(), idempotency_key="sdk-test-key")
    assert (caught.value.code, caught.value.status) == ("idempotency_key_reused", 422)


def test_polling_gives_up_at_the_timeout(kepler: Kepler, enterprise_key: str) -> None:
    with client(kepler, enterprise_key) as kepler_api:
        started = time.monotonic()
        with pytest.raises(PollTimeoutError) as caught:
            kepler_api.score("slow.test", force_fresh=True, timeout=1)
        assert 0.9 <= time.monotonic() - started < 4
        error = caught.value
        assert isinstance(error, TimeoutError) and isinstance(error, KeplerError)
        assert error.code == "poll_timeout"
        assert error.job.status in ("pending", "running")
        # The run goes on: waiting again picks the same job up.
        with pytest.raises(PollTimeoutError) as again:
            kepler_api.wait_for_score(error.job.job_id, poll_interval=0.1, timeout=0.5)
    assert again.value.job.job_id == error.job.job_id
