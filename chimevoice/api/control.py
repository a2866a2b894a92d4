"""What the HTTP call-control API needs from the rest of the daemon: :class:`CallControl`.

The API layer has already checked everything the configuration can tell (the SIP media
application exists, ``FromPhoneNumber`` is one of the configured numbers, numbers are E.164,
SipHeaders names and counts, Arguments counts) before it calls the implementation; the
implementation raises :class:`~chimevoice.api.errors.ApiError` subclasses for the rest, e.g.
:class:`NotFoundException` for an unknown transaction, :class:`ResourceLimitExceededException`
when no more calls can be placed, :class:`ServiceUnavailableException` while draining.
Any other exception becomes a 500 ``ServiceFailureException``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from .errors import (
    AccessDeniedException,
    ApiError,
    BadRequestException,
    ForbiddenException,
    NotFoundException,
    ResourceLimitExceededException,
    ServiceFailureException,
    ServiceUnavailableException,
    ThrottledClientException,
    UnauthorizedClientException,
)

__all__ = [
    "AccessDeniedException",
    "ApiError",
    "BadRequestException",
    "CallControl",
    "CreateCallRequest",
    "ForbiddenException",
    "NotFoundException",
    "ResourceLimitExceededException",
    "ServiceFailureException",
    "ServiceUnavailableException",
    "ThrottledClientException",
    "UnauthorizedClientException",
    "UnavailableCallControl",
    "UpdateCallRequest",
]


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class CreateCallRequest:
    """A validated CreateSipMediaApplicationCall.

    ``sip_media_application_id``: a configured SIP media application.
    ``from_phone_number``: one of the configured Voice Connector phone numbers, E.164 with ``+``.
    ``to_phone_number``: the number to call, E.164 with ``+``.
    ``sip_headers``: ``X-...``, ``User-to-User`` and ``Diversion`` headers for the outbound leg
    (at most 20), spelled as received.
    ``arguments``: the ``ArgumentsMap`` (at most 20), for the handler's ``NEW_OUTBOUND_CALL`` event.
    """

    sip_media_application_id: str
    from_phone_number: str
    to_phone_number: str
    sip_headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    arguments: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "sip_headers", _frozen(self.sip_headers))
        object.__setattr__(self, "arguments", _frozen(self.arguments))


@dataclass(frozen=True, slots=True)
class UpdateCallRequest:
    """A validated UpdateSipMediaApplicationCall.

    ``sip_media_application_id``: a configured SIP media application.
    ``transaction_id``: as received; the implementation raises NotFoundException when it does not
    know it (or it belongs to another application).
    ``arguments``: at most 20, for the handler's ``CALL_UPDATE_REQUESTED`` event.
    """

    sip_media_application_id: str
    transaction_id: str
    arguments: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "arguments", _frozen(self.arguments))


@runtime_checkable
class CallControl(Protocol):
    """Places and updates calls for the API; the call driver implements it."""

    async def create_call(self, request: CreateCallRequest) -> str:
        """Start an outbound call; return its TransactionId (a GUID string)."""
        ...

    async def update_call(self, request: UpdateCallRequest) -> str:
        """Send CALL_UPDATE_REQUESTED to the call's handler; return the TransactionId."""
        ...


@dataclass(frozen=True, slots=True)
class UnavailableCallControl:
    """Stand-in until the call driver implements :class:`CallControl`: every call is a 503."""

    message: str = "call control is not available yet"

    async def create_call(self, request: CreateCallRequest) -> str:
        """Always raises ServiceUnavailableException."""
        raise ServiceUnavailableException(self.message)

    async def update_call(self, request: UpdateCallRequest) -> str:
        """Always raises ServiceUnavailableException."""
        raise ServiceUnavailableException(self.message)
