"""AWS-shaped API errors: an exception name (the restJson1 error code), an HTTP status and a message.

The HTTP layer turns every :class:`ApiError` into the response botocore parses: the status code,
an ``x-amzn-ErrorType`` header with the code and a JSON body ``{"Code": ..., "Message": ...}``.
The status codes of the modeled exceptions are the ``error.httpStatusCode`` of the
``chime-sdk-voice`` service model (checked by tests/api/test_api_model.py).
"""
from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AccessDeniedException",
    "ApiError",
    "BadRequestException",
    "ForbiddenException",
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "NotFoundException",
    "ResourceLimitExceededException",
    "ServiceFailureException",
    "ServiceUnavailableException",
    "ThrottledClientException",
    "UnauthorizedClientException",
    "UnknownOperationException",
    "UnrecognizedClientException",
]


class ApiError(Exception):
    """An error the API answers with: ``code`` (exception name), ``status`` (HTTP), ``message``."""

    code: ClassVar[str] = "ServiceFailureException"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


# ---- modeled chime-sdk-voice exceptions


class BadRequestException(ApiError):
    """The input does not match the service's restrictions (also: a FromPhoneNumber not ours)."""
    code, status = "BadRequestException", 400


class NotFoundException(ApiError):
    """An unknown SIP media application, transaction, rule, connector or phone number."""
    code, status = "NotFoundException", 404


class ForbiddenException(ApiError):
    """The client is permanently forbidden from making the request."""
    code, status = "ForbiddenException", 403


class UnauthorizedClientException(ApiError):
    """The client is not currently authorized to make the request."""
    code, status = "UnauthorizedClientException", 401


class AccessDeniedException(ApiError):
    """The caller may not perform the operation."""
    code, status = "AccessDeniedException", 403


class ResourceLimitExceededException(ApiError):
    """A limit was reached (e.g. too many calls at once)."""
    code, status = "ResourceLimitExceededException", 400


class ThrottledClientException(ApiError):
    """Too many requests."""
    code, status = "ThrottledClientException", 429


class ServiceUnavailableException(ApiError):
    """The service cannot take the request now (e.g. draining, or no call control yet)."""
    code, status = "ServiceUnavailableException", 503


class ServiceFailureException(ApiError):
    """An unexpected failure inside the service."""
    code, status = "ServiceFailureException", 500


# ---- errors of the AWS front end (authentication, routing), not in the service model


class MissingAuthenticationTokenException(ApiError):
    """No Authorization header (an unsigned request)."""
    code, status = "MissingAuthenticationTokenException", 403


class IncompleteSignatureException(ApiError):
    """An Authorization header that is not a well-formed AWS4-HMAC-SHA256 one (AWS: 400)."""
    code, status = "IncompleteSignatureException", 400


class InvalidSignatureException(ApiError):
    """A signature that does not verify, a wrong credential scope or an expired (skewed) date."""
    code, status = "InvalidSignatureException", 403


class UnrecognizedClientException(ApiError):
    """An access key id that is not in the configuration."""
    code, status = "UnrecognizedClientException", 403


class UnknownOperationException(ApiError):
    """No operation has this method and path."""
    code, status = "UnknownOperationException", 404
