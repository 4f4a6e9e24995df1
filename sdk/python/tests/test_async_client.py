"""The asynchronous client against the same real server (anyio's pytest plugin, asyncio)."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import pytest

from conftest import Kepler
from kepler_insights import (
    AsyncClient,
    AuthenticationError,
    ColdBudgetExhaustedError,
    FreeTierSandboxOnlyError,
    InvalidDomainError,
    Job,
    JobFailedError,
    NotScoredError,
    PollTimeoutError,
    ScoreRecord,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def client(kepler: Kepler, key: str) -> AsyncClient:
    return AsyncClient(key, base_url=kepler.base_url, backoff=0.05)


async def test_sandbox_record_inline(kepler: Kepler, sandbox_key: str) -> None:
    async with client(kepler, sandbox_key) as kepler_api:
        record = await kepler_api.score("grade-f.sandbox.test")
        stored = await kepler_api.get_score("grade-b.sandbox.test")
    assert (record.domain, record.grade) == ("grade-f.sandbox.test", "F")
    assert stored.grade.startswith("B")


async def test_cold_runs_succeed_and_fail_side_by_side(kepler: Kepler, enterprise_key: str) -> None:
    outcomes: dict[str, ScoreRecord | BaseException] = {}

    async def score(kepler_api: AsyncClient, domain: str) -> None:
        try:
            outcomes[domain] = await kepler_api.score(domain, force_fresh=True, poll_interval=0.2, timeout=60)
        except JobFailedError as error:
            outcomes[domain] = error

    async with client(kepler, enterprise_key) as kepler_api:
        started = time.monotonic()
        async with anyio.create_task_group() as group:
            group.start_soon(score, kepler_api, "strong.test")
            group.start_soon(score, kepler_api, "nope.test")
        assert time.monotonic() - started < 20

    strong = outcomes["strong.test"]
    assert isinstance(strong, ScoreRecord) and strong.grade in ("A", "A+")
    nope = outcomes["nope.test"]
    assert isinstance(nope, JobFailedError) and nope.failure_reason == "domain_not_resolvable"


async def test_submit_get_job_wait(kepler: Kepler, growth_key: str) -> None:
    async with client(kepler, growth_key) as kepler_api:
        job = await kepler_api.submit("nope.test")
        assert isinstance(job, Job)
        with pytest.raises(JobFailedError):
            await kepler_api.wait_for_score(job.job_id, poll_interval=0.1, timeout=30)
        assert (await kepler_api.get_job(job.job_id)).status == "failed"


async def test_errors_have_the_same_classes(kepler: Kepler, growth_key: str, new_domain: Callable[[], str]) -> None:
    async with client(kepler, "ki_live_" + "0" * 40) as stranger:
        with pytest.raises(AuthenticationError):
            await stranger.usage()
    async with client(kepler, growth_key) as kepler_api:
        with pytest.raises(InvalidDomainError):
            await kepler_api.score("not a domain")
        with pytest.raises(NotScoredError):
            await kepler_api.get_score(new_domain())
    async with client(kepler, kepler.live_key("free")) as free:
        with pytest.raises(FreeTierSandboxOnlyError):
            await free.score(new_domain())


async def test_rate_limit_error_carries_retry_after(kepler: Kepler, new_domain: Callable[[], str]) -> None:
    async with client(kepler, kepler.live_key("starter")) as kepler_api:
        await kepler_api.submit(new_domain())
        with pytest.raises(ColdBudgetExhaustedError) as caught:
            await kepler_api.score(new_domain())
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert (caught.value.limit, caught.value.used) == (1, 1)


async def test_polling_gives_up_at_the_timeout(kepler: Kepler, enterprise_key: str) -> None:
    async with client(kepler, enterprise_key) as kepler_api:
        started = time.monotonic()
        with pytest.raises(PollTimeoutError) as caught:
            await kepler_api.score("slow.test", force_fresh=True, timeout=0.5)
        assert time.monotonic() - started < 3
    assert caught.value.job.status in ("pending", "running")


async def test_usage(kepler: Kepler, growth_key: str) -> None:
    async with client(kepler, growth_key) as kepler_api:
        usage = await kepler_api.usage()
    assert usage.tier == "growth"
    assert usage.month.cap == 1000
