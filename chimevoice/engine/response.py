"""Validation of a handler's response (spec 01 §8, 04 §3.3, 02a §1).

A pure function: :func:`parse_response` returns either a
:class:`HandlerResponse` or a :class:`ResponseProblem` that becomes an
``INVALID_LAMBDA_RESPONSE`` event. The log messages are the SMA log messages
the guide lists (04 §3.3).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .events import SCHEMA_VERSION

MAX_ACTIONS = 10
MAX_ATTRIBUTE_BYTES = 20 * 1024

# Every action type the guide defines. Types outside this set are an invalid
# response ("Unsupported action name specified."); types inside it that this
# server does not implement fail at run time with ACTION_FAILED.
KNOWN_ACTIONS = frozenset({
    "CallAndBridge", "Hangup", "JoinChimeMeeting", "ModifyChimeMeetingAttendees", "Pause",
    "PlayAudio", "PlayAudioAndGetDigits", "ReceiveDigits", "RecordAudio", "SendDigits", "Speak",
    "SpeakAndGetDigits", "StartBotConversation", "StartCallRecording", "StopCallRecording",
    "PauseCallRecording", "ResumeCallRecording", "VoiceFocus",
})

INVALID_RESPONSE = "InvalidLambdaResponse"
ATTRIBUTES_MAP_SIZE = "TransactionAttributesInvalidMapSize"

_UNSET: Any = object()


@dataclass(frozen=True, slots=True)
class HandlerResponse:
    actions: list[dict[str, Any]] | None      # None = keep the current actions (01 §2.1 rule 6)
    attributes: Any = _UNSET                  # _UNSET/None = unchanged, {} = clear, dict = replace

    @property
    def has_attributes(self) -> bool:
        return self.attributes is not _UNSET and self.attributes is not None


@dataclass(frozen=True, slots=True)
class ResponseProblem:
    error_type: str
    message: str


def parse_response(raw: Any, *, max_attributes: int = 100) -> HandlerResponse | ResponseProblem:
    if raw is None or raw == "":
        return ResponseProblem(INVALID_RESPONSE, "The response is blank or null.")
    if isinstance(raw, (str, bytes)):
        # A webhook or Lambda that returned a JSON document as a string.
        try:
            raw = json.loads(raw)
        except ValueError:
            return ResponseProblem(INVALID_RESPONSE, "Error reading the action list.")
    if not isinstance(raw, dict):
        return ResponseProblem(INVALID_RESPONSE, "Error reading the action list.")
    version = raw.get("SchemaVersion")
    if version is None:
        return ResponseProblem(INVALID_RESPONSE, "The response is blank or null.")
    if str(version) != SCHEMA_VERSION:
        return ResponseProblem(
            INVALID_RESPONSE,
            "The schema version in the invocation request does not match the schema version in the response.")
    attributes = raw.get("TransactionAttributes", _UNSET)
    if attributes is not _UNSET and attributes is not None:
        problem = _check_attributes(attributes, max_attributes)
        if problem:
            return problem
    actions = raw.get("Actions")
    if actions is None:
        return HandlerResponse(None, attributes)
    if not isinstance(actions, list):
        return ResponseProblem(INVALID_RESPONSE, "Error reading the action list.")
    if len(actions) > MAX_ACTIONS:
        return ResponseProblem(INVALID_RESPONSE, "Too many actions specified in the response.")
    for action in actions:
        if not isinstance(action, dict) or not isinstance(action.get("Type"), str):
            return ResponseProblem(INVALID_RESPONSE, "Error reading the action list.")
        if action["Type"] not in KNOWN_ACTIONS:
            return ResponseProblem(INVALID_RESPONSE, "Unsupported action name specified.")
        params = action.get("Parameters", {})
        if params is not None and not isinstance(params, dict):
            return ResponseProblem(INVALID_RESPONSE, "Error reading the action list.")
    return HandlerResponse(actions, attributes)


def _check_attributes(attributes: Any, max_attributes: int) -> ResponseProblem | None:
    if not isinstance(attributes, dict):
        return ResponseProblem(ATTRIBUTES_MAP_SIZE, "Transaction Attributes must be a map of key/value pairs.")
    if len(attributes) > max_attributes:
        return ResponseProblem(
            ATTRIBUTES_MAP_SIZE,
            f"Transaction Attributes has too many mappings. Maximum number of mappings is {max_attributes}")
    size = len(json.dumps(attributes, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_ATTRIBUTE_BYTES:
        return ResponseProblem(
            ATTRIBUTES_MAP_SIZE,
            f"Transaction Attributes payload is {size} bytes. Maximum size is {MAX_ATTRIBUTE_BYTES} bytes")
    return None


def apply_attributes(stored: dict[str, Any], response: HandlerResponse) -> dict[str, Any]:
    """The stored map after an accepted response (02a §9 A2: a present, non-empty
    object replaces the map; ``{}`` clears it; absent or null leaves it)."""
    if not response.has_attributes:
        return stored
    return dict(response.attributes)
