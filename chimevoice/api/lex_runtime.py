"""A local Amazon Lex V2 runtime (``lexv2-runtime``) for handlers (docs/aws-local.md#lex), backed by
chimevoice's local bots: the definitions of ``bots.local`` that StartBotConversation serves, so a
handler's ``RecognizeText`` gets the interpretation the phone path gives.

Operations (the REST-JSON paths of botocore's ``lexv2-runtime`` 2020-08-07 model)::

    POST   /bots/{botId}/botAliases/{botAliasId}/botLocales/{localeId}/sessions/{sessionId}/text       RecognizeText
    POST   .../sessions/{sessionId}/utterance   RecognizeUtterance (text/plain input; text or speech out)
    POST   .../sessions/{sessionId}             PutSession
    GET    .../sessions/{sessionId}             GetSession
    DELETE .../sessions/{sessionId}             DeleteSession
    POST   .../sessions/{sessionId}/conversation  StartConversation: refused (ValidationException)

Session state lives per (botId, botAliasId, localeId, sessionId) until it has been idle for
:data:`IDLE_SESSION_TTL_S` (Lex's default idle session TTL). Errors are the model's:
``ResourceNotFoundException`` (unknown bot, alias, locale or session), ``ValidationException``
(bad input), with ``x-amzn-ErrorType`` and a ``{"message": ...}`` body.

:class:`LexRuntime` is the whole API, free of any HTTP server: :func:`asgi_app` adapts it to ASGI
and :class:`LexRuntimeServer` serves that with hypercorn, which speaks HTTP/1.1 (boto3, aws-sdk v2)
and HTTP/2 with prior knowledge (``@aws-sdk/client-lex-runtime-v2`` uses ``NodeHttp2Handler``) on
one port. Requests are SigV4-verified (signing name ``lex``, any region).
"""
from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import re
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import structlog

from ..bots import (
    BotAliasArn,
    BotConfigError,
    BotDefinition,
    BotParameters,
    BotSessionStore,
    BotTurn,
    LocalBot,
    load_definition,
    local_bot_path,
)
from ..bots.local import SlotFill
from ..speech import SpeechError, SpeechRequest, Synthesizer
from .errors import ApiError
from .sigv4 import SigV4Verifier, parse_authorization

__all__ = ["HttpRequest", "HttpResponse", "LexRuntime", "LexRuntimeServer", "asgi_app"]

log = structlog.get_logger("chimevoice.lex_runtime")

IDLE_SESSION_TTL_S = 300.0
MAX_SESSIONS = 10_000
MAX_BODY = 256 * 1024
MAX_TEXT = 1024
#: Lex's own ids are 10 letters and digits (botocore insists on at least 10); a local bot's key of
#: ``bots.local`` may also hold ``_`` and ``-``
_BOT_ID = re.compile(r"[0-9a-zA-Z_-]{1,100}")
_SESSION_ID = re.compile(r"[0-9a-zA-Z._:-]{2,100}")
_DIALOG_ACTIONS = ("Close", "ConfirmIntent", "Delegate", "ElicitIntent", "ElicitSlot", "None")
_CONFIRMATION = ("Confirmed", "Denied", "None")
_INTENT_STATES = ("Failed", "Fulfilled", "InProgress", "ReadyForFulfillment", "Waiting", "FulfillmentInProgress")
#: Response-Content-Type -> (content type answered, Polly format, sample rate)
_AUDIO_FORMATS = {"audio/pcm": ("audio/pcm", "pcm", 16000), "audio/mpeg": ("audio/mpeg", "mp3", 22050),
                  "audio/*": ("audio/mpeg", "mp3", 22050), "audio/ogg": ("audio/ogg", "ogg_opus", 48000)}
_SESSIONS = re.compile(r"/bots/([^/]+)/botAliases/([^/]+)/botLocales/([^/]+)/sessions/([^/]+)(?:/([^/]+))?")


class LexError(Exception):
    """An error of the lexv2-runtime model: exception name, HTTP status (the model's), message."""

    STATUS = {"AccessDeniedException": 403, "ResourceNotFoundException": 404, "ValidationException": 400,
              "ThrottlingException": 429, "InternalServerException": 500, "ConflictException": 409,
              "UnknownOperationException": 404}

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, self.STATUS[code]


def _invalid(message: str) -> LexError:
    return LexError("ValidationException", message)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    raw_target: str
    """Path and query exactly as received (percent-encoded)."""
    headers: tuple[tuple[str, str], ...]
    body: bytes
    host_url: str = "http://localhost"
    http_version: str = "1.1"

    def header(self, name: str) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def _json_response(payload: Mapping[str, Any], request_id: str, status: int = 200,
                   headers: tuple[tuple[str, str], ...] = ()) -> HttpResponse:
    return HttpResponse(status, (("content-type", "application/json"), ("x-amzn-requestid", request_id),
                                 *headers), json.dumps(payload).encode())


def _packed(value: Any) -> str:
    """A header value as Lex sends its big ones: JSON, gzipped, base64."""
    return base64.b64encode(gzip.compress(json.dumps(value).encode(), mtime=0)).decode()


def _unpacked(value: str, what: str) -> Any:
    """A gzipped+base64 JSON header (RecognizeUtterance's sessionState); plain base64 JSON too."""
    try:
        raw = base64.b64decode(value, validate=True)
        try:
            raw = gzip.decompress(raw)
        except OSError:
            pass
        return json.loads(raw)
    except (ValueError, TypeError):
        raise _invalid(f"{what} must be base64-encoded (gzipped) JSON") from None


# -- camelCase views of the local bot's state ----------------------------------------------------

def _lex_slot(slot: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An IntentResult slot (PascalCase, calls/bots shape) as Lex's ``Slot``."""
    if not slot:
        return None
    value = slot.get("Value") or {}
    out: dict[str, Any] = {"value": {"originalValue": value.get("OriginalValue"),
                                     "interpretedValue": value.get("InterpretedValue"),
                                     "resolvedValues": list(value.get("ResolvedValues") or [])}}
    values = [v for v in (_lex_slot(v) for v in slot.get("Values") or []) if v]
    if values:
        out["values"] = values
    return out


def _lex_intent(intent: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": intent["Name"],
                           "slots": {k: _lex_slot(v) for k, v in (intent.get("Slots") or {}).items()}}
    if intent.get("State"):
        out["state"] = intent["State"]
    out["confirmationState"] = intent.get("ConfirmationState") or "None"
    return out


def _lex_interpretations(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for item in result.get("Interpretations") or []:
        entry: dict[str, Any] = {}
        if "NluConfidence" in item:
            entry["nluConfidence"] = {"score": item["NluConfidence"]["Score"]}
        entry["intent"] = _lex_intent(item["Intent"])
        entry["interpretationSource"] = "Lex"
        out.append(entry)
    return out


def _slot_fill(name: str, slot: Any) -> SlotFill | None:
    """A request's Lex ``Slot`` as the local bot's fill."""
    if slot is None:
        return None
    if not isinstance(slot, dict):
        raise _invalid(f"slot {name} must be an object")
    value = slot.get("value")
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("interpretedValue"), str) \
            or not value["interpretedValue"]:
        raise _invalid(f"slot {name}: value.interpretedValue must be a non-empty string")
    interpreted = value["interpretedValue"]
    resolved = value.get("resolvedValues") or [interpreted]
    if not isinstance(resolved, list) or not all(isinstance(v, str) for v in resolved):
        raise _invalid(f"slot {name}: value.resolvedValues must be a list of strings")
    original = value.get("originalValue") or interpreted
    return SlotFill(str(original), interpreted, list(resolved))


def _string_map(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and k and isinstance(v, str)
                                              for k, v in value.items()):
        raise _invalid(f"{what} must be a map of non-empty strings to strings")
    return dict(value)


@dataclass
class _Session:
    definition: BotDefinition
    params: BotParameters
    store: BotSessionStore = field(default_factory=BotSessionStore)
    bot: LocalBot | None = None
    turn: BotTurn | None = None
    result: dict[str, Any] | None = None      # the last closed intent's IntentResult
    messages: list[dict[str, str]] = field(default_factory=list)
    interpretations: list[dict[str, Any]] = field(default_factory=list)
    touched: float = 0.0

    def conversation(self) -> LocalBot:
        """The bot conversation going on, a new one (same stored state) after a Close."""
        if self.bot is None or self.bot.finished:
            self.bot = LocalBot(self.definition, self.params, session_id=self.params.call_id or "",
                                store=self.store)
            self.result = None
        return self.bot


class LexRuntime:
    """The lexv2-runtime API over the local bots ``local_bots`` (``bots.local``: botId or
    botId/botAliasId -> definition file), verifying SigV4 against ``keys``."""

    def __init__(self, local_bots: Mapping[str, Path | str], keys: Mapping[str, str], *,
                 synthesizer: Synthesizer | None = None, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 idle_ttl_s: float = IDLE_SESSION_TTL_S, max_sessions: int = MAX_SESSIONS) -> None:
        self.local_bots = dict(local_bots)
        self.synthesizer = synthesizer
        self._keys = dict(keys)
        self._clock = clock
        self._monotonic = monotonic
        self.idle_ttl_s = idle_ttl_s
        self.max_sessions = max_sessions
        self._verifiers: dict[str, SigV4Verifier] = {}
        self._sessions: dict[tuple[str, str, str, str], _Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    # -- the HTTP entry point ---------------------------------------------------------
    async def handle(self, request: HttpRequest) -> HttpResponse:
        request_id = str(uuid.uuid4())
        begun = time.perf_counter()
        operation = "-"
        try:
            path = request.raw_target.split("?", 1)[0]
            match = _SESSIONS.fullmatch(path)
            if match is None or match.group(5) != "conversation":
                # (StartConversation signs its event stream, STREAMING-AWS4-HMAC-SHA256-EVENTS: it is
                # refused below with its reason rather than with a signature mismatch)
                self._verify(request)
            if match is None:
                raise LexError("UnknownOperationException", f"No operation {request.method} {path[:200]}.")
            bot_id, alias_id, locale_id, session_id = (unquote(p) for p in match.groups()[:4])
            suffix = match.group(5)
            operation = {("POST", "text"): "RecognizeText", ("POST", "utterance"): "RecognizeUtterance",
                         ("POST", "conversation"): "StartConversation", ("POST", None): "PutSession",
                         ("GET", None): "GetSession", ("DELETE", None): "DeleteSession",
                         }.get((request.method.upper(), suffix), "-")
            if operation == "-":
                raise LexError("UnknownOperationException", f"No operation {request.method} {path[:200]}.")
            if operation == "StartConversation":
                raise _invalid("StartConversation (the bidirectional event stream) is not supported by "
                               "chimevoice's local Lex runtime: use RecognizeText or RecognizeUtterance")
            self._check_ids(bot_id, session_id, locale_id)
            key = (bot_id, alias_id, locale_id, session_id)
            response = await getattr(self, "_" + operation)(key, request, request_id)
        except ApiError as exc:                     # SigV4
            response = _error(exc.code, exc.status, exc.message, request_id)
        except LexError as exc:
            response = _error(exc.code, exc.status, exc.message, request_id)
        except Exception:
            log.exception("lex_runtime_failure", operation=operation)
            response = _error("InternalServerException", 500, "The service encountered an unexpected error.",
                              request_id)
        log.info("lex_runtime_request", operation=operation, status=response.status, http=request.http_version,
                 latency_ms=round((time.perf_counter() - begun) * 1000, 1))
        return response

    def _verify(self, request: HttpRequest) -> None:
        header = request.header("authorization") or ""
        try:
            region = parse_authorization(header).region if header else "us-east-1"
        except ApiError:
            region = "us-east-1"                     # the verifier reports the malformed header
        verifier = self._verifiers.get(region)
        if verifier is None:
            verifier = self._verifiers[region] = SigV4Verifier(self._keys, region=region, clock=self._clock,
                                                               service="lex", allow_unsigned_payload=True)
        verifier.verify(request.method, request.raw_target, request.headers, request.body,
                        host_url=request.host_url)

    @staticmethod
    def _check_ids(bot_id: str, session_id: str, locale_id: str) -> None:
        if not _BOT_ID.fullmatch(bot_id):
            raise _invalid(f"1 validation error detected: Value '{bot_id}' at 'botId' failed to satisfy "
                           "constraint: Member must satisfy regular expression pattern: ^[0-9a-zA-Z]+$")
        if not _SESSION_ID.fullmatch(session_id):
            raise _invalid(f"1 validation error detected: Value '{session_id}' at 'sessionId' failed to satisfy "
                           "constraint: Member must have length between 2 and 100 and match [0-9a-zA-Z._:-]+")
        if not locale_id:
            raise _invalid("localeId must not be empty")

    # -- sessions ---------------------------------------------------------------------
    def _definition(self, key: tuple[str, str, str, str]) -> tuple[BotDefinition, BotParameters]:
        bot_id, alias_id, locale_id, session_id = key
        arn = BotAliasArn(f"arn:aws:lex:local:000000000000:bot-alias/{bot_id}/{alias_id}", "aws", "local",
                          "000000000000", bot_id, alias_id)
        path = local_bot_path(arn, self.local_bots)
        if path is None:
            raise LexError("ResourceNotFoundException",
                           f"Bot {bot_id} with alias {alias_id} was not found (chimevoice serves the local bots "
                           "of bots.local)")
        try:
            definition = load_definition(path)
        except BotConfigError as exc:
            log.error("bot_definition_invalid", path=str(path), error=str(exc))
            raise LexError("InternalServerException", "The bot definition cannot be loaded.") from exc
        if locale_id not in definition.locales:
            raise LexError("ResourceNotFoundException",
                           f"Locale {locale_id} is not enabled for bot {bot_id} alias {alias_id}")
        return definition, BotParameters(arn, locale_id=locale_id, call_id=session_id)

    def _session(self, key: tuple[str, str, str, str], *, create: bool) -> _Session | None:
        definition, params = self._definition(key)
        now = self._monotonic()
        self._expire(now)
        session = self._sessions.get(key)
        if session is not None and session.definition is not definition:
            session.definition = definition        # the file changed: later conversations use it
        if session is None and create:
            if len(self._sessions) >= self.max_sessions:
                oldest = min(self._sessions, key=lambda k: self._sessions[k].touched)
                del self._sessions[oldest]
            session = self._sessions[key] = _Session(definition, params)
        if session is not None:
            session.touched = now
        return session

    def _expire(self, now: float) -> None:
        for key in [k for k, s in self._sessions.items() if now - s.touched > self.idle_ttl_s]:
            del self._sessions[key]

    def _apply_state(self, session: _Session, state: Any) -> BotTurn | None:
        """A request's ``sessionState`` (RecognizeText, RecognizeUtterance, PutSession)."""
        if state is None:
            return None
        if not isinstance(state, dict):
            raise _invalid("sessionState must be an object")
        attributes = _string_map(state["sessionAttributes"], "sessionState.sessionAttributes") \
            if state.get("sessionAttributes") is not None else None
        action = state.get("dialogAction")
        action_type = slot_to_elicit = None
        if action is not None:
            if not isinstance(action, dict) or action.get("type") not in _DIALOG_ACTIONS:
                raise _invalid(f"sessionState.dialogAction.type must be one of {', '.join(_DIALOG_ACTIONS)}")
            action_type, slot_to_elicit = action["type"], action.get("slotToElicit")
        intent = state.get("intent")
        name = confirmation = intent_state = None
        fills: dict[str, SlotFill | None] | None = None
        if intent is not None:
            if not isinstance(intent, dict) or not isinstance(intent.get("name"), str) or not intent["name"]:
                raise _invalid("sessionState.intent.name must be a non-empty string")
            name = intent["name"]
            confirmation = intent.get("confirmationState")
            if confirmation is not None and confirmation not in _CONFIRMATION:
                raise _invalid(f"sessionState.intent.confirmationState must be one of {', '.join(_CONFIRMATION)}")
            intent_state = intent.get("state")
            if intent_state is not None and intent_state not in _INTENT_STATES:
                raise _invalid(f"sessionState.intent.state must be one of {', '.join(_INTENT_STATES)}")
            slots = intent.get("slots") or {}
            if not isinstance(slots, dict):
                raise _invalid("sessionState.intent.slots must be a map")
            fills = {str(k): _slot_fill(str(k), v) for k, v in slots.items()}
        if attributes is None and name is None and action_type is None:
            return None
        bot = session.conversation()
        try:
            turn = bot.set_session(attributes=attributes, intent=name, slots=fills, confirmation=confirmation,
                                   dialog_action=action_type, slot_to_elicit=slot_to_elicit,
                                   intent_state=intent_state)
        except ValueError as exc:
            raise _invalid(str(exc)) from None
        return turn

    def _remember(self, session: _Session, turn: BotTurn) -> None:
        bot = session.bot
        assert bot is not None
        session.turn = turn
        session.messages = [{"content": c, "contentType": t} for c, t in turn.messages]
        if turn.finished and turn.intent_result is not None:
            session.result = turn.intent_result
            session.interpretations = _lex_interpretations(turn.intent_result)
        elif bot.state.interpretations:
            session.interpretations = _lex_interpretations(bot.progress_result())

    def _session_state(self, session: _Session, request_id: str | None = None) -> dict[str, Any]:
        bot = session.conversation() if session.bot is None else session.bot
        turn = session.turn
        out: dict[str, Any] = {}
        action = turn.dialog_action if turn is not None else None
        if action:
            out["dialogAction"] = {"type": action, **({"slotToElicit": turn.slot_to_elicit}
                                                      if turn is not None and turn.slot_to_elicit else {})}
        if bot.finished and session.result is not None:
            out["intent"] = _lex_intent(session.result["SessionState"]["Intent"])
        elif bot.state.intent is not None:
            out["intent"] = _lex_intent(bot.progress_result()["SessionState"]["Intent"])
        out["sessionAttributes"] = dict(bot.state.attributes)
        if request_id:
            out["originatingRequestId"] = request_id
        return out

    def _body(self, request: HttpRequest) -> dict[str, Any]:
        if len(request.body) > MAX_BODY:
            raise _invalid(f"The request body exceeds {MAX_BODY} bytes")
        if not request.body.strip():
            return {}
        try:
            body = json.loads(request.body)
        except ValueError:
            raise _invalid("The request body is not JSON.") from None
        if not isinstance(body, dict):
            raise _invalid("The request body must be a JSON object.")
        return body

    @staticmethod
    def _text(value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise _invalid("1 validation error detected: Value at 'text' failed to satisfy constraint: "
                           "Member must not be null and have length >= 1")
        if len(value) > MAX_TEXT:
            raise _invalid(f"1 validation error detected: Value at 'text' failed to satisfy constraint: "
                           f"Member must have length less than or equal to {MAX_TEXT}")
        return value

    async def _recognize(self, key: tuple[str, str, str, str], text: str, state: Any,
                         request_id: str) -> tuple[_Session, dict[str, Any]]:
        session = self._session(key, create=True)
        assert session is not None
        self._apply_state(session, state)
        bot = session.conversation()
        turn = await bot.input_text(text)
        self._remember(session, turn)
        log.info("lex_runtime_turn", bot=session.definition.name, session_id=key[3], dialog_action=turn.dialog_action,
                 intent=(session.result or {}).get("SessionState", {}).get("Intent", {}).get("Name")
                 if turn.finished else bot.state.intent)
        return session, {"messages": session.messages,
                         "sessionState": self._session_state(session, request_id),
                         "interpretations": session.interpretations, "sessionId": key[3]}

    # -- operations -------------------------------------------------------------------
    async def _RecognizeText(self, key: tuple[str, str, str, str], request: HttpRequest,
                             request_id: str) -> HttpResponse:
        body = self._body(request)
        text = self._text(body.get("text"))
        attributes = _string_map(body["requestAttributes"], "requestAttributes") \
            if body.get("requestAttributes") is not None else None
        _, payload = await self._recognize(key, text, body.get("sessionState"), request_id)
        if attributes is not None:
            payload["requestAttributes"] = attributes
        return _json_response(payload, request_id)

    async def _RecognizeUtterance(self, key: tuple[str, str, str, str], request: HttpRequest,
                                  request_id: str) -> HttpResponse:
        content_type = (request.header("content-type") or "").strip().lower()
        if not content_type.startswith("text/plain"):
            raise _invalid(f"chimevoice's local Lex runtime takes text input only (Content-Type text/plain; "
                           f"charset=utf-8), not {content_type or 'none'!r}")
        accept = (request.header("response-content-type") or "text/plain; charset=utf-8").strip()
        audio_format = None
        if not accept.lower().startswith("text/plain"):
            audio_format = _AUDIO_FORMATS.get(accept.lower().split(";")[0].strip())
            if audio_format is None or self.synthesizer is None:
                raise _invalid(f"Response-Content-Type {accept!r} is not supported by chimevoice's local Lex "
                               f"runtime (text/plain; charset=utf-8"
                               f"{', audio/pcm, audio/mpeg, audio/ogg' if self.synthesizer else ''})")
        try:
            text = self._text(request.body.decode("utf-8").strip())
        except UnicodeDecodeError:
            raise _invalid("The input text is not UTF-8") from None
        state_header = request.header("x-amz-lex-session-state")
        state = _unpacked(state_header, "x-amz-lex-session-state") if state_header else None
        attr_header = request.header("x-amz-lex-request-attributes")
        attributes = _string_map(_unpacked(attr_header, "x-amz-lex-request-attributes"), "requestAttributes") \
            if attr_header else None
        _, payload = await self._recognize(key, text, state, request_id)
        headers = [("x-amz-lex-input-mode", "Text"), ("x-amz-lex-session-id", key[3]),
                   ("x-amz-lex-messages", _packed(payload["messages"])),
                   ("x-amz-lex-interpretations", _packed(payload["interpretations"])),
                   ("x-amz-lex-session-state", _packed(payload["sessionState"])),
                   ("x-amz-lex-input-transcript", _packed(text)), ("x-amzn-requestid", request_id),
                   ("content-type", accept)]
        if attributes is not None:
            headers.append(("x-amz-lex-request-attributes", _packed(attributes)))
        audio = b""
        if audio_format is not None:
            content_type, fmt, rate = audio_format
            headers[-1] = ("content-type", content_type)
            audio = await self._speak(self._sessions[key], fmt, rate)
        return HttpResponse(200, tuple(headers), audio)

    async def _speak(self, session: _Session, fmt: str, rate: int) -> bytes:
        """The prompt of the last turn as speech (chimevoice's text-to-speech, as Speak uses)."""
        turn, synthesizer = session.turn, self.synthesizer
        if turn is None or synthesizer is None or not (turn.prompt_ssml or turn.prompt_text):
            return b""
        from .polly import render_speech
        speech = SpeechRequest(text=turn.prompt_ssml or turn.prompt_text or "",
                               text_type="ssml" if turn.prompt_ssml else "text",
                               language_code=session.params.locale_id.replace("_", "-"))
        try:
            path = await synthesizer.synthesize(speech)
        except SpeechError as exc:
            log.warning("lex_runtime_speech_failed", error=exc.message)
            raise LexError("InternalServerException", f"text-to-speech failed: {exc.message}") from None
        return render_speech(path, fmt, rate)

    async def _PutSession(self, key: tuple[str, str, str, str], request: HttpRequest,
                          request_id: str) -> HttpResponse:
        body = self._body(request)
        state = body.get("sessionState")
        if not isinstance(state, dict):
            raise _invalid("1 validation error detected: Value null at 'sessionState' failed to satisfy "
                           "constraint: Member must not be null")
        messages = body.get("messages")
        if messages is not None and (not isinstance(messages, list) or len(messages) > 10 or not all(
                isinstance(m, dict) and m.get("contentType") in ("CustomPayload", "ImageResponseCard", "PlainText",
                                                                  "SSML") for m in messages)):
            raise _invalid("messages must be a list of up to 10 messages with a valid contentType")
        attributes = _string_map(body["requestAttributes"], "requestAttributes") \
            if body.get("requestAttributes") is not None else None
        existing = self._session(key, create=False)
        if existing is not None:
            del self._sessions[key]                 # PutSession sets the whole state anew
        session = self._session(key, create=True)
        assert session is not None
        turn = self._apply_state(session, state) or BotTurn(None, None, False, None, "ElicitIntent")
        self._remember(session, turn)
        if messages is not None:
            session.messages = [dict(m) for m in messages]
        headers = [("x-amz-lex-session-id", key[3]), ("x-amz-lex-session-state", _packed(self._session_state(
            session, request_id))), ("x-amz-lex-messages", _packed(session.messages)),
            ("x-amzn-requestid", request_id),
            ("content-type", request.header("responsecontenttype") or "application/json")]
        if attributes is not None:
            headers.append(("x-amz-lex-request-attributes", _packed(attributes)))
        return HttpResponse(200, tuple(headers), b"")

    async def _GetSession(self, key: tuple[str, str, str, str], request: HttpRequest,
                          request_id: str) -> HttpResponse:
        session = self._session(key, create=False)
        if session is None:
            raise LexError("ResourceNotFoundException", f"Session {key[3]} was not found")
        return _json_response({"sessionId": key[3], "messages": session.messages,
                               "interpretations": session.interpretations,
                               "sessionState": self._session_state(session)}, request_id)

    async def _DeleteSession(self, key: tuple[str, str, str, str], request: HttpRequest,
                             request_id: str) -> HttpResponse:
        if self._session(key, create=False) is None:
            raise LexError("ResourceNotFoundException", f"Session {key[3]} was not found")
        del self._sessions[key]
        bot_id, alias_id, locale_id, session_id = key
        return _json_response({"botId": bot_id, "botAliasId": alias_id, "localeId": locale_id,
                               "sessionId": session_id}, request_id)


def _error(code: str, status: int, message: str, request_id: str) -> HttpResponse:
    return _json_response({"message": message}, request_id, status, (("x-amzn-errortype", code),))


# -- ASGI and the server ------------------------------------------------------------------------

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def asgi_app(runtime: LexRuntime) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI application of *runtime*: HTTP/1.1 and HTTP/2 requests both end in
    :meth:`LexRuntime.handle`."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= MAX_BODY + 1:
                chunks.append(chunk)
            if not message.get("more_body"):
                break
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
        host = next((v for k, v in headers if k == "host"), "localhost")
        response = await runtime.handle(HttpRequest(scope["method"], target.decode("latin-1"), headers,
                                                    b"".join(chunks), f"{scope.get('scheme', 'http')}://{host}",
                                                    str(scope.get("http_version", "1.1"))))
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
                    + [(b"content-length", str(len(response.body)).encode())]})
        await send({"type": "http.response.body", "body": response.body})

    return app


class LexRuntimeServer:
    """:func:`asgi_app` on ``listen`` by hypercorn: HTTP/1.1 and h2c (prior knowledge) on one port."""

    def __init__(self, runtime: LexRuntime, listen: tuple[str, int]) -> None:
        self.runtime = runtime
        self._listen = listen
        self._stopping: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from hypercorn.asyncio import serve
        from hypercorn.config import Config as HypercornConfig

        host, port = self._listen
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))                 # an address in use fails here, at start-up
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        config = HypercornConfig()
        config.bind = [f"fd://{sock.detach()}"]     # hypercorn owns (and closes) the socket
        config.accesslog = None
        config.errorlog = logging.getLogger("chimevoice.lex_runtime.hypercorn")
        config.include_server_header = False
        config.graceful_timeout = 1.0
        self._stopping = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(
            serve(asgi_app(self.runtime), config, shutdown_trigger=self._stopping.wait))  # type: ignore[arg-type]
        await asyncio.sleep(0)
        log.info("lex_runtime_listening", address=host, port=port)

    async def stop(self) -> None:
        if self._task is None or self._stopping is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait_for(self._task, 5)
        except (asyncio.TimeoutError, Exception) as exc:  # noqa: BLE001 - stop in any case
            log.warning("lex_runtime_stop", error=repr(exc))
        self._task = None
