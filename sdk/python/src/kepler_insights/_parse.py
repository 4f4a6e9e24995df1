"""Small, forgiving readers for JSON values and headers.

The API may add fields or widen a number's type; readers here accept what they can
and report what they cannot as `None`, so models stay tolerant.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

# RFC 3339 with any number of fractional digits; Python before 3.11 takes only 3 or 6.
_RFC3339 = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<frac>\d+))?"
    r"(?P<zone>[Zz]|[+-]\d{2}:\d{2})?$"
)


def optional_datetime(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as an aware datetime (UTC when the zone is `Z` or absent)."""
    if not isinstance(value, str):
        return None
    match = _RFC3339.match(value.strip())
    if match is None:
        return None
    frac = (match.group("frac") or "")[:6].ljust(6, "0")
    zone = match.group("zone")
    offset = "+00:00" if zone is None or zone in ("Z", "z") else zone
    try:
        return datetime.fromisoformat(f"{match.group('base')}.{frac}{offset}")
    except ValueError:
        return None


def optional_int(value: Any) -> int | None:
    """An integer, accepting a float with no fractional part; bools are not numbers here."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def optional_float(value: Any) -> float | None:
    """Any JSON number as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def retry_after_seconds(header: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` in seconds: delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if header is None:
        return None
    text = header.strip()
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    return max(0.0, (when - current).total_seconds())
