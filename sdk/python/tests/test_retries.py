"""Retries of transient failures.

A real `kepler serve` cannot be made to drop answers on cue, so these tests put a
transport between the SDK and the real server that fails chosen requests (a 503, a
refused connection, an answer lost after the server acted) and forwards the rest.
Only the polling-cadence test at the end runs against a scripted fake (httpx.MockTransport).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import httpx
import pytest

from conftest import Kepler
from kepler_insights import (
    APIConnectionError,
    AsyncClient,
    AuthenticationError,
    Client,
    ColdBudgetExhaustedError,
    IdempotencyKeyInUseError,
    Job,
    RetryPolicy,
    ServiceUnavailableError,
)

STORE_UNAVAILABLE = {
    "type": "/docs/errors#store_unavailable",
    "title": "The store is unavailable; retry shortly",
    "status": 503,
    "detail": "the store did not answer in time",
    "error": "store_unavailable",
}


def unavailable(retry_after: str = "0") -> httpx.Response:
    return httpx.Response(
        503,
        headers={"Retry-After": retry_after, "Content-Type": "application/problem+json"},
        json=STORE_UNAVAILABLE,
    )


def key_in_use() -> httpx.Response:
    return httpx.Response(
        409,
        headers={"Retry-After": "0", "Content-Type": "application/problem+json"},
        json={
            "type": "/docs/errors#idempotency_key_in_use",
            "title": "A request with this Idempotency-Key is still in progress",
            "status": 409,
            "detail": "retry shortly",
            "error": "idempotency_key_in_use",
        },
    )


class Faults:
    """The plan shared by the sync and async transports: what happens to each request in turn.

    `503`: answered 503 without reaching the server. `409`: answered
    409 idempotency_key_in_use, as while another node still answers the same key. `connect`: a refused connection.
    `lost-503` / `lost-timeout`: forwarded (the server acts on it), then the answer is
    replaced by a 503 or a read timeout, as when a proxy or the network drops it.
    `None` (and every request after the plan): forwarded untouched.
    """

    def __init__(self, plan: list[str | None]) -> None:
        self.plan = list(plan)
        self.seen: list[httpx.Request] = []

    def next(self, request: httpx.Request) -> str | None:
        self.seen.append(request)
        return self.plan.pop(0) if self.plan else None

    @staticmethod
    def before(step: str | None, request: httpx.Request) -> httpx.Response | None:
        if step == "connect":
            raise httpx.ConnectError("connection refused (injected)", request=request)
        if step == "503":
            return unavailable()
        if step == "409":
            return key_in_use()
        return None

    @staticmethod
    def after(step: str | None, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if step == "lost-503":
            return unavailable()
        if step == "lost-timeout":
            raise httpx.ReadTimeout("answer lost (injected)", request=request)
        return response


class FaultyTransport(httpx.BaseTransport):
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        step = self.faults.next(request)
        early = Faults.before(step, request)
        if early is not None:
            return early
        response = self.real.handle_request(request)
        response.read()
        return Faults.after(step, request, response)


class AsyncFaultyTransport(httpx.AsyncBaseTransport):
    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self.real = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        step = self.faults.next(request)
        early = Faults.before(step, request)
        if early is not None:
            return early
        response = await self.real.handle_async_request(request)
        await response.aread()
        return Faults.after(step, request, response)


def faulty_client(kepler: Kepler, key: str, faults: Faults, max_retries: int = 3) -> Client:
    transport = FaultyTransport(faults)
    return Client(key, base_url=kepler.base_url, transport=transport, backoff=0.01, max_retries=max_retries)


def idempotency_keys(faults: Faults) -> list[str | None]:
    return [r.headers.get("Idempotency-Key") for r in faults.seen if r.method == "POST"]


def submit_through_faults_is_charged_once(kepler: Kepler, domain: str, faults: Faults) -> None:
    """Submits a cold call through `faults` (two of them), then checks that all
    three tries carried one Idempotency-Key and the account was charged once."""
    key = kepler.live_key("growth")
    with faulty_client(kepler, key, faults) as kepler_api:
        job = kepler_api.submit(domain)
    assert isinstance(job, Job)
    keys = idempotency_keys(faults)
    assert len(keys) == 3, "two failed tries, then the answer"
    assert keys[0] and len(set(keys)) == 1, "every retry carries the first try's Idempotency-Key"
    with Client(key, base_url=kepler.base_url) as plain:
        assert plain.usage().month.cold_calls == 1, "however often the server saw it, one charge"
        assert plain.get_job(job.job_id).domain == job.domain


def test_lost_answers_to_a_post_are_retried_without_a_second_charge(
    kepler: Kepler, new_domain: Callable[[], str]
) -> None:
    submit_through_faults_is_charged_once(kepler, new_domain(), Faults(["lost-503", "lost-timeout"]))


def test_each_call_gets_its_own_idempotency_key(kepler: Kepler, sandbox_key: str) -> None:
    faults = Faults([])
    with faulty_client(kepler, sandbox_key, faults) as kepler_api:
        kepler_api.score("grade-a.sandbox.test")
        kepler_api.score("grade-a.sandbox.test")
    keys = idempotency_keys(faults)
    assert len(keys) == 2 and keys[0] != keys[1]


def test_503_and_refused_connections_are_retried(kepler: Kepler, sandbox_key: str) -> None:
    faults = Faults(["503", "connect", "503"])
    with faulty_client(kepler, sandbox_key, faults) as kepler_api:
        record = kepler_api.score("grade-d.sandbox.test")
        assert kepler_api.get_score("grade-d.sandbox.test").grade == record.grade
    assert record.grade.startswith("D")
    assert len(faults.seen) == 5


def test_a_key_still_in_use_is_retried_under_the_same_key(
    kepler: Kepler, new_domain: Callable[[], str]
) -> None:
    submit_through_faults_is_charged_once(kepler, new_domain(), Faults(["409", "409"]))


def test_a_key_in_use_past_the_retries_is_its_own_error(kepler: Kepler, sandbox_key: str) -> None:
    faults = Faults(["409"] * 10)
    with faulty_client(kepler, sandbox_key, faults, max_retries=2) as kepler_api, pytest.raises(
        IdempotencyKeyInUseError
    ) as caught:
        kepler_api.score("grade-a.sandbox.test")
    assert (caught.value.code, caught.value.status) == ("idempotency_key_in_use", 409)
    assert len(faults.seen) == 3


def test_4xx_answers_are_never_retried(kepler: Kepler, new_domain: Callable[[], str]) -> None:
    faults = Faults([])
    with faulty_client(kepler, "ki_live_" + "1" * 40, faults) as stranger, pytest.raises(AuthenticationError):
        stranger.usage()
    assert len(faults.seen) == 1

    limited = Faults([])
    with faulty_client(kepler, kepler.live_key("starter"), limited) as kepler_api:
        kepler_api.submit(new_domain())
        with pytest.raises(ColdBudgetExhaustedError):
            kepler_api.submit(new_domain())
    assert len(limited.seen) == 2


def test_a_persistent_503_ends_in_service_unavailable(kepler: Kepler, sandbox_key: str) -> None:
    faults = Faults(["503"] * 10)
    with faulty_client(kepler, sandbox_key, faults, max_retries=2) as kepler_api:
        with pytest.raises(ServiceUnavailableError) as caught:
            kepler_api.usage()
    assert len(faults.seen) == 3
    assert (caught.value.code, caught.value.status, caught.value.retry_after) == ("store_unavailable", 503, 0)


def test_a_retry_after_longer_than_max_backoff_is_left_to_the_caller(kepler: Kepler, sandbox_key: str) -> None:
    class Transport(httpx.BaseTransport):
        calls = 0

        def handle_request(self, request: httpx.Request) -> httpx.Response:
            Transport.calls += 1
            return unavailable(retry_after="120")

    with Client(sandbox_key, base_url=kepler.base_url, transport=Transport()) as kepler_api:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailableError) as caught:
            kepler_api.usage()
        assert time.monotonic() - started < 1
    assert Transport.calls == 1
    assert caught.value.retry_after == 120


def test_an_unreachable_api_is_a_connection_error_after_the_retries() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port now: every connection is refused.
    with Client("ki_live_x", base_url=f"http://127.0.0.1:{port}", max_retries=2, backoff=0.01) as kepler_api:
        with pytest.raises(APIConnectionError) as caught:
            kepler_api.usage()
    assert caught.value.code == "connection_error"
    assert "3 attempts" in caught.value.detail


def test_a_proxy_error_page_still_maps_to_a_class(kepler: Kepler, sandbox_key: str) -> None:
    def gateway(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    with Client(sandbox_key, base_url=kepler.base_url, transport=httpx.MockTransport(gateway), max_retries=0) as api:
        with pytest.raises(ServiceUnavailableError) as caught:
            api.usage()
    assert (caught.value.code, caught.value.status) == ("http_502", 502)
    assert "Bad Gateway" in caught.value.detail


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_async_client_retries_the_same_way(
    kepler: Kepler, new_domain: Callable[[], str], anyio_backend: str
) -> None:
    faults = Faults(["connect", "lost-503"])
    key = kepler.live_key("growth")
    async with AsyncClient(key, base_url=kepler.base_url, transport=AsyncFaultyTransport(faults), backoff=0.01) as api:
        job = await api.submit(new_domain())
        assert isinstance(job, Job)
        assert (await api.usage()).month.cold_calls == 1
    keys = idempotency_keys(faults)
    assert len(keys) == 3 and len(set(keys)) == 1


def test_backoff_grows_with_jitter_and_stops() -> None:
    policy = RetryPolicy(max_retries=4, backoff=1.0, max_backoff=3.0)
    for _ in range(50):
        first, second, third = (policy.pause(n, None) for n in range(3))
        assert first is not None and 0.5 <= first <= 1.0
        assert second is not None and 1.0 <= second <= 2.0
        assert third is not None and 1.5 <= third <= 3.0, "capped at max_backoff"
    assert policy.pause(1, 2.5) == 2.5, "Retry-After wins when it fits"
    assert policy.pause(1, 30.0) is None
    assert policy.pause(4, None) is None


def test_polling_honours_retry_after_then_the_poll_interval() -> None:
    """Scripted fake: the real server sends Retry-After only on the 202."""
    times: list[tuple[str, float]] = []
    polls = iter(["running", "running", "complete"])

    def fake(request: httpx.Request) -> httpx.Response:
        times.append((request.url.path, time.monotonic()))
        if request.method == "POST":
            job = {"job_id": "j1", "status": "pending", "domain": "a.test", "poll_url": "/v1/jobs/j1"}
            return httpx.Response(202, headers={"Retry-After": "1"}, json=job)
        if request.url.path == "/v1/jobs/j1":
            status = next(polls)
            ref = {"domain": "a.test", "scored_at": "2026-11-29T03:32:49.925123456Z"} if status == "complete" else None
            return httpx.Response(200, json={"job_id": "j1", "status": status, "domain": "a.test", "result_ref": ref})
        record = {"domain": "a.test", "score": 91, "grade": "A", "scored_at": "2026-11-29T03:32:49Z",
                  "engine_version": "x", "cached": False, "categories": [], "fresh_for_tier": True}
        return httpx.Response(200, json=record)

    with Client("ki_live_x", base_url="http://kepler.invalid", transport=httpx.MockTransport(fake)) as api:
        record = api.score("a.test", poll_interval=0.05)
    assert record.grade == "A"
    paths = [path for path, _ in times]
    assert paths == ["/v1/score", "/v1/jobs/j1", "/v1/jobs/j1", "/v1/jobs/j1", "/v1/score/a.test"]
    stamps = [at for _, at in times]
    assert stamps[1] - stamps[0] >= 0.95, "the 202's Retry-After: 1 is honoured"
    assert all(0.04 <= b - a < 0.5 for a, b in zip(stamps[1:3], stamps[2:4])), "then every poll_interval"
