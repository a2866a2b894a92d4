"""What every bot backend shares: turns, the session protocol, the IntentResult shape.

The IntentResult built here is the object the ACTION_SUCCESSFUL event of
StartBotConversation carries in ``ActionData.IntentResult`` (03c §6.1), with the
guide's key names, casing and nesting::

    {"SessionId": ...,
     "SessionState": {"SessionAttributes": {...},
                      "Intent": {"Name": ..., "Slots": {<name>: <slot> | null},
                                 "State": ..., "ConfirmationState": ...}},
     "Interpretations": [{"NluConfidence": {"Score": ...}, "Intent": {...}}, ...]}

    <slot> = {"Value": {"OriginalValue": ..., "InterpretedValue": ...,
                        "ResolvedValues": [...]},
              "Values": [<slot>, ...]}
"""
from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Iterable, Protocol, runtime_checkable
from xml.sax.saxutils import escape

# Intent.State values (03c §6.1.1; Lex V2 spellings for the two the guide gives in Chinese).
STATE_FULFILLED = "Fulfilled"
STATE_READY = "ReadyForFulfillment"
STATE_FAILED = "Failed"
STATE_IN_PROGRESS = "InProgress"
# Intent.ConfirmationState values.
CONFIRMATION_NONE = "None"
CONFIRMATION_CONFIRMED = "Confirmed"
CONFIRMATION_DENIED = "Denied"
#: The intent reported when the bot recognised none (Lex V2's built-in name).
FALLBACK_INTENT = "FallbackIntent"


@dataclass(frozen=True)
class BotTurn:
    """What the bot says after a start or an input, and whether the conversation ended.

    ``prompt_text`` is always a plain-text rendering of the prompt (or ``None`` when
    the bot says nothing); ``prompt_ssml`` is a ``<speak>`` document when any part
    of the prompt was SSML, else ``None``: speak ``prompt_ssml`` when it is set,
    otherwise ``prompt_text``. When ``finished`` is true, the prompt (if any) is the
    bot's closing message, to be played before ACTION_SUCCESSFUL is sent, and
    ``intent_result`` is the event's ``IntentResult``.

    ``dialog_action`` tells what the bot waits for next (``ElicitIntent``,
    ``ElicitSlot``, ``ConfirmIntent``; ``Close`` when finished; ``None`` when it
    waits silently) and ``slot_to_elicit`` names the slot for ``ElicitSlot``.
    """

    prompt_text: str | None
    prompt_ssml: str | None
    finished: bool
    intent_result: dict | None
    dialog_action: str | None = None
    slot_to_elicit: str | None = None
    #: the prompt's messages one by one, ``(content, "PlainText"|"SSML")``, as the Lex runtime
    #: API returns them (``prompt_text``/``prompt_ssml`` are their joined rendering)
    messages: tuple[tuple[str, str], ...] = ()


@runtime_checkable
class BotSession(Protocol):
    """One StartBotConversation conversation with a bot."""

    async def start(self) -> BotTurn:
        """Begin: the welcome / elicitation prompt (possibly none)."""
        ...

    async def input_text(self, text: str) -> BotTurn:
        """One user utterance (speech recognised as text)."""
        ...

    async def input_dtmf(self, digits: str) -> BotTurn:
        """One DTMF input (``#`` ends it, ``*`` clears what came before)."""
        ...


# -- prompts ---------------------------------------------------------------

def is_ssml(text: str) -> bool:
    return text.lstrip().startswith("<speak")


def ssml_inner(ssml: str) -> str:
    """The content of a ``<speak>`` document without the ``<speak>`` tags."""
    text = ssml.strip()
    m = re.match(r"<speak\b[^>]*>(.*)</speak>\s*$", text, re.S)
    if m:
        return m.group(1).strip()
    if re.fullmatch(r"<speak\b[^>]*/>", text):
        return ""
    return escape(text)


def ssml_to_text(ssml: str) -> str:
    try:
        root = ET.fromstring(ssml.strip())
        text = "".join(root.itertext())
    except ET.ParseError:
        text = re.sub(r"<[^>]+>", " ", ssml)
    return " ".join(text.split())


def render_messages(messages: Iterable[tuple[str, str]]) -> tuple[str | None, str | None]:
    """(prompt_text, prompt_ssml) for messages given as ``(content, "PlainText"|"SSML")``.

    Messages are said in order. ``prompt_ssml`` is set only when one of them is SSML;
    plain parts are then XML-escaped into the same ``<speak>`` document.
    """
    parts = [(c, t) for c, t in messages if c is not None and str(c).strip()]
    if not parts:
        return None, None
    texts = [ssml_to_text(c) if t == "SSML" else " ".join(str(c).split()) for c, t in parts]
    prompt_text = " ".join(t for t in texts if t) or None
    if not any(t == "SSML" for _, t in parts):
        return prompt_text, None
    inner = " ".join(ssml_inner(c) if t == "SSML" else escape(" ".join(str(c).split())) for c, t in parts)
    return prompt_text, f"<speak>{inner}</speak>"


def clean_dtmf(digits: str) -> str:
    """03c §8.6: ``#`` ends the input; ``*`` clears the digits entered before it."""
    text = "".join(ch for ch in str(digits) if not ch.isspace())
    if "#" in text:
        text = text.split("#", 1)[0]
    if "*" in text:
        text = text.rsplit("*", 1)[1]
    return text


# -- IntentResult ----------------------------------------------------------

def slot_value(original: str, interpreted: str, resolved: list[str] | None = None,
               values: list[dict] | None = None) -> dict[str, Any]:
    """One filled slot in the event's shape."""
    return {
        "Value": {
            "OriginalValue": original,
            "InterpretedValue": interpreted,
            "ResolvedValues": list(resolved or []),
        },
        "Values": list(values or []),
    }


def intent_object(name: str, slots: dict[str, dict | None], state: str | None,
                  confirmation_state: str | None) -> dict[str, Any]:
    return {
        "Name": name,
        "Slots": dict(slots),
        "State": state,
        "ConfirmationState": confirmation_state,
    }


def interpretation(intent: dict[str, Any], score: float | None) -> dict[str, Any]:
    """An ``Interpretations`` element; ``NluConfidence`` is left out when there is no score."""
    out: dict[str, Any] = {}
    if score is not None:
        out["NluConfidence"] = {"Score": score}
    out["Intent"] = intent
    return out


def intent_result(session_id: str, session_attributes: dict[str, str], intent: dict[str, Any],
                  interpretations: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "SessionId": session_id,
        "SessionState": {
            "SessionAttributes": dict(session_attributes),
            "Intent": copy.deepcopy(intent),
        },
        "Interpretations": copy.deepcopy(list(interpretations)),
    }
