"""Turns a failed attempt into a decision: retry after how long, or give up.

Exponential backoff with full jitter (``uniform(0, min(max_delay, base * 2**n))``),
a bounded number of attempts, and ``Retry-After`` honoured (capped) on 429/503.
Only 408, 429 and 5xx other than 501/505 are retried; every other status is a
final answer the caller turns into an error.
"""

from __future__ import annotations

import email.utils
import random
import time

from layerkit.fastclass import dataclass

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUS or (500 <= status < 600 and status not in (501, 505))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. ``attempts`` counts the first try too."""

    attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, failures: int, rng: random.Random, retry_after: str | None = None) -> float:
        """Seconds to sleep after the ``failures``-th consecutive failure (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, failures - 1)))
        wait = rng.uniform(0, ceiling)
        hinted = parse_retry_after(retry_after)
        if hinted is not None:
            wait = max(wait, min(hinted, self.max_retry_after))
        return wait
