"""Typed results of the API (API.md §6–§9) as frozen dataclasses.

Each model reads its known fields and keeps every other one in `extra`, so a newer
server adding fields never breaks an older SDK; `raw` is the document as received.
A missing required field is an `UnexpectedResponseError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ._parse import optional_datetime, optional_float, optional_int, optional_str
from .errors import UnexpectedResponseError

__all__ = [
    "Check",
    "Category",
    "ScoreRecord",
    "ResultRef",
    "Job",
    "JobStatus",
    "MonthUsage",
    "WindowUsage",
    "Usage",
]


class JobStatus:
    """The job states of API.md §6."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"


class _Fields:
    """Reads a JSON object field by field, remembering which ones were known."""

    def __init__(self, what: str, document: Any) -> None:
        if not isinstance(document, dict):
            raise UnexpectedResponseError(f"{what}: expected a JSON object, got {type(document).__name__}")
        self.what = what
        self.document: dict[str, Any] = document
        self.seen: set[str] = set()

    def get(self, key: str) -> Any:
        self.seen.add(key)
        return self.document.get(key)

    def required(self, key: str, value: Any) -> Any:
        if value is None:
            raise UnexpectedResponseError(f"{self.what}: field {key!r} is missing or has the wrong type")
        return value

    def string(self, key: str) -> str:
        return str(self.required(key, optional_str(self.get(key))))

    def integer(self, key: str) -> int:
        return int(self.required(key, optional_int(self.get(key))))

    def timestamp(self, key: str) -> datetime:
        value: datetime = self.required(key, optional_datetime(self.get(key)))
        return value

    def objects(self, key: str) -> list[Any]:
        value = self.get(key)
        return value if isinstance(value, list) else []

    def extra(self) -> dict[str, Any]:
        return {k: v for k, v in self.document.items() if k not in self.seen}


@dataclass(frozen=True)
class Check:
    """One explained finding: its effect on the category score and the evidence for it."""

    id: str
    status: str
    """`pass`, `warn`, `fail`, `info` or `error`."""
    points: int
    """Signed effect on the category score."""
    evidence: str
    recommendation: str
    result: str | None = None
    """For checks that follow a published tool, its result name."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, document: Any) -> Check:
        f = _Fields("check", document)
        return cls(
            id=f.string("id"),
            status=f.string("status"),
            points=optional_int(f.get("points")) or 0,
            evidence=optional_str(f.get("evidence")) or "",
            recommendation=optional_str(f.get("recommendation")) or "",
            result=optional_str(f.get("result")),
            extra=f.extra(),
        )


@dataclass(frozen=True)
class Category:
    """One scored area (`tls`, `http_headers`, `email`, `dns`, `hygiene`) and its checks."""

    id: str
    score: int | None
    """0–100, or None when nothing in the area could be measured."""
    weight: float
    checks: list[Check]
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, document: Any) -> Category:
        f = _Fields("category", document)
        return cls(
            id=f.string("id"),
            score=optional_int(f.get("score")),
            weight=optional_float(f.get("weight")) or 0.0,
            checks=[Check.from_dict(c) for c in f.objects("checks")],
            extra=f.extra(),
        )

    def check(self, check_id: str) -> Check | None:
        """The check with this id, if the category has it."""
        return next((c for c in self.checks if c.id == check_id), None)


@dataclass(frozen=True)
class ScoreRecord:
    """A domain's score (API.md §8): 0–100, a letter grade, every point explained."""

    domain: str
    score: int
    grade: str
    scored_at: datetime
    engine_version: str
    cached: bool
    """True when served from storage without a run."""
    categories: list[Category]
    caps: list[str] = field(default_factory=list)
    """Hard caps that lowered the total (`no_https`, `bad_certificate`)."""
    fresh_for_tier: bool | None = None
    """Set by `get_score`: whether the record is inside the tier's freshness window."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, document: Any) -> ScoreRecord:
        f = _Fields("score record", document)
        cached = f.get("cached")
        fresh = f.get("fresh_for_tier")
        return cls(
            domain=f.string("domain"),
            score=f.integer("score"),
            grade=f.string("grade"),
            scored_at=f.timestamp("scored_at"),
            engine_version=optional_str(f.get("engine_version")) or "",
            cached=cached if isinstance(cached, bool) else False,
            categories=[Category.from_dict(c) for c in f.objects("categories")],
            caps=[c for c in f.objects("caps") if isinstance(c, str)],
            fresh_for_tier=fresh if isinstance(fresh, bool) else None,
            extra=f.extra(),
            raw=dict(f.document),
        )

    def category(self, category_id: str) -> Category | None:
        """The category with this id, if the record has it."""
        return next((c for c in self.categories if c.id == category_id), None)


@dataclass(frozen=True)
class ResultRef:
    """Where a complete job's record is: `GET /v1/score/{domain}`."""

    domain: str
    scored_at: datetime | None

    @classmethod
    def from_dict(cls, document: Any) -> ResultRef:
        f = _Fields("result_ref", document)
        return cls(domain=f.string("domain"), scored_at=optional_datetime(f.get("scored_at")))


@dataclass(frozen=True)
class Job:
    """A cold run's job (API.md §6): `pending` → `running` → `complete` | `failed`.

    The 202 answer of `POST /v1/score` is a Job too, with only `job_id`, `status`,
    `domain` and `poll_url` set.
    """

    job_id: str
    status: str
    domain: str
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result_ref: ResultRef | None = None
    failure_reason: str | None = None
    """On `failed`: `timeout`, `domain_not_resolvable`, `private_address_refused`, `engine_error`, ..."""
    poll_url: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, document: Any) -> Job:
        f = _Fields("job", document)
        ref = f.get("result_ref")
        return cls(
            job_id=f.string("job_id"),
            status=f.string("status"),
            domain=f.string("domain"),
            created_at=optional_datetime(f.get("created_at")),
            started_at=optional_datetime(f.get("started_at")),
            finished_at=optional_datetime(f.get("finished_at")),
            result_ref=ResultRef.from_dict(ref) if isinstance(ref, dict) else None,
            failure_reason=optional_str(f.get("failure_reason")),
            poll_url=optional_str(f.get("poll_url")),
            extra=f.extra(),
        )

    @property
    def is_settled(self) -> bool:
        """True once the job is `complete` or `failed`; it never changes after that."""
        return self.status in (JobStatus.COMPLETE, JobStatus.FAILED)


@dataclass(frozen=True)
class MonthUsage:
    """The calendar month's cold calls against the tier's cap, and their cost."""

    cold_calls: int
    cap: int
    remaining: int
    cost_usd: float
    resets_at: datetime | None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, document: Any) -> MonthUsage:
        f = _Fields("usage.month", document)
        return cls(
            cold_calls=f.integer("cold_calls"),
            cap=f.integer("cap"),
            remaining=f.integer("remaining"),
            cost_usd=optional_float(f.get("cost_usd")) or 0.0,
            resets_at=optional_datetime(f.get("resets_at")),
            extra=f.extra(),
        )


@dataclass(frozen=True)
class WindowUsage:
    """Cold calls in a rolling window (the key's hour or the account's day) and its limit."""

    cold_calls: int
    limit: int
    resets_at: datetime | None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, document: Any) -> WindowUsage:
        f = _Fields("usage window", document)
        return cls(
            cold_calls=f.integer("cold_calls"),
            limit=f.integer("limit"),
            resets_at=optional_datetime(f.get("resets_at")),
            extra=f.extra(),
        )


@dataclass(frozen=True)
class Usage:
    """`GET /v1/usage` (API.md §9) for the calling key's account."""

    account_id: str
    tier: str
    month: MonthUsage
    key_hour: WindowUsage
    account_day: WindowUsage
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, document: Any) -> Usage:
        f = _Fields("usage", document)
        return cls(
            account_id=f.string("account_id"),
            tier=f.string("tier"),
            month=MonthUsage.from_dict(f.get("month")),
            key_hour=WindowUsage.from_dict(f.get("key_hour")),
            account_day=WindowUsage.from_dict(f.get("account_day")),
            extra=f.extra(),
        )
