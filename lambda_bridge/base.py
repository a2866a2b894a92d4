"""Common part of the three invokers: event encoding, the policy, logging."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from typing import Any

from .config import HandlerConfig
from .errors import (
    HandlerFailed,
    HandlerTimeout,
    HandlerUnreachable,
    InvalidHandlerOutput,
    InvocationError,
)
from .policy import run_with_retry


def decode_json_output(raw: bytes | str, what: str) -> Any:
    """Decode a handler's answer; anything that is not JSON is InvalidHandlerOutput.

    ``null`` and ``""`` are valid JSON and returned as ``None`` / ``""``: the
    caller decides what an empty answer means.
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        return json.loads(text)
    except (UnicodeDecodeError, ValueError) as exc:
        excerpt = raw[:200]
        raise InvalidHandlerOutput(f"{what} is not JSON ({exc}): {excerpt!r}") from None


class BaseInvoker:
    """Subclasses implement ``_attempt(number, deadline, event_json, request_id, ctx)``."""

    def __init__(self, cfg: HandlerConfig, logger: Any) -> None:
        self.cfg = cfg
        self._log = logger
        self._closed = False

    # -- logging helpers (structlog-style: event name + keyword fields) --
    def _fields(self, ctx: Mapping[str, Any] | None, **fields: Any) -> dict[str, Any]:
        out: dict[str, Any] = dict(ctx or {})
        out["function_name"] = self.cfg.function_name
        out.update(fields)
        return out

    def _info(self, event: str, ctx: Mapping[str, Any] | None = None, **fields: Any) -> None:
        self._log.info(event, **self._fields(ctx, **fields))

    def _warning(self, event: str, ctx: Mapping[str, Any] | None = None, **fields: Any) -> None:
        self._log.warning(event, **self._fields(ctx, **fields))

    def _error(self, event: str, ctx: Mapping[str, Any] | None = None, **fields: Any) -> None:
        self._log.error(event, **self._fields(ctx, **fields))

    async def invoke(self, event: dict[str, Any], *, log_context: Mapping[str, str] | None = None) -> Any:
        if self._closed:
            raise HandlerUnreachable(f"{self.cfg.function_name}: invoker is closed")
        # Encoding the event is the caller's business: a TypeError here is a bug upstream.
        event_json = json.dumps(event)
        request_id = str(uuid.uuid4())
        ctx: dict[str, Any] = dict(log_context or {})
        if "event" in ctx:  # would clash with the logger's positional event name
            ctx["log_event"] = ctx.pop("event")
        ctx["aws_request_id"] = request_id
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def attempt(number: int, deadline: float) -> Any:
            return await self._attempt(number, deadline, event_json, request_id, ctx)

        try:
            return await run_with_retry(
                attempt,
                self.cfg.timeout_s,
                self.cfg.retry_after_s,
                self.cfg.max_retries,
                name=self.cfg.function_name,
                logger=self._log,
                log_context=ctx,
            )
        except HandlerTimeout as exc:
            self._warning(
                "handler_timeout", ctx, handler_type=self.cfg.type, timeout_s=self.cfg.timeout_s,
                message=exc.message,
            )
            raise
        except HandlerFailed:
            raise  # logged by the attempt with its stack trace
        except (HandlerUnreachable, InvalidHandlerOutput) as exc:
            self._error(
                "handler_" + exc.kind, ctx, handler_type=self.cfg.type, message=exc.message,
                elapsed_s=round(loop.time() - started, 3),
            )
            raise
        except InvocationError:
            raise

    async def _attempt(
        self, number: int, deadline: float, event_json: str, request_id: str, ctx: dict[str, Any]
    ) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    async def close(self) -> None:  # pragma: no cover - overridden
        self._closed = True
