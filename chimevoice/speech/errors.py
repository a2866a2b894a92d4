"""Errors of the text-to-speech layer, with the exact ErrorType / ErrorMessage pairs.

Source: spec 03b §2.7 (Speak, guide L12907-12920), §3.8 (SpeakAndGetDigits,
L13296-13308), §5 (E3-E5, E9, E12, E13, E15) and Appendix A (English wording).

===================================  ==============================  ===================================================
condition                            ErrorType                       ErrorMessage
===================================  ==============================  ===================================================
Text missing or ``""``               MissingRequiredActionParameter  ``Text is a required parameter.`` (stated)
Text longer than 1,000 characters    MissingRequiredActionParameter  ``Text is limited to 1,000 characters`` (stated)
Text not a string                    InvalidActionParameter          ``Text parameter value is invalid.`` (ours)
Engine not ``standard``/``neural``,  InvalidActionParameter          ``Engine parameter value is invalid.`` (ours)
or the voice lacks that engine
TextType not ``text``/``ssml``       InvalidActionParameter          ``TextType parameter value is invalid.`` (ours)
LanguageCode malformed, not a Polly  InvalidActionParameter          ``LanguageCode parameter value is invalid.`` (ours)
language, not spoken by the voice,
or (local backend) no local voice
for it
VoiceId unknown (case-sensitive),    InvalidActionParameter          ``VoiceId parameter value is invalid.`` (ours)
or (local backend) no local voice
for the voice's own language
SSML malformed or not Polly SSML     InvalidActionParameter          ``Text parameter value is not valid SSML.`` (ours)
Polly rejects a parameter we cannot  InvalidActionParameter          ``Speech parameter value is invalid.`` (ours)
name (Polly backend only)
TTS credentials/permission refused   AccessDenied                    Speak: ``The
                                                                     AWSServiceRoleForAmazonChimeVoiceConnector
                                                                     service-linked role is not configured
                                                                     correctly.``; SpeakAndGetDigits: ``The
                                                                     AWSServiceRoleForAmazonChimeVoiceConnector
                                                                     role is not configured correctly.`` (stated)
TTS throttled                        ActionExecutionThrottled        ``Amazon Polly is throttling the request to
                                                                     synthesize speech.`` (stated)
anything else (engine crash,         SystemException                 ``System error while running action``
network, Polly 5xx, ...)                                             (stated, JSON form)
===================================  ==============================  ===================================================

The guide leaves the ``InvalidActionParameter`` message empty (L12914, L13305); the
``<Name> parameter value is invalid.`` wording is the one spec 03b §5 E9 recommends.
:class:`SpeechError` subclasses the engine's :class:`~chimevoice.engine.errors.ActionError`,
so an action may simply let it propagate to become ``ACTION_FAILED``. The only message
that depends on the action is AccessDenied's: use :meth:`SpeechError.message_for`.
"""
from __future__ import annotations

from chimevoice.engine.errors import ActionError

__all__ = [
    "INVALID_ACTION_PARAMETER",
    "MISSING_REQUIRED_ACTION_PARAMETER",
    "ACCESS_DENIED",
    "ACTION_EXECUTION_THROTTLED",
    "SYSTEM_EXCEPTION",
    "MSG_TEXT_REQUIRED",
    "MSG_TEXT_TOO_LONG",
    "MSG_INVALID_TEXT",
    "MSG_INVALID_ENGINE",
    "MSG_INVALID_TEXT_TYPE",
    "MSG_INVALID_LANGUAGE",
    "MSG_INVALID_VOICE",
    "MSG_INVALID_SSML",
    "MSG_INVALID_PARAMETERS",
    "MSG_ACCESS_DENIED_SPEAK",
    "MSG_ACCESS_DENIED_SPEAK_AND_GET_DIGITS",
    "MSG_THROTTLED",
    "MSG_SYSTEM",
    "SpeechError",
]

INVALID_ACTION_PARAMETER = "InvalidActionParameter"
MISSING_REQUIRED_ACTION_PARAMETER = "MissingRequiredActionParameter"
ACCESS_DENIED = "AccessDenied"
ACTION_EXECUTION_THROTTLED = "ActionExecutionThrottled"
SYSTEM_EXCEPTION = "SystemException"

# Stated by the guide (English wording from spec 03b Appendix A).
MSG_TEXT_REQUIRED = "Text is a required parameter."
MSG_TEXT_TOO_LONG = "Text is limited to 1,000 characters"
MSG_ACCESS_DENIED_SPEAK = (
    "The AWSServiceRoleForAmazonChimeVoiceConnector service-linked role is not configured correctly."
)
MSG_ACCESS_DENIED_SPEAK_AND_GET_DIGITS = (
    "The AWSServiceRoleForAmazonChimeVoiceConnector role is not configured correctly."
)
MSG_THROTTLED = "Amazon Polly is throttling the request to synthesize speech."
MSG_SYSTEM = "System error while running action"

# Chosen here (the guide's message cell is empty; wording per spec 03b §5 E9).
MSG_INVALID_TEXT = "Text parameter value is invalid."
MSG_INVALID_ENGINE = "Engine parameter value is invalid."
MSG_INVALID_TEXT_TYPE = "TextType parameter value is invalid."
MSG_INVALID_LANGUAGE = "LanguageCode parameter value is invalid."
MSG_INVALID_VOICE = "VoiceId parameter value is invalid."
MSG_INVALID_SSML = "Text parameter value is not valid SSML."
MSG_INVALID_PARAMETERS = "Speech parameter value is invalid."


class SpeechError(ActionError):
    """A synthesis request failed; carries the ErrorType/ErrorMessage for ``ACTION_FAILED``.

    ``error_type`` / ``message``: the wire values (``message`` is the Speak wording;
    see :meth:`message_for`). ``parameter``: the Speak parameter at fault, if any
    (``"Text"``, ``"Engine"``, ``"TextType"``, ``"LanguageCode"``, ``"VoiceId"``).
    ``reason``: a short machine-readable cause for logs and tests. ``detail``: a human
    explanation for logs only (never sent to the handler).
    """

    def __init__(
        self,
        error_type: str,
        message: str,
        *,
        parameter: str | None = None,
        reason: str = "",
        detail: str = "",
    ) -> None:
        super().__init__(error_type, message)
        self.parameter = parameter
        self.reason = reason
        self.detail = detail

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return (f"SpeechError({self.error_type!r}, {self.message!r}, parameter={self.parameter!r}, "
                f"reason={self.reason!r}, detail={self.detail!r})")

    def message_for(self, action_type: str) -> str:
        """The ErrorMessage for ``action_type`` ("Speak" or "SpeakAndGetDigits").

        Only AccessDenied differs between the two actions' error tables (spec 03b D18).
        """
        if self.error_type == ACCESS_DENIED and action_type == "SpeakAndGetDigits":
            return MSG_ACCESS_DENIED_SPEAK_AND_GET_DIGITS
        return self.message

    def as_action_data(self, action_type: str = "Speak") -> dict[str, str]:
        """``{"ErrorType": ..., "ErrorMessage": ...}`` to merge into ``ActionData``."""
        return {"ErrorType": self.error_type, "ErrorMessage": self.message_for(action_type)}

    # -- constructors --------------------------------------------------------------------
    @classmethod
    def text_required(cls) -> SpeechError:
        return cls(MISSING_REQUIRED_ACTION_PARAMETER, MSG_TEXT_REQUIRED, parameter="Text",
                   reason="text_missing")

    @classmethod
    def text_too_long(cls, detail: str = "") -> SpeechError:
        return cls(MISSING_REQUIRED_ACTION_PARAMETER, MSG_TEXT_TOO_LONG, parameter="Text",
                   reason="text_too_long", detail=detail)

    @classmethod
    def invalid(cls, parameter: str, reason: str, detail: str = "") -> SpeechError:
        message = {
            "Text": MSG_INVALID_TEXT,
            "Engine": MSG_INVALID_ENGINE,
            "TextType": MSG_INVALID_TEXT_TYPE,
            "LanguageCode": MSG_INVALID_LANGUAGE,
            "VoiceId": MSG_INVALID_VOICE,
        }[parameter]
        return cls(INVALID_ACTION_PARAMETER, message, parameter=parameter, reason=reason, detail=detail)

    @classmethod
    def invalid_ssml(cls, detail: str) -> SpeechError:
        return cls(INVALID_ACTION_PARAMETER, MSG_INVALID_SSML, parameter="Text", reason="ssml",
                   detail=detail)

    @classmethod
    def invalid_parameters(cls, detail: str) -> SpeechError:
        return cls(INVALID_ACTION_PARAMETER, MSG_INVALID_PARAMETERS, reason="invalid", detail=detail)

    @classmethod
    def access_denied(cls, detail: str = "") -> SpeechError:
        return cls(ACCESS_DENIED, MSG_ACCESS_DENIED_SPEAK, reason="access", detail=detail)

    @classmethod
    def throttled(cls, detail: str = "") -> SpeechError:
        return cls(ACTION_EXECUTION_THROTTLED, MSG_THROTTLED, reason="throttled", detail=detail)

    @classmethod
    def system(cls, detail: str = "", reason: str = "system") -> SpeechError:
        return cls(SYSTEM_EXCEPTION, MSG_SYSTEM, reason=reason, detail=detail)
