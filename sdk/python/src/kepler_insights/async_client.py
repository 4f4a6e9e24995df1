"""The asynchronous client: `Client`'s methods as coroutines (asyncio or trio, through anyio)."""

from __future__ import annotations

from types import TracebackType
import anyio
import httpx

from . import _core
from .models import Job, ScoreRecord, Usage


class AsyncClient:
    """An asynchronous Kepler API client, with the same methods and options as `Client`.

    >>> async with AsyncClient("ki_live_...", base_url="https://kepler.example") as kepler:  # doctest: +SKIP
    ...     record = await kepler.score("example.com")

    `api_key` and `base_url` default to `KEPLER_API_KEY` and `KEPLER_URL`. `timeout` bounds
    each HTTP request; transient failures (connection errors, 502/503/504) are retried
    up to `max_retries` times with exponential backoff from `backoff` seconds. `transport`
    is handed to httpx (proxies, test doubles).
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        headers: dict[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = _core.resolve_settings(
            api_key, base_url, timeout, max_retries, backoff, max_backoff, headers
        )
        self._http = httpx.AsyncClient(
            base_url=self._settings.base_url,
            headers=self._settings.headers,
            timeout=self._settings.timeout,
            transport=transport,
        )

    @property
    def base_url(self) -> str:
        return self._settings.base_url

    # ---- the API -----------------------------------------------------------------

    async def score(
        self,
        domain: str,
        force_fresh: bool = False,
        poll_interval: float = 5.0,
        timeout: float | None = 180.0,
        *,
        idempotency_key: str | None = None,
    ) -> ScoreRecord:
        """The domain's score record, fresh for the account's tier.

        A stored record comes back at once. Otherwise a cold run is started and its job
        polled, honouring the API's `Retry-After` (else every `poll_interval` seconds),
        until it settles or `timeout` seconds have passed (None: no limit).

        Raises `JobFailedError` when the run fails, `PollTimeoutError` when it is still
        running at the deadline, or the `APIError` subclass of the API's answer.
        """
        poll = _core.Poll(poll_interval, timeout)
        answer, retry_after = await self._submit(domain, force_fresh, idempotency_key)
        if isinstance(answer, ScoreRecord):
            return answer
        job = await self._poll(answer, poll.next_pause(retry_after), poll)
        return await self.get_score(_core.settled_domain(job))

    async def submit(
        self, domain: str, force_fresh: bool = False, *, idempotency_key: str | None = None
    ) -> ScoreRecord | Job:
        """`POST /v1/score` without waiting: the record when one is fresh, else the cold run's Job."""
        answer, _ = await self._submit(domain, force_fresh, idempotency_key)
        return answer

    async def get_job(self, job_id: str) -> Job:
        """`GET /v1/jobs/{job_id}`: the job's current state."""
        job, _ = await self._job(job_id)
        return job

    async def wait_for_score(
        self, job_id: str, poll_interval: float = 5.0, timeout: float | None = 180.0
    ) -> ScoreRecord:
        """Polls a job until it settles, then returns its record (see `score`)."""
        poll = _core.Poll(poll_interval, timeout)
        job, retry_after = await self._job(job_id)
        job = await self._poll(job, poll.next_pause(retry_after), poll)
        return await self.get_score(_core.settled_domain(job))

    async def get_score(self, domain: str) -> ScoreRecord:
        """`GET /v1/score/{domain}`: the newest stored record, with `fresh_for_tier`. Never starts a run."""
        return ScoreRecord.from_dict(_core.json_body(await self._send(_core.record_request(domain))))

    async def usage(self) -> Usage:
        """`GET /v1/usage`: the account's cold calls, limits and cost."""
        return Usage.from_dict(_core.json_body(await self._send(_core.usage_request())))

    # ---- lifecycle ---------------------------------------------------------------

    async def close(self) -> None:
        """Closes the connection pool; the client cannot be used afterwards."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncClient(base_url={self.base_url!r})"

    # ---- plumbing ----------------------------------------------------------------

    async def _submit(
        self, domain: str, force_fresh: bool, idempotency_key: str | None
    ) -> tuple[ScoreRecord | Job, float | None]:
        request = _core.score_request(domain, force_fresh, idempotency_key)
        return _core.score_answer(await self._send(request))

    async def _poll(self, job: Job, pause: float, poll: _core.Poll) -> Job:
        while not job.is_settled:
            await anyio.sleep(poll.bounded(pause, job))
            job, retry_after = await self._job(job.job_id)
            pause = poll.next_pause(retry_after)
        return job

    async def _job(self, job_id: str) -> tuple[Job, float | None]:
        response = await self._send(_core.job_request(job_id))
        return Job.from_dict(_core.json_body(response)), _core.retry_after_of(response)

    async def _send(self, request: _core.Request) -> httpx.Response:
        """One API call with the retry policy: a 2xx answer, or the error it comes to."""
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    request.method, request.path, json=request.json, headers=request.headers
                )
            except httpx.TransportError as exc:
                pause = _core.pause_after_exception(self._settings.retry, attempt, request, exc)
            else:
                if _core.is_success(response):
                    return response
                pause = _core.pause_after_answer(self._settings.retry, attempt, response)
            await anyio.sleep(pause)
            attempt += 1
