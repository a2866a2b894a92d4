"""http handlers against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid

import pytest
from aiohttp import web

from lambda_bridge import HandlerTimeout, HandlerUnreachable, InvalidHandlerOutput


class Webhook:
    """A programmable webhook: ``plan`` is a list of (status, body) answers, the
    last one repeats; ``delay`` seconds of sleep before answering."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.plan: list[tuple[int, str]] = []
        self.delay = 0.0
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append(
            {"headers": dict(request.headers), "body": body, "path": request.path}
        )
        if self.delay:
            await asyncio.sleep(self.delay)
        index = min(len(self.requests) - 1, len(self.plan) - 1)
        status, text = self.plan[index] if self.plan else (200, json.dumps(json.loads(body)))
        return web.Response(status=status, text=text, content_type="application/json")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/sma", self.handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
        self.url = f"http://127.0.0.1:{port}/sma"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def webhook():
    hook = Webhook()
    await hook.start()
    yield hook
    await hook.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


ACTIONS = {"SchemaVersion": "1.0", "Actions": [{"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]}


async def test_json_answer(webhook, make_invoker):
    webhook.plan = [(200, json.dumps(ACTIONS))]
    inv = make_invoker(type="http", target=webhook.url, headers={"Authorization": "Bearer s3cret"})
    event = {"InvocationEventType": "HANGUP", "CallDetails": {"TransactionId": "t-1"}}
    assert await inv.invoke(event) == ACTIONS
    assert len(webhook.requests) == 1
    req = webhook.requests[0]
    assert json.loads(req["body"]) == event
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["headers"]["Authorization"] == "Bearer s3cret"
    uuid.UUID(req["headers"]["X-Chime-Request-Id"])


async def test_null_and_empty_string_are_answers(webhook, make_invoker):
    inv = make_invoker(type="http", target=webhook.url)
    webhook.plan = [(200, "null")]
    assert await inv.invoke({}) is None
    webhook.requests.clear()
    webhook.plan = [(200, '""')]
    assert await inv.invoke({}) == ""


async def test_non_json_answer(webhook, make_invoker):
    webhook.plan = [(200, "<html>hello</html>")]
    inv = make_invoker(type="http", target=webhook.url)
    with pytest.raises(InvalidHandlerOutput) as info:
        await inv.invoke({})
    assert info.value.kind == "invalid_output"
    assert "<html>hello" in info.value.message
    assert len(webhook.requests) == 1  # an answer: not retried


async def test_500_twice_is_unreachable(webhook, make_invoker, logger):
    webhook.plan = [(500, "boom")]
    inv = make_invoker(type="http", target=webhook.url)
    started = time.monotonic()
    with pytest.raises(HandlerUnreachable) as info:
        await inv.invoke({})
    assert time.monotonic() - started < 1.0  # retried at once, not after retry_after_s
    assert "HTTP 500" in info.value.message
    assert len(webhook.requests) == 2
    assert len(logger.events("handler_retry")) == 1
    # both attempts carry the same request id
    ids = {r["headers"]["X-Chime-Request-Id"] for r in webhook.requests}
    assert len(ids) == 1


async def test_404_twice_is_unreachable(webhook, make_invoker):
    webhook.plan = [(404, "nope")]
    inv = make_invoker(type="http", target=webhook.url)
    with pytest.raises(HandlerUnreachable) as info:
        await inv.invoke({})
    assert "HTTP 404" in info.value.message
    assert len(webhook.requests) == 2


async def test_500_once_then_ok(webhook, make_invoker):
    webhook.plan = [(500, "boom"), (200, json.dumps(ACTIONS))]
    inv = make_invoker(type="http", target=webhook.url)
    assert await inv.invoke({"n": 1}) == ACTIONS
    assert len(webhook.requests) == 2


async def test_slow_server_times_out(webhook, make_invoker, logger):
    webhook.delay = 5.0
    inv = make_invoker(type="http", target=webhook.url, timeout_s=1.0, retry_after_s=0.3)
    started = time.monotonic()
    with pytest.raises(HandlerTimeout) as info:
        await inv.invoke({})
    elapsed = time.monotonic() - started
    assert info.value.kind == "timeout"
    assert 0.95 <= elapsed < 1.5
    assert len(webhook.requests) == 2  # the first one plus the retry at 0.3 s
    assert len(logger.events("handler_timeout")) == 1


async def test_nothing_listening_is_unreachable(make_invoker, logger):
    inv = make_invoker(type="http", target=f"http://127.0.0.1:{free_port()}/sma")
    with pytest.raises(HandlerUnreachable) as info:
        await inv.invoke({})
    assert "cannot connect" in info.value.message
    assert len(logger.events("handler_retry")) == 1
    assert len(logger.events("handler_unreachable")) == 1


async def test_unknown_host_is_unreachable(make_invoker):
    inv = make_invoker(type="http", target="http://no-such-host.invalid/sma", timeout_s=5.0)
    with pytest.raises(HandlerUnreachable) as info:
        await inv.invoke({})
    assert "cannot connect" in info.value.message and "no-such-host.invalid" in info.value.message
