"""A tiny local endpoint speaking the Lambda ``Invoke`` REST API, for boto3.

``POST /2015-03-31/functions/{FunctionName}/invocations`` runs a registered
Python handler in-process (in a thread) and answers like AWS Lambda does:

* 200 with the JSON payload (``X-Amz-Executed-Version: $LATEST``);
* 200 + ``X-Amz-Function-Error: Unhandled`` and an ``errorMessage/errorType``
  body when the handler raises;
* 404 ``ResourceNotFoundException`` for an unknown function;
* 429 ``TooManyRequestsException`` while ``throttle[name] > 0``.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import web

HANDLERS_DIR = Path(__file__).parent / "handlers"


def load_handler(filename: str, func: str) -> Callable:
    """Load ``handlers/<filename>.py`` under a private module name."""
    path = HANDLERS_DIR / f"{filename}.py"
    spec = importlib.util.spec_from_file_location(f"_fake_lambda_{filename}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, func)


class _Context:
    def __init__(self, name: str, region: str, timeout_s: float) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{name}"
        self.memory_limit_in_mb = "128"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "2024/01/01/[$LATEST]0000"
        self.identity = None
        self.client_context = None
        self._deadline = time.time() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _error(status: int, error_type: str, message: str) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps({"Type": "User", "message": message}).encode(),
        headers={"x-amzn-ErrorType": error_type, "Content-Type": "application/json"},
    )


class FakeLambda:
    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self.functions: dict[str, Callable] = {}
        self.throttle: dict[str, int] = {}
        self.calls: list[dict[str, Any]] = []
        self.endpoint_url = ""
        self._runner: web.AppRunner | None = None

    def add(self, name: str, handler: Callable) -> None:
        self.functions[name] = handler

    async def invoke(self, request: web.Request) -> web.Response:
        raw_name = unquote(request.match_info["name"])
        # FunctionName may be a name, name:qualifier, or an ARN
        name = raw_name.split(":function:")[-1].split(":")[0]
        body = await request.read()
        self.calls.append(
            {
                "name": name,
                "raw_name": raw_name,
                "invocation_type": request.headers.get("X-Amz-Invocation-Type"),
                "log_type": request.headers.get("X-Amz-Log-Type"),
                "authorization": request.headers.get("Authorization", ""),
                "body": body,
            }
        )
        if self.throttle.get(name, 0) > 0:
            self.throttle[name] -= 1
            return _error(429, "TooManyRequestsException", "Rate Exceeded.")
        handler = self.functions.get(name)
        if handler is None:
            arn = f"arn:aws:lambda:{self.region}:123456789012:function:{name}"
            return _error(404, "ResourceNotFoundException", f"Function not found: {arn}")
        event = json.loads(body) if body else {}
        headers = {"X-Amz-Executed-Version": "$LATEST", "Content-Type": "application/json"}
        context = _Context(name, self.region, 3.0)
        try:
            result = await asyncio.to_thread(handler, event, context)
            payload = json.dumps(result).encode()
            log = f"START RequestId: {context.aws_request_id}\nEND RequestId: {context.aws_request_id}\n"
        except Exception as exc:  # noqa: BLE001 - reported like Lambda does
            payload = json.dumps(
                {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "requestId": context.aws_request_id,
                    "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
                }
            ).encode()
            headers["X-Amz-Function-Error"] = "Unhandled"
            log = f"[ERROR] {type(exc).__name__}: {exc}\n"
        if request.headers.get("X-Amz-Log-Type") == "Tail":
            headers["X-Amz-Log-Result"] = base64.b64encode(log.encode()).decode()
        return web.Response(status=200, body=payload, headers=headers)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/2015-03-31/functions/{name}/invocations", self.invoke)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # noqa: SLF001
        self.endpoint_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
