"""A bot backed by Amazon Lex V2 (the ``lexv2-runtime`` RecognizeText API, through boto3).

The real service streams audio to Lex (``StartConversation``); this backend is fed
text (speech already recognised) and DTMF digits, which Lex V2 accepts as text.
boto3 is blocking: every call runs in a worker thread.
"""
from __future__ import annotations

import asyncio
from typing import Any

import structlog

from .base import (
    CONFIRMATION_NONE,
    FALLBACK_INTENT,
    STATE_FAILED,
    BotTurn,
    clean_dtmf,
    intent_object,
    intent_result,
    interpretation,
    render_messages,
)
from .params import (
    ACTION_EXECUTION_THROTTLED,
    INVALID_ACTION_PARAMETER,
    MSG_BOT_ACCESS_DENIED,
    MSG_BOT_NOT_FOUND,
    MSG_SYSTEM_ERROR,
    P_CONFIGURATION,
    P_LOCALE_ID,
    RESOURCE_ACCESS_DENIED,
    RESOURCE_NOT_FOUND,
    SYSTEM_EXCEPTION,
    BotError,
    BotParameters,
    msg_invalid,
    msg_throttled,
)

log = structlog.get_logger("chimevoice.bots")

#: Lex V2 error codes -> (ErrorType, message) of 03c §7.
_ERRORS = {
    "ResourceNotFoundException": (RESOURCE_NOT_FOUND, MSG_BOT_NOT_FOUND),
    "AccessDeniedException": (RESOURCE_ACCESS_DENIED, MSG_BOT_ACCESS_DENIED),
}


def lex_error(exc: BaseException) -> BotError:
    """The BotError for a boto3/botocore exception raised by a Lex runtime call."""
    response = getattr(exc, "response", None)
    code = (response or {}).get("Error", {}).get("Code", "") if isinstance(response, dict) else ""
    message = (response or {}).get("Error", {}).get("Message", "") if isinstance(response, dict) else ""
    if code in _ERRORS:
        return BotError(*_ERRORS[code])
    if code in ("ThrottlingException", "TooManyRequestsException", "LimitExceededException"):
        return BotError(ACTION_EXECUTION_THROTTLED, msg_throttled(message or code))
    if code == "ValidationException":
        param = P_LOCALE_ID if "locale" in message.lower() else P_CONFIGURATION
        return BotError(INVALID_ACTION_PARAMETER, msg_invalid(param))
    return BotError(SYSTEM_EXCEPTION, MSG_SYSTEM_ERROR)


# -- camelCase (Lex) -> PascalCase (the event) ---------------------------------------

def convert_slot(slot: Any) -> dict | None:
    if not isinstance(slot, dict):
        return None
    value = slot.get("value")
    converted_value = None
    if isinstance(value, dict):
        converted_value = {
            "OriginalValue": value.get("originalValue"),
            "InterpretedValue": value.get("interpretedValue"),
            "ResolvedValues": list(value.get("resolvedValues") or []),
        }
    return {
        "Value": converted_value,
        "Values": [convert_slot(v) for v in slot.get("values") or []],
    }


def convert_intent(intent: Any) -> dict:
    intent = intent if isinstance(intent, dict) else {}
    slots = intent.get("slots") or {}
    return intent_object(
        intent.get("name") or FALLBACK_INTENT,
        {str(k): convert_slot(v) for k, v in slots.items()},
        intent.get("state"),
        intent.get("confirmationState") or CONFIRMATION_NONE)


def convert_response(response: dict, session_id: str, *, state: str | None = None) -> dict:
    """The event's IntentResult from a RecognizeText response (*state* overrides Intent.State)."""
    session_state = response.get("sessionState") or {}
    interps_in = response.get("interpretations") or []
    lex_intent = session_state.get("intent")
    if lex_intent is None and interps_in:
        lex_intent = interps_in[0].get("intent")
    top = convert_intent(lex_intent)
    if state is not None:
        top["State"] = state
    interps = []
    for item in interps_in:
        converted = convert_intent(item.get("intent"))
        if converted["Name"] == top["Name"]:
            converted = top
        score = (item.get("nluConfidence") or {}).get("score")
        interps.append(interpretation(converted, score))
    return intent_result(response.get("sessionId") or session_id,
                         dict(session_state.get("sessionAttributes") or {}), top, interps)


class LexV2Bot:
    """A :class:`~chimevoice.bots.BotSession` that talks to an Amazon Lex V2 bot alias."""

    def __init__(self, params: BotParameters, *, session_id: str, endpoint_url: str | None = None,
                 client: Any = None, max_turns: int = 50, timeout_s: float = 10.0) -> None:
        self.params = params
        self.session_id = session_id
        self.endpoint_url = endpoint_url
        self.max_turns = max_turns
        self.timeout_s = timeout_s
        self._client = client
        self._first = True
        self.turns = 0
        self._final: BotTurn | None = None
        self._last_action: str | None = None
        self._last_slot: str | None = None
        self._last_response: dict | None = None

    def _get_client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(connect_timeout=self.timeout_s, read_timeout=self.timeout_s,
                            retries={"mode": "standard", "total_max_attempts": 2})
            self._client = boto3.session.Session().client(
                "lexv2-runtime", region_name=self.params.bot_alias_arn.region,
                endpoint_url=self.endpoint_url, config=config)
        return self._client

    def _request(self, text: str) -> dict:
        arn = self.params.bot_alias_arn
        kwargs: dict[str, Any] = {
            "botId": arn.bot_id, "botAliasId": arn.bot_alias_id,
            "localeId": self.params.locale_id, "sessionId": self.session_id, "text": text,
        }
        if self._first:
            state: dict[str, Any] = {}
            if self.params.session_attributes is not None:
                state["sessionAttributes"] = dict(self.params.session_attributes)
            if self.params.dialog_action_type is not None:
                state["dialogAction"] = {"type": self.params.dialog_action_type}
            if state:
                kwargs["sessionState"] = state
        return kwargs

    async def _recognize(self, text: str) -> dict:
        kwargs = self._request(text)

        def call() -> dict:
            return self._get_client().recognize_text(**kwargs)

        try:
            response = await asyncio.to_thread(call)
        except Exception as exc:  # botocore ClientError, connection errors, ...
            err = lex_error(exc)
            log.warning("lex_error", session_id=self.session_id, arn=self.params.arn,
                        error=str(exc), error_type=err.error_type)
            raise err from exc
        self._first = False
        self._last_response = response
        return response

    # -- BotSession ------------------------------------------------------------
    async def start(self) -> BotTurn:
        welcome = [(m.content, m.content_type) for m in self.params.welcome_messages]
        if welcome:
            text, ssml = render_messages(welcome)
            self._last_action = "ElicitIntent"
            return BotTurn(text, ssml, False, None, "ElicitIntent")
        # RecognizeText needs user text: without welcome messages the caller speaks first.
        return BotTurn(None, None, False, None, None)

    async def input_text(self, text: str) -> BotTurn:
        if self._final is not None:
            return self._final
        self.turns += 1
        text = " ".join(str(text).split())
        if not text:
            # Lex refuses empty input; the bot keeps waiting.
            return self._limit(BotTurn(None, None, False, None, self._last_action, self._last_slot))
        response = await self._recognize(text)
        return self._limit(self._turn(response))

    async def input_dtmf(self, digits: str) -> BotTurn:
        return await self.input_text(clean_dtmf(digits))

    def _turn(self, response: dict) -> BotTurn:
        messages = [(m.get("content"), m.get("contentType"))
                    for m in response.get("messages") or []
                    if m.get("contentType") in ("PlainText", "SSML")]
        text, ssml = render_messages(messages)
        action = ((response.get("sessionState") or {}).get("dialogAction") or {})
        self._last_action = action.get("type")
        self._last_slot = action.get("slotToElicit")
        if self._last_action == "Close":
            self._final = BotTurn(text, ssml, True, convert_response(response, self.session_id), "Close")
            return self._final
        return BotTurn(text, ssml, False, None, self._last_action, self._last_slot)

    def _limit(self, turn: BotTurn) -> BotTurn:
        if turn.finished or self.turns < self.max_turns:
            return turn
        response = self._last_response
        log.info("bot_turn_limit", session_id=self.session_id, arn=self.params.arn, turns=self.turns)
        result = (convert_response(response, self.session_id, state=STATE_FAILED) if response is not None
                  else intent_result(self.session_id, dict(self.params.session_attributes or {}),
                                     intent_object(FALLBACK_INTENT, {}, STATE_FAILED, CONFIRMATION_NONE), []))
        self._final = BotTurn(None, None, True, result, "Close")
        return self._final
