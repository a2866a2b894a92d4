"""``lambda`` handlers: a real AWS Lambda function invoked through boto3.

boto3 is blocking, so each attempt runs ``Invoke`` in this invoker's own small
thread pool.  botocore's own retries are disabled (``max_attempts: 0``) and its
read timeout is at least ``timeout_s``: :mod:`lambda_bridge.policy` is the only
retry/deadline policy.  A cancelled attempt (the other one answered, or the
deadline passed) leaves its thread to finish in the background.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .base import BaseInvoker, decode_json_output
from .config import HandlerConfig
from .errors import HandlerFailed, HandlerTimeout, HandlerUnreachable


class LambdaInvoker(BaseInvoker):
    """Invoker for ``type: lambda`` handlers."""

    def __init__(self, cfg: HandlerConfig, logger: Any) -> None:
        super().__init__(cfg, logger)
        # attempts of concurrent calls + the threads of abandoned attempts
        self._executor = ThreadPoolExecutor(
            max_workers=max(4, 4 * (cfg.max_retries + 1)),
            thread_name_prefix=f"lambda-{cfg.function_name}"[:40],
        )
        self._client: Any = None
        self._client_lock = threading.Lock()

    def _get_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                config = Config(
                    connect_timeout=min(10.0, self.cfg.timeout_s),
                    read_timeout=self.cfg.timeout_s + 5.0,
                    retries={"max_attempts": 0, "mode": "standard"},
                    max_pool_connections=self._executor._max_workers,  # noqa: SLF001
                )
                # a private Session: boto3's default session is not thread-safe
                session = boto3.session.Session()
                self._client = session.client(
                    "lambda",
                    region_name=self.cfg.aws_region,
                    endpoint_url=self.cfg.endpoint_url,
                    config=config,
                )
            return self._client

    def _invoke_blocking(self, payload: bytes) -> tuple[dict[str, Any], bytes]:
        client = self._get_client()
        response = client.invoke(
            FunctionName=self.cfg.target,
            InvocationType="RequestResponse",
            LogType="Tail",
            Payload=payload,
        )
        body = response["Payload"].read()
        return response, body

    async def _attempt(
        self, number: int, deadline: float, event_json: str, request_id: str, ctx: dict[str, Any]
    ) -> Any:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionClosedError,
            ConnectTimeoutError,
            EndpointConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        name = self.cfg.function_name
        target = self.cfg.target
        loop = asyncio.get_running_loop()
        try:
            response, body = await loop.run_in_executor(
                self._executor, self._invoke_blocking, event_json.encode("utf-8")
            )
        except ClientError as exc:
            err = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise HandlerUnreachable(
                f"{name}: Lambda Invoke of {target!r} failed: "
                f"{err.get('Code', 'ClientError')} (HTTP {status}): {err.get('Message', '')}",
                retryable=True,
            ) from None
        except ReadTimeoutError:
            raise HandlerTimeout(f"{name}: Lambda {target!r} did not answer in time") from None
        except (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError) as exc:
            raise HandlerUnreachable(
                f"{name}: cannot reach the Lambda endpoint: {exc}", retryable=True
            ) from None
        except NoCredentialsError as exc:
            raise HandlerUnreachable(f"{name}: {exc}") from None
        except BotoCoreError as exc:
            raise HandlerUnreachable(f"{name}: Lambda Invoke failed: {exc}", retryable=True) from None
        except RuntimeError as exc:  # executor shut down by close()
            raise HandlerUnreachable(f"{name}: {exc}") from None

        self._log_tail(response, ctx)
        if response.get("FunctionError"):
            try:
                error = decode_json_output(body, "error payload")
            except Exception:  # noqa: BLE001 - not JSON: keep the raw text
                error = {"errorMessage": body[:500].decode("utf-8", "replace")}
            if not isinstance(error, dict):
                error = {"errorMessage": str(error)}
            error_type = error.get("errorType") or response["FunctionError"]
            error_message = error.get("errorMessage", "")
            self._error(
                "handler_error",
                ctx,
                error_type=error_type,
                error_message=error_message,
                function_error=response["FunctionError"],
                stack_trace="".join(str(x) for x in error.get("stackTrace") or []),
            )
            raise HandlerFailed(error_type, error_message, stack_trace=error.get("stackTrace"))
        return decode_json_output(body, f"{name}: payload of Lambda {target!r}")

    def _log_tail(self, response: dict[str, Any], ctx: dict[str, Any]) -> None:
        """``LogType=Tail``: the last 4 KB of the function's log, logged as handler_output."""
        log_result = response.get("LogResult")
        if not log_result:
            return
        try:
            text = base64.b64decode(log_result).decode("utf-8", "replace")
        except (ValueError, TypeError):
            return
        for line in text.splitlines():
            if line.strip():
                self._info("handler_output", ctx, stream="lambda", line=line)

    async def close(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
