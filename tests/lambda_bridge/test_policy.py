"""The shared deadline/retry policy, driven by real coroutines."""

from __future__ import annotations

import asyncio
import time

import pytest

from lambda_bridge import HandlerFailed, HandlerTimeout, HandlerUnreachable
from lambda_bridge.policy import run_with_retry


class Attempts:
    """attempt_factory whose n-th attempt follows ``script[n]``:
    (delay_s, result) or (delay_s, exception)."""

    def __init__(self, *script):
        self.script = script
        self.started: list[float] = []
        self.cancelled: list[int] = []
        self.deadlines: list[float] = []
        self.t0 = time.monotonic()

    async def __call__(self, number: int, deadline: float):
        self.started.append(round(time.monotonic() - self.t0, 2))
        self.deadlines.append(deadline)
        delay, outcome = self.script[number]
        try:
            await asyncio.sleep(delay)
        except asyncio.CancelledError:
            self.cancelled.append(number)
            raise
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


async def test_fast_answer_no_retry():
    attempts = Attempts((0.01, {"ok": 1}))
    assert await run_with_retry(attempts, 1.0, 0.3, 1) == {"ok": 1}
    assert len(attempts.started) == 1


async def test_slow_first_attempt_retry_wins_and_loser_is_cancelled():
    attempts = Attempts((5.0, "first"), (0.05, "second"))
    started = time.monotonic()
    assert await run_with_retry(attempts, 2.0, 0.2, 1) == "second"
    assert 0.2 <= time.monotonic() - started < 0.5
    assert attempts.started[1] >= 0.2
    assert attempts.cancelled == [0]
    assert attempts.deadlines[0] == attempts.deadlines[1]  # one deadline from the first attempt


async def test_first_attempt_can_still_win_after_retry_started():
    attempts = Attempts((0.3, "first"), (5.0, "second"))
    assert await run_with_retry(attempts, 2.0, 0.1, 1) == "first"
    assert attempts.cancelled == [1]


async def test_retryable_error_retries_immediately():
    attempts = Attempts((0.0, HandlerUnreachable("503", retryable=True)), (0.0, "ok"))
    started = time.monotonic()
    assert await run_with_retry(attempts, 5.0, 3.0, 1) == "ok"
    assert time.monotonic() - started < 0.2


async def test_retryable_error_twice_raises_last_error():
    attempts = Attempts(
        (0.0, HandlerUnreachable("first 500", retryable=True)),
        (0.0, HandlerUnreachable("second 500", retryable=True)),
    )
    with pytest.raises(HandlerUnreachable, match="second 500"):
        await run_with_retry(attempts, 5.0, 3.0, 1)
    assert len(attempts.started) == 2


async def test_function_error_is_an_answer_not_retried():
    attempts = Attempts((0.0, HandlerFailed("ValueError", "bad")), (0.0, "never"))
    with pytest.raises(HandlerFailed):
        await run_with_retry(attempts, 5.0, 0.1, 1)
    assert len(attempts.started) == 1


async def test_deadline_counts_from_first_attempt():
    attempts = Attempts((10.0, "a"), (10.0, "b"))
    started = time.monotonic()
    with pytest.raises(HandlerTimeout, match="2 attempts"):
        await run_with_retry(attempts, 0.5, 0.2, 1)
    assert 0.5 <= time.monotonic() - started < 0.8
    assert sorted(attempts.cancelled) == [0, 1]


async def test_max_retries_zero_never_retries():
    attempts = Attempts((10.0, "a"), (0.0, "b"))
    with pytest.raises(HandlerTimeout, match="1 attempt\\)"):
        await run_with_retry(attempts, 0.4, 0.1, 0)
    assert len(attempts.started) == 1


async def test_unexpected_exception_becomes_unreachable():
    attempts = Attempts((0.0, KeyError("oops")))
    with pytest.raises(HandlerUnreachable, match="internal error"):
        await run_with_retry(attempts, 1.0, 0.5, 1)


async def test_caller_cancellation_cancels_attempts():
    attempts = Attempts((10.0, "a"))
    task = asyncio.ensure_future(run_with_retry(attempts, 5.0, 3.0, 1))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert attempts.cancelled == [0]
