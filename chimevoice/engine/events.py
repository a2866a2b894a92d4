"""Builders for the invocation event JSON (spec 01 §5–§6).

Key order follows the guide's examples so that events serialise the way the
service's do. ``CallDetails`` carries the SIP media application id under both
spellings the guide uses (``SipMediaApplicationId`` and ``SipApplicationId``,
01 §9 item 2), so handlers written against either read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = "1.0"

NEW_INBOUND_CALL = "NEW_INBOUND_CALL"
NEW_OUTBOUND_CALL = "NEW_OUTBOUND_CALL"
RINGING = "RINGING"
CALL_ANSWERED = "CALL_ANSWERED"
ACTION_SUCCESSFUL = "ACTION_SUCCESSFUL"
ACTION_FAILED = "ACTION_FAILED"
ACTION_INTERRUPTED = "ACTION_INTERRUPTED"
HANGUP = "HANGUP"
INVALID_LAMBDA_RESPONSE = "INVALID_LAMBDA_RESPONSE"
DIGITS_RECEIVED = "DIGITS_RECEIVED"
CALL_UPDATE_REQUESTED = "CALL_UPDATE_REQUESTED"

LEG_A = "LEG-A"
LEG_B = "LEG-B"
CONNECTED = "Connected"
DISCONNECTED = "Disconnected"


@dataclass(slots=True)
class Participant:
    call_id: str
    tag: str
    to: str
    from_: str
    direction: str
    start_ms: int
    status: str = CONNECTED
    sip_headers: dict[str, str] | None = None

    def to_json(self, *, with_status: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "CallId": self.call_id,
            "ParticipantTag": self.tag,
            "To": self.to,
            "From": self.from_,
            "Direction": self.direction,
            "StartTimeInMilliseconds": str(self.start_ms),
        }
        if with_status:
            out["Status"] = self.status
        if self.sip_headers:
            out["SipHeaders"] = dict(self.sip_headers)
        return out


@dataclass(slots=True)
class CallDetailsInfo:
    """The static part of CallDetails for one transaction."""
    transaction_id: str
    aws_account_id: str
    aws_region: str
    sip_media_application_id: str
    sip_rule_id: str | None = None
    participants: list[Participant] = field(default_factory=list)


def call_details(info: CallDetailsInfo, attributes: dict[str, Any] | None,
                 *, with_status: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"TransactionId": info.transaction_id}
    if attributes:
        out["TransactionAttributes"] = dict(attributes)
    out["AwsAccountId"] = info.aws_account_id
    out["AwsRegion"] = info.aws_region
    if info.sip_rule_id is not None:
        out["SipRuleId"] = info.sip_rule_id
    out["SipMediaApplicationId"] = info.sip_media_application_id
    out["SipApplicationId"] = info.sip_media_application_id
    out["Participants"] = [p.to_json(with_status=with_status) for p in info.participants]
    return out


def build_event(sequence: int, event_type: str, details: dict[str, Any], *,
                action_data: dict[str, Any] | None = None,
                error_type: str | None = None, error_message: str | None = None,
                top_level: dict[str, Any] | None = None) -> dict[str, Any]:
    """One invocation event. Top-level ErrorType/ErrorMessage are used only by
    INVALID_LAMBDA_RESPONSE (02a §9 A8); ACTION_FAILED carries them in ActionData."""
    event: dict[str, Any] = {
        "SchemaVersion": SCHEMA_VERSION,
        "Sequence": sequence,
        "InvocationEventType": event_type,
    }
    if action_data is not None:
        event["ActionData"] = action_data
    if top_level:
        event.update(top_level)
    event["CallDetails"] = details
    if error_type is not None:
        event["ErrorType"] = error_type
        event["ErrorMessage"] = error_message or ""
    return event


def action_data(action_type: str, parameters: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """``{"Type": ..., "Parameters": ...}`` plus outputs such as ReceivedDigits or
    ErrorType/ErrorMessage (inside ActionData, spec README reading 3)."""
    out: dict[str, Any] = {"Type": action_type, "Parameters": parameters}
    out.update(extra)
    return out
