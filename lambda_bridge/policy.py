"""The deadline / retry policy shared by every invoker.

Reading of the Chime SIP media application contract (defaults; both numbers
come from :class:`~lambda_bridge.HandlerConfig`):

* the deadline (``timeout_s``, 20 s) is measured from the start of the first
  attempt and covers everything: waiting for a free worker, cold start, the
  retry;
* if the first attempt has not answered after ``retry_after_s`` (5 s), ONE
  retry is started while the first attempt keeps running; an attempt that
  fails with a *retryable* error (connection refused, HTTP 4xx/5xx, Lambda
  throttling...) starts the retry at once;
* the first answer wins, the other attempt is cancelled (each invoker decides
  what cancelling means: the python pool lets a busy worker finish until the
  deadline, then kills it);
* a function error (the handler raised, its runtime crashed, its output is
  not JSON) is an answer: it is returned to the caller, never retried;
* nothing by the deadline -> :class:`HandlerTimeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from .errors import HandlerTimeout, HandlerUnreachable, InvocationError

#: ``attempt_factory(attempt_number, deadline)``: attempt_number counts from 0,
#: deadline is an absolute ``loop.time()`` value.
AttemptFactory = Callable[[int, float], Awaitable[Any]]

_CANCEL_GRACE_S = 2.0


async def run_with_retry(
    attempt_factory: AttemptFactory,
    timeout_s: float,
    retry_after_s: float,
    max_retries: int,
    *,
    name: str = "handler",
    logger: Any = None,
    log_context: Mapping[str, Any] | None = None,
) -> Any:
    """Run ``attempt_factory`` under the deadline/retry policy; return the
    first successful result or raise an :class:`InvocationError`."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    deadline = start + timeout_s
    ctx = dict(log_context or {})
    tasks: dict[asyncio.Future[Any], int] = {}
    launched = 0
    next_retry_at = start + retry_after_s
    last_error: InvocationError | None = None

    def launch(reason: str | None) -> None:
        nonlocal launched, next_retry_at
        number = launched
        launched += 1
        if reason is not None and logger is not None:
            fields = dict(ctx)
            fields.update(
                function_name=name,
                attempt=number + 1,
                reason=reason,
                elapsed_s=round(loop.time() - start, 3),
            )
            logger.warning("handler_retry", **fields)
        task = asyncio.ensure_future(attempt_factory(number, deadline))
        tasks[task] = number
        next_retry_at = loop.time() + retry_after_s

    def retries_left() -> bool:
        return launched <= max_retries

    launch(None)
    try:
        while True:
            now = loop.time()
            if now >= deadline:
                break
            if not tasks:
                # every attempt so far failed with a retryable error
                if retries_left():
                    launch(f"previous attempt failed: {last_error.message if last_error else '?'}")
                    continue
                assert last_error is not None
                raise last_error
            wake_at = deadline
            if retries_left():
                wake_at = min(deadline, next_retry_at)
            done, _ = await asyncio.wait(
                tasks, timeout=max(0.0, wake_at - now), return_when=asyncio.FIRST_COMPLETED
            )
            # first answer wins; a success beats an error completed at the same time
            finished = sorted(done, key=lambda t: (t.cancelled() or t.exception() is not None, tasks[t]))
            for task in finished:
                tasks.pop(task)
                if task.cancelled():
                    exc: BaseException = HandlerUnreachable(f"{name}: attempt was cancelled")
                else:
                    exc_or_none = task.exception()
                    if exc_or_none is None:
                        return task.result()
                    exc = exc_or_none
                if isinstance(exc, InvocationError):
                    if exc.retryable:
                        last_error = exc
                        if retries_left() and loop.time() < deadline:
                            launch(f"attempt failed: {exc.message}")
                        continue
                    raise exc
                if isinstance(exc, Exception):
                    if logger is not None:
                        fields = dict(ctx)
                        fields.update(function_name=name, error=repr(exc), exc_info=exc)
                        logger.error("handler_internal_error", **fields)
                    raise HandlerUnreachable(f"{name}: internal error: {exc!r}") from exc
                raise exc  # KeyboardInterrupt & co.
            if (
                not done
                and tasks
                and retries_left()
                and loop.time() >= next_retry_at
                and loop.time() < deadline
            ):
                launch(f"no answer after {retry_after_s:g} s")
        attempts = launched
        raise HandlerTimeout(
            f"{name}: no answer within {timeout_s:g} s "
            f"({attempts} attempt{'s' if attempts != 1 else ''})"
        )
    finally:
        pending = [t for t in tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=_CANCEL_GRACE_S)
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()  # mark retrieved: no "exception never retrieved" noise
