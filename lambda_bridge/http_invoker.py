"""``http`` handlers: POST the event as JSON to a webhook, decode its JSON answer."""

from __future__ import annotations

from typing import Any

import aiohttp

from .base import BaseInvoker, decode_json_output
from .config import HandlerConfig
from .errors import HandlerUnreachable, InvalidHandlerOutput

_BODY_EXCERPT = 200
_MAX_BODY = 16 * 1024 * 1024  # Lambda's own response limit is 6 MB


class HttpInvoker(BaseInvoker):
    """Invoker for ``type: http`` handlers (one aiohttp ClientSession per invoker)."""

    def __init__(self, cfg: HandlerConfig, logger: Any) -> None:
        super().__init__(cfg, logger)
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                # the policy cancels at the deadline; this only bounds a stuck connect
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.cfg.timeout_s),
                raise_for_status=False,
            )
        return self._session

    async def _attempt(
        self, number: int, deadline: float, event_json: str, request_id: str, ctx: dict[str, Any]
    ) -> Any:
        url = self.cfg.target
        headers = dict(self.cfg.headers)
        headers["Content-Type"] = "application/json"
        headers["X-Chime-Request-Id"] = request_id
        session = self._get_session()
        try:
            # no per-request timeout: the policy cancels this attempt at the deadline
            async with session.post(url, data=event_json.encode("utf-8"), headers=headers) as resp:
                status = resp.status
                body = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > _MAX_BODY:
                        raise InvalidHandlerOutput(
                            f"{self.cfg.function_name}: response from {url} is larger than "
                            f"{_MAX_BODY} bytes"
                        )
        except aiohttp.ClientConnectorError as exc:
            raise HandlerUnreachable(
                f"{self.cfg.function_name}: cannot connect to {url}: {exc}", retryable=True
            ) from None
        except (aiohttp.ClientError, ConnectionError) as exc:
            # ServerDisconnectedError, ClientPayloadError, ClientOSError...
            raise HandlerUnreachable(
                f"{self.cfg.function_name}: request to {url} failed: {exc!r}", retryable=True
            ) from None
        if status >= 400:
            excerpt = bytes(body[:_BODY_EXCERPT]).decode("utf-8", "replace")
            raise HandlerUnreachable(
                f"{self.cfg.function_name}: {url} answered HTTP {status}: {excerpt}",
                retryable=True,
            )
        return decode_json_output(bytes(body), f"{self.cfg.function_name}: response body from {url}")

    async def close(self) -> None:
        self._closed = True
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
