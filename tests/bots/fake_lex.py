"""A local stand-in for the Amazon Lex V2 runtime (RecognizeText), for boto3 tests.

Speaks the REST API botocore's ``lexv2-runtime`` model uses::

    POST /bots/{botId}/botAliases/{botAliasId}/botLocales/{localeId}/sessions/{sessionId}/text
    {"text": "...", "sessionState": {...}?, "requestAttributes": {...}?}

and answers with RecognizeText JSON (camelCase, as Lex V2 does), or with a Lex
error (``x-amzn-ErrorType`` header + ``{"message": ...}`` body). The bot is a
tiny scripted pizza bot: intent ``OrderPizza`` with slots ``Size`` and
``Crust``, a confirmation, and ``FallbackIntent`` for anything else.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

PIZZA_BOT = ("PIZZABOT01", "TSTALIASID")
DENIED_BOT = "DENIEDBOT1"
BUSY_BOT = "BUSYBOT001"
SIZES = {"small": "small", "medium": "medium", "large": "large", "big": "large", "1": "small",
         "2": "medium", "3": "large"}
CRUSTS = {"thin": "thin", "thick": "thick", "crispy": "thin", "1": "thin", "2": "thick"}


@dataclass
class Session:
    attributes: dict[str, str] = field(default_factory=dict)
    intent: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    confirmation: str = "None"
    expecting: str = "intent"  # "intent" | "Size" | "Crust" | "confirm"


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status,
                             headers={"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazonaws.deepsense.runtimeservice/"})


def _slot(original: str, value: str) -> dict:
    return {"shape": "Scalar",
            "value": {"originalValue": original, "interpretedValue": value, "resolvedValues": [value]}}


class FakeLex:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.sessions: dict[tuple[str, str, str, str], Session] = {}
        self.url: str | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post(
            "/bots/{botId}/botAliases/{botAliasId}/botLocales/{localeId}/sessions/{sessionId}/text",
            self.recognize_text)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def recognize_text(self, request: web.Request) -> web.Response:
        m = request.match_info
        body = await request.json()
        self.requests.append({"path": dict(m), "body": body, "headers": dict(request.headers)})
        bot_id, alias_id, locale, session_id = m["botId"], m["botAliasId"], m["localeId"], m["sessionId"]
        if bot_id == DENIED_BOT:
            return _error(403, "AccessDeniedException", "User is not authorized to perform: lex:RecognizeText")
        if bot_id == BUSY_BOT:
            return _error(429, "ThrottlingException", "Concurrent conversation limit exceeded")
        if (bot_id, alias_id) != PIZZA_BOT:
            return _error(404, "ResourceNotFoundException", f"Could not find bot {bot_id} alias {alias_id}")
        if locale != "en_US":
            return _error(404, "ResourceNotFoundException", f"Could not find locale {locale}")
        if not isinstance(body.get("text"), str) or not body["text"]:
            return _error(400, "ValidationException", "1 validation error detected: Value at 'text' failed")
        sess = self.sessions.setdefault((bot_id, alias_id, locale, session_id), Session())
        state = body.get("sessionState") or {}
        if "sessionAttributes" in state:
            sess.attributes = dict(state["sessionAttributes"])
        return web.json_response(self._dialog(sess, body["text"], session_id))

    # -- the scripted bot --------------------------------------------------
    def _dialog(self, s: Session, text: str, session_id: str) -> dict:
        words = text.lower().replace(",", " ").split()
        messages: list[dict] = []
        score = None
        if s.expecting == "intent":
            if "pizza" in words or "order" in words or text == "1":
                s.intent, s.slots, s.confirmation = "OrderPizza", {"Size": None, "Crust": None}, "None"
                score = 0.94
                for w in words:
                    if w in SIZES and not w.isdigit():
                        s.slots["Size"] = _slot(w, SIZES[w])
            else:
                return self._fallback(s, session_id)
        elif s.expecting in ("Size", "Crust"):
            table = SIZES if s.expecting == "Size" else CRUSTS
            hit = next((w for w in words if w in table), None)
            if hit is None:
                messages.append({"content": "Sorry, I didn't get that.", "contentType": "PlainText"})
            else:
                s.slots[s.expecting] = _slot(hit, table[hit])
        elif s.expecting == "confirm":
            if words and words[0] in ("yes", "yeah", "1"):
                s.confirmation = "Confirmed"
                s.attributes["orderId"] = "A1001"
                return self._close(s, session_id, "Fulfilled",
                                   [{"content": "Your pizza is on its way.", "contentType": "PlainText"}])
            if words and words[0] in ("no", "2"):
                s.confirmation = "Denied"
                return self._close(s, session_id, "Failed",
                                   [{"content": "Okay, order cancelled.", "contentType": "PlainText"}])
        for name, prompt in (("Size", "What size pizza would you like?"),
                             ("Crust", "Thin or thick crust?")):
            if s.slots.get(name) is None:
                s.expecting = name
                messages.append({"content": prompt, "contentType": "PlainText"})
                return self._response(s, session_id, {"type": "ElicitSlot", "slotToElicit": name},
                                      "InProgress", messages, score)
        s.expecting = "confirm"
        size = s.slots["Size"]["value"]["interpretedValue"]
        crust = s.slots["Crust"]["value"]["interpretedValue"]
        messages.append({"content": f"<speak>Should I order a <emphasis>{size}</emphasis> {crust} crust pizza?</speak>",
                         "contentType": "SSML"})
        return self._response(s, session_id, {"type": "ConfirmIntent"}, "InProgress", messages, score)

    def _intent(self, s: Session, state: str) -> dict:
        return {"name": s.intent, "slots": dict(s.slots), "state": state, "confirmationState": s.confirmation}

    def _response(self, s: Session, session_id: str, action: dict, state: str, messages: list,
                  score: float | None) -> dict:
        intent = self._intent(s, state)
        return {
            "messages": messages,
            "sessionState": {"dialogAction": action, "intent": intent, "sessionAttributes": dict(s.attributes),
                             "originatingRequestId": str(uuid.uuid4())},
            "interpretations": [
                {"nluConfidence": {"score": score if score is not None else 1.0}, "intent": intent,
                 "interpretationSource": "Lex"},
                {"intent": {"name": "FallbackIntent", "slots": {}}, "interpretationSource": "Lex"},
            ],
            "sessionId": session_id,
        }

    def _close(self, s: Session, session_id: str, state: str, messages: list) -> dict:
        response = self._response(s, session_id, {"type": "Close"}, state, messages, 1.0)
        s.intent, s.slots, s.confirmation, s.expecting = None, {}, "None", "intent"
        return response

    def _fallback(self, s: Session, session_id: str) -> dict:
        return {
            "messages": [{"content": "Sorry, can you please repeat that?", "contentType": "PlainText"}],
            "sessionState": {"dialogAction": {"type": "ElicitIntent"},
                             "intent": {"name": "FallbackIntent", "slots": {}, "state": "InProgress",
                                        "confirmationState": "None"},
                             "sessionAttributes": dict(s.attributes),
                             "originatingRequestId": str(uuid.uuid4())},
            "interpretations": [
                {"intent": {"name": "FallbackIntent", "slots": {}, "state": "InProgress",
                            "confirmationState": "None"}, "interpretationSource": "Lex"},
                {"nluConfidence": {"score": 0.21}, "intent": {"name": "OrderPizza",
                                                              "slots": {"Size": None, "Crust": None}},
                 "interpretationSource": "Lex"},
            ],
            "sessionId": session_id,
        }
