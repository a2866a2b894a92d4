"""Error types and the English wire messages used in ACTION_FAILED events."""
from __future__ import annotations

INVALID_ACTION_PARAMETER = "InvalidActionParameter"
MISSING_REQUIRED_ACTION_PARAMETER = "MissingRequiredActionParameter"
INVALID_AUDIO_SOURCE = "InvalidAudioSource"
SYSTEM_EXCEPTION = "SystemException"

MSG_BAD_LEG = "CallId or ParticipantTag parameter for action is invalid."
MSG_SYSTEM = "System error while running action"
MSG_DURATION = "Duration parameter is invalid."


class ActionError(Exception):
    """An action failed; becomes ACTION_FAILED with ErrorType/ErrorMessage."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
