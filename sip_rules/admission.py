"""Admission control for new calls: token buckets on the call-set-up rate, per source and
overall, and a cap on concurrent calls. Sans-IO: time is an input (``now``, seconds on any
monotonic clock), nothing here reads a clock, sleeps or logs.

:meth:`Admission.admit` answers one INVITE: :class:`Admitted`, or :class:`Refused` with the
cause and how long the caller should wait (the ``Retry-After`` of the 503). The checks run
in this order, so that a refused call costs the shared budgets nothing:

0. ``auth_lockout``: the sending address sent too many INVITEs with wrong digest credentials
   lately (:meth:`Admission.auth_failed`) and is locked out for a while (a password-guessing
   tool such as svcrack gets a few guesses, not a dictionary);
1. ``source_rate``: the sending address has used up its own bucket (a flood from one peer
   does not eat the budget of the others);
2. ``concurrency``: ``max_concurrent_calls`` calls are up;
3. ``rate``: the daemon-wide bucket (``max_calls_per_second``) is empty.

A token taken from the source bucket by a call that the later checks refuse is given back.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

Cause = Literal["auth_lockout", "source_rate", "concurrency", "rate"]
CAUSES: tuple[Cause, ...] = ("auth_lockout", "source_rate", "concurrency", "rate")


class TokenBucket:
    """*rate* tokens per second, at most *burst* kept; starts full."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def take(self, now: float) -> float:
        """Take one token: 0.0 when taken, else the seconds until one will be there."""
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def give_back(self) -> None:
        self.tokens = min(self.burst, self.tokens + 1.0)

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.burst


@dataclass(frozen=True, slots=True)
class Limits:
    """What :class:`Admission` enforces; ``None`` switches a check off (also the daemon's
    ``admission:`` configuration, validated in chimevoice/config.py)."""

    max_calls_per_second: float | None = 200.0
    """New calls admitted per second, daemon-wide (a token bucket's rate); cause ``rate``."""
    burst: int = 50
    """The daemon-wide bucket's size: calls admitted at once after a quiet time."""
    max_concurrent_calls: int | None = 2000
    """Transactions up at once; at the cap new calls are refused (cause ``concurrency``)."""
    per_source_rate: float | None = None
    """New calls per second from one source address (cause ``source_rate``); off by default."""
    per_source_burst: int = 20
    """The per-source bucket's size."""
    auth_failures: int | None = 10
    """Wrong digest credentials from one source within ``auth_window_s`` that lock it out
    (cause ``auth_lockout``); ``None``: never."""
    auth_window_s: float = 60.0
    """The window the wrong credentials are counted in, seconds."""
    auth_lockout_s: float = 300.0
    """How long a locked-out source is refused, seconds."""


@dataclass(frozen=True, slots=True)
class Admitted:
    pass


@dataclass(frozen=True, slots=True)
class Refused:
    cause: Cause
    retry_after_s: int          # whole seconds, >= 1 (the Retry-After header)


ADMITTED = Admitted()


def _retry_after(wait_s: float) -> int:
    return max(1, math.ceil(wait_s))


class Admission:
    """The admission state of one daemon. *max_sources* bounds the per-source table: buckets
    that are full again (the source has been quiet) are forgotten first."""

    def __init__(self, limits: Limits, now: float, *, max_sources: int = 10000) -> None:
        self.limits = limits
        self.max_sources = max_sources
        self.overall = (TokenBucket(limits.max_calls_per_second, limits.burst, now)
                        if limits.max_calls_per_second is not None else None)
        self.sources: OrderedDict[str, TokenBucket] = OrderedDict()
        # source -> (times of its recent wrong credentials, locked until); bounded like sources
        self.auth: OrderedDict[str, tuple[list[float], float]] = OrderedDict()

    def reconfigure(self, limits: Limits, now: float) -> None:
        """New limits (a configuration reload); buckets start full again, lockouts stay."""
        auth = self.auth
        self.__init__(limits, now, max_sources=self.max_sources)  # type: ignore[misc]
        self.auth = auth

    def admit(self, source: str, active_calls: int, now: float, *, gated: bool = False) -> Admitted | Refused:
        """One new INVITE from *source* with *active_calls* up. *gated*: the SIP endpoint's gate
        (a mirror of these checks in C, ahead of pjsua: chimevoice/sip/commands.py
        ConfigureGate) has already passed it and taken its tokens, so only the lockout (which
        the gate learns a moment after it starts) and the concurrency cap are checked here."""
        lim = self.limits
        locked = self.locked_for(source, now)
        if locked:
            return Refused("auth_lockout", _retry_after(locked))
        if gated:
            if lim.max_concurrent_calls is not None and active_calls >= lim.max_concurrent_calls:
                return Refused("concurrency", 1)
            return ADMITTED
        bucket: TokenBucket | None = None
        if lim.per_source_rate is not None:
            bucket = self._source(source, now)
            wait = bucket.take(now)
            if wait:
                return Refused("source_rate", _retry_after(wait))
        if lim.max_concurrent_calls is not None and active_calls >= lim.max_concurrent_calls:
            if bucket is not None:
                bucket.give_back()
            return Refused("concurrency", 1)
        if self.overall is not None:
            wait = self.overall.take(now)
            if wait:
                if bucket is not None:
                    bucket.give_back()
                return Refused("rate", _retry_after(wait))
        return ADMITTED

    def auth_failed(self, source: str, now: float) -> bool:
        """*source* sent an INVITE whose digest credentials were wrong (not merely a stale
        nonce). True when this failure locks it out (``auth_failures`` within ``auth_window_s``)."""
        lim = self.limits
        if lim.auth_failures is None:
            return False
        times, until = self.auth.pop(source, ([], 0.0))
        if len(self.auth) >= self.max_sources:
            self.auth.popitem(last=False)
        times = [t for t in times if now - t < lim.auth_window_s] + [now]
        starts = len(times) >= lim.auth_failures and until <= now
        if starts:
            until, times = now + lim.auth_lockout_s, []
        self.auth[source] = (times, until)
        return starts

    def locked_for(self, source: str, now: float) -> float:
        """Seconds *source* stays locked out (0.0: it is not)."""
        entry = self.auth.get(source)
        return max(0.0, entry[1] - now) if entry else 0.0

    def _source(self, source: str, now: float) -> TokenBucket:
        bucket = self.sources.get(source)
        if bucket is not None:
            self.sources.move_to_end(source)
            return bucket
        if len(self.sources) >= self.max_sources:
            self._forget(now)
        assert self.limits.per_source_rate is not None
        bucket = TokenBucket(self.limits.per_source_rate, self.limits.per_source_burst, now)
        self.sources[source] = bucket
        return bucket

    def _forget(self, now: float) -> None:
        """Drop the buckets that are full (quiet sources); if none is, the least recently used."""
        for key in [k for k, b in self.sources.items() if b.full(now)]:
            del self.sources[key]
        while len(self.sources) >= self.max_sources:
            self.sources.popitem(last=False)


__all__ = ["ADMITTED", "Admission", "Admitted", "CAUSES", "Cause", "Limits", "Refused", "TokenBucket"]
