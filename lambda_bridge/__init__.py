"""lambda_bridge: invoke a SIP media application's handler with an event.

Four handler types share one deadline/retry policy (:mod:`lambda_bridge.policy`):

* ``python``: a Lambda-style ``handler(event, context)`` run in a pool of
  worker processes per application (:mod:`lambda_bridge.python_invoker`);
* ``nodejs``: a Lambda-style ``exports.handler = async (event, context)`` (or
  callback style) in a pool of Node.js worker processes
  (:mod:`lambda_bridge.node_invoker`; both runtimes share :mod:`lambda_bridge.pool`);
* ``http``: a JSON webhook (:mod:`lambda_bridge.http_invoker`);
* ``lambda``: a real AWS Lambda function through boto3
  (:mod:`lambda_bridge.lambda_invoker`).

This module stays light (no aiohttp/boto3 import): python workers import it.
"""

from collections.abc import Mapping as _Mapping
from typing import Any as _Any
from typing import Protocol as _Protocol
from typing import runtime_checkable as _runtime_checkable

from .config import HandlerConfig
from .errors import (
    HandlerFailed,
    HandlerTimeout,
    HandlerUnreachable,
    InvalidHandlerOutput,
    InvocationError,
)

__all__ = [
    "HandlerConfig",
    "InvocationError",
    "HandlerTimeout",
    "HandlerUnreachable",
    "HandlerFailed",
    "InvalidHandlerOutput",
    "Invoker",
    "create_invoker",
]


@_runtime_checkable
class Invoker(_Protocol):
    async def invoke(self, event: dict[str, _Any], *, log_context: _Mapping[str, str] | None = None) -> _Any:
        """Invoke the handler; return its decoded JSON answer (dict, list, str, None...)
        or raise an :class:`InvocationError`."""
        ...

    async def close(self) -> None:
        """Release workers, sessions and threads."""
        ...


def create_invoker(cfg: HandlerConfig, *, logger: _Any = None) -> Invoker:
    """Build the invoker for ``cfg.type``.  ``logger`` is a structlog-style bound
    logger (``.info/.warning/.error(event, **fields)``); default ``structlog.get_logger()``."""
    if logger is None:
        import structlog

        logger = structlog.get_logger("lambda_bridge")
    if cfg.type == "python":
        from .python_invoker import PythonInvoker

        return PythonInvoker(cfg, logger)
    if cfg.type == "nodejs":
        from .node_invoker import NodeInvoker

        return NodeInvoker(cfg, logger)
    if cfg.type == "http":
        from .http_invoker import HttpInvoker

        return HttpInvoker(cfg, logger)
    if cfg.type == "lambda":
        from .lambda_invoker import LambdaInvoker

        return LambdaInvoker(cfg, logger)
    raise ValueError(f"unknown handler type {cfg.type!r}")
