"""Errors raised by lambda_bridge invokers.

Every error has ``kind`` (a short string the caller can branch on or put in
logs/metrics) and ``message`` (a human readable explanation).  ``retryable``
is used by :mod:`lambda_bridge.policy`: an attempt that failed with a
retryable error (connection refused, HTTP 4xx/5xx, throttling...) starts the
retry immediately instead of waiting for ``retry_after_s``.
"""

from __future__ import annotations


class InvocationError(Exception):
    """Base class: the handler could not produce a usable answer."""

    kind: str = "invocation_error"

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message


class HandlerTimeout(InvocationError):
    """No answer before the deadline (retries included)."""

    kind = "timeout"


class HandlerUnreachable(InvocationError):
    """The handler could not be invoked at all (import error, connection
    refused, function not found, HTTP error status after the retry...)."""

    kind = "unreachable"


class HandlerFailed(InvocationError):
    """The function ran and raised (Lambda's ``FunctionError``), or its
    runtime died in the middle of the invocation (``Runtime.ExitError``)."""

    kind = "error"

    def __init__(
        self,
        error_type: str,
        error_message: str,
        *,
        stack_trace: list[str] | None = None,
    ) -> None:
        error_type = str(error_type or "")
        error_message = str(error_message or "")
        if error_type and error_message:
            text = f"{error_type}: {error_message}"
        else:
            text = error_type or error_message or "handler failed"
        super().__init__(text, retryable=False)
        self.error_type = error_type
        self.error_message = error_message
        self.stack_trace = list(stack_trace or [])


class InvalidHandlerOutput(InvocationError):
    """The function answered with something that is not JSON (or that could
    not be serialised to JSON)."""

    kind = "invalid_output"
