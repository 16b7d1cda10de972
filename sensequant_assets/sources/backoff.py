"""Capped, jittered exponential backoff between attempts at a remote call.

Plain doubling lets a long outage push a wait past any useful bound, and clients that failed
together retry together and fail together again. The cap bounds each wait; the jitter takes a
random part off each one so that retries spread out, while keeping at least
``1 - jitter`` of the capped delay (a per-minute limit is not helped by an instant retry).
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    """Waits of ``min(cap, base * 2**attempt)``, less a random share of up to ``jitter``."""

    base: float = 2.0
    cap: float = 60.0
    jitter: float = 0.5
    random: Callable[[], float] = field(default=_random.random, repr=False)

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0 or not 0 <= self.jitter <= 1:
            raise ValueError("base and cap must be non-negative and jitter within [0, 1]")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (0 for the first)."""
        # The exponent is clipped only so that a huge attempt number cannot overflow a float.
        ceiling = min(self.cap, self.base * 2.0 ** min(attempt, 64))
        return ceiling * (1 - self.jitter * self.random())
