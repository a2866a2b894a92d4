"""The embedded bot: intents, slots and prompts from a YAML file, no cloud.

The YAML format, the matching algorithm and the dialogue rules are described in
docs/bots.md; config/bots/pizza.yaml is a complete example.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
import yaml

from . import nlu
from .base import (
    CONFIRMATION_CONFIRMED,
    CONFIRMATION_DENIED,
    CONFIRMATION_NONE,
    FALLBACK_INTENT,
    STATE_FAILED,
    STATE_FULFILLED,
    STATE_IN_PROGRESS,
    STATE_READY,
    BotTurn,
    clean_dtmf,
    intent_object,
    intent_result,
    interpretation,
    is_ssml,
    render_messages,
    slot_value,
)
from .params import BotParameters

log = structlog.get_logger("chimevoice.bots")

NUMBER_TYPES = ("AMAZON.Number",)
CONFIRMATION_TYPES = ("AMAZON.Confirmation", "AMAZON.YesNo")
FULFILLMENT_STATES = (STATE_FULFILLED, STATE_READY)
#: Interpretations reported (Lex V2 returns the top intent and up to four alternatives).
MAX_INTERPRETATIONS = 5

DEFAULT_MESSAGES = {
    "elicit_intent": "How can I help you?",
    "not_understood": "Sorry, I didn't understand that.",
    "failure": "Sorry, I can't help with that. Goodbye.",
    "declined": "Okay, I have cancelled that.",
}


class BotConfigError(ValueError):
    """A local bot definition (YAML) is invalid."""


# -- definition ----------------------------------------------------------------

@dataclass
class SlotType:
    name: str
    kind: str  # "custom" | "number" | "confirmation"
    #: custom: phrase tokens -> canonical value(s); one phrase may name several values.
    phrases: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    values: list[str] = field(default_factory=list)
    dtmf: dict[str, str] = field(default_factory=dict)
    #: "top": InterpretedValue is the first resolved value; "original": the user's words.
    resolution: str = "top"
    minimum: int | None = None
    maximum: int | None = None


@dataclass
class SlotDef:
    name: str
    type: SlotType
    required: bool
    prompt: str | None


@dataclass
class IntentDef:
    name: str
    utterances: list[list[str]]  # normalised tokens, placeholders as "{slotname}" (lower case)
    slots: dict[str, SlotDef]
    dtmf: str | None
    confirmation_prompt: str | None
    declined_message: str | None
    fulfillment_state: str
    fulfillment_message: str | None
    fulfillment_attributes: dict[str, str]


@dataclass
class BotDefinition:
    name: str
    path: Path | None
    locales: tuple[str, ...]
    intents: dict[str, IntentDef]
    messages: dict[str, str]
    confidence_threshold: float
    max_turns: int
    max_retries: int
    source_accounts: tuple[str, ...] = ()
    source_arns: tuple[str, ...] = ()


def _require(cond: object, where: str, what: str) -> None:
    if not cond:
        raise BotConfigError(f"{where}: {what}")


def _builtin_type(name: str) -> SlotType | None:
    if name in NUMBER_TYPES:
        return SlotType(name, "number", resolution="top")
    if name in CONFIRMATION_TYPES:
        phrases: dict[tuple[str, ...], list[str]] = {}
        for w in nlu.YES_WORDS:
            phrases[tuple(w.split())] = ["Yes"]
        for w in nlu.NO_WORDS:
            phrases[tuple(w.split())] = ["No"]
        return SlotType(name, "confirmation", phrases=phrases, values=["Yes", "No"],
                        dtmf={"1": "Yes", "2": "No"})
    return None


def _parse_slot_type(name: str, spec: Any, where: str) -> SlotType:
    _require(isinstance(spec, dict), where, "a slot type is a mapping")
    raw_values = spec.get("values")
    _require(isinstance(raw_values, list) and raw_values, where, "'values' must be a non-empty list")
    st = SlotType(name, "custom")
    synonyms: list[Any]
    for i, item in enumerate(raw_values):
        if isinstance(item, (str, int, float)):
            value, synonyms = str(item), []
        else:
            _require(isinstance(item, dict) and "value" in item, f"{where}.values[{i}]",
                     "a value is a string or a mapping with 'value' and optional 'synonyms'")
            value = str(item["value"])
            synonyms = item.get("synonyms") or []
            _require(isinstance(synonyms, list), f"{where}.values[{i}]", "'synonyms' must be a list")
        st.values.append(value)
        for phrase in [value, *map(str, synonyms)]:
            key = tuple(t.norm for t in nlu.tokenize(phrase))
            _require(bool(key), f"{where}.values[{i}]", f"empty phrase {phrase!r}")
            bucket = st.phrases.setdefault(key, [])
            if value not in bucket:
                bucket.append(value)
    resolution = str(spec.get("resolution", "top"))
    _require(resolution in ("top", "original"), where, "'resolution' is 'top' or 'original'")
    st.resolution = resolution
    dtmf = spec.get("dtmf")
    if dtmf is None:
        st.dtmf = {str(i + 1): v for i, v in enumerate(st.values) if i < 9}
    else:
        _require(isinstance(dtmf, dict), where, "'dtmf' maps keys to values")
        for k, v in dtmf.items():
            _require(str(v) in st.values, where, f"dtmf {k!r} names unknown value {v!r}")
        st.dtmf = {str(k): str(v) for k, v in dtmf.items()}
    return st


def parse_definition(data: Any, *, path: Path | None = None) -> BotDefinition:
    """Build a :class:`BotDefinition` from parsed YAML; :class:`BotConfigError` when invalid."""
    where = str(path) if path else "bot"
    _require(isinstance(data, dict), where, "the document must be a mapping")
    name = str(data.get("name") or (path.stem if path else "LocalBot"))
    locales = data.get("locales", ["en_US"])
    if isinstance(locales, str):
        locales = [locales]
    _require(isinstance(locales, list) and locales, where, "'locales' must be a non-empty list")
    settings = data.get("settings") or {}
    _require(isinstance(settings, dict), where, "'settings' must be a mapping")
    messages = dict(DEFAULT_MESSAGES)
    raw_messages = data.get("messages") or {}
    _require(isinstance(raw_messages, dict), where, "'messages' must be a mapping")
    messages.update({str(k): str(v) for k, v in raw_messages.items() if v is not None})

    types: dict[str, SlotType] = {}
    raw_types = data.get("slot_types") or {}
    _require(isinstance(raw_types, dict), where, "'slot_types' must be a mapping")
    for tname, tspec in raw_types.items():
        types[str(tname)] = _parse_slot_type(str(tname), tspec, f"{where}: slot_types.{tname}")

    raw_intents = data.get("intents")
    _require(isinstance(raw_intents, dict) and raw_intents, where, "'intents' must be a non-empty mapping")
    intents: dict[str, IntentDef] = {}
    dtmf_keys: set[str] = set()
    for iname, ispec in raw_intents.items():
        iw = f"{where}: intents.{iname}"
        iname = str(iname)
        _require(iname != FALLBACK_INTENT, iw, f"{FALLBACK_INTENT} is built in")
        _require(isinstance(ispec, dict), iw, "an intent is a mapping")
        slots: dict[str, SlotDef] = {}
        raw_slots = ispec.get("slots") or {}
        _require(isinstance(raw_slots, dict), iw, "'slots' must be a mapping")
        for sname, sspec in raw_slots.items():
            sw = f"{iw}.slots.{sname}"
            _require(isinstance(sspec, dict) and "type" in sspec, sw, "a slot needs a 'type'")
            tname = str(sspec["type"])
            st = _builtin_type(tname)
            if st is None:
                _require(tname in types, sw, f"unknown slot type {tname!r}")
                st = types[tname]
            if st.kind == "number" and ("min" in sspec or "max" in sspec):
                st = SlotType(st.name, "number", minimum=_opt_int(sspec.get("min"), sw),
                              maximum=_opt_int(sspec.get("max"), sw))
            required = bool(sspec.get("required", True))
            prompt = sspec.get("prompt")
            _require(not required or bool(prompt), sw, "a required slot needs a 'prompt'")
            slots[str(sname)] = SlotDef(str(sname), st, required, str(prompt) if prompt else None)
        raw_utts = ispec.get("utterances") or []
        _require(isinstance(raw_utts, list) and raw_utts, iw, "'utterances' must be a non-empty list")
        utterances = []
        slot_lower = {s.lower() for s in slots}
        for u in raw_utts:
            toks = [t.norm for t in nlu.tokenize(str(u), keep_placeholders=True)]
            for t in toks:
                if t.startswith("{"):
                    _require(t[1:-1] in slot_lower, iw, f"utterance {u!r} names unknown slot {t}")
            _require(bool(toks), iw, f"empty utterance {u!r}")
            utterances.append(toks)
        dtmf = ispec.get("dtmf")
        if dtmf is not None:
            dtmf = str(dtmf)
            _require(dtmf not in dtmf_keys, iw, f"dtmf {dtmf!r} is used by another intent")
            dtmf_keys.add(dtmf)
        conf = ispec.get("confirmation") or {}
        if isinstance(conf, str):
            conf = {"prompt": conf}
        _require(isinstance(conf, dict), iw, "'confirmation' is a prompt or a mapping")
        ful = ispec.get("fulfillment") or {}
        if isinstance(ful, str):
            ful = {"message": ful}
        _require(isinstance(ful, dict), iw, "'fulfillment' is a message or a mapping")
        fstate = str(ful.get("state", STATE_READY))
        _require(fstate in FULFILLMENT_STATES, iw, f"fulfillment state must be one of {FULFILLMENT_STATES}")
        fattrs = ful.get("session_attributes") or {}
        _require(isinstance(fattrs, dict), iw, "fulfillment 'session_attributes' must be a mapping")
        intents[iname] = IntentDef(
            name=iname, utterances=utterances, slots=slots, dtmf=dtmf,
            confirmation_prompt=str(conf["prompt"]) if conf.get("prompt") else None,
            declined_message=str(conf["declined"]) if conf.get("declined") else None,
            fulfillment_state=fstate,
            fulfillment_message=str(ful["message"]) if ful.get("message") else None,
            fulfillment_attributes={str(k): str(v) for k, v in fattrs.items()})

    policy = data.get("policy") or {}
    _require(isinstance(policy, dict), where, "'policy' must be a mapping")
    threshold = float(settings.get("confidence_threshold", 0.5))
    _require(0.0 <= threshold <= 1.0, where, "confidence_threshold must be within 0..1")
    max_turns = _opt_int(settings.get("max_turns", 10), where)
    max_retries = _opt_int(settings.get("max_retries", 3), where)
    if max_turns is None or max_retries is None or max_turns < 1 or max_retries < 1:
        # (an explicit null is refused like 0, rather than failing with a TypeError)
        raise BotConfigError(f"{where}: max_turns and max_retries must be >= 1")
    return BotDefinition(
        name=name, path=path, locales=tuple(str(x) for x in locales), intents=intents,
        messages=messages, confidence_threshold=threshold, max_turns=max_turns, max_retries=max_retries,
        source_accounts=tuple(str(x) for x in policy.get("source_accounts") or ()),
        source_arns=tuple(str(x) for x in policy.get("source_arns") or ()))


def _opt_int(value: Any, where: str) -> int | None:
    if value is None:
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise BotConfigError(f"{where}: not an integer: {value!r}") from None


_CACHE: dict[Path, tuple[float, BotDefinition]] = {}


def load_definition(path: str | Path) -> BotDefinition:
    """Load (and cache by modification time) a bot definition file."""
    p = Path(path)
    try:
        mtime = p.stat().st_mtime
    except OSError as exc:
        raise BotConfigError(f"{p}: {exc.strerror or exc}") from None
    cached = _CACHE.get(p)
    if cached and cached[0] == mtime:
        return cached[1]
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise BotConfigError(f"{p}: {exc}") from None
    try:
        definition = parse_definition(data, path=p)
    except BotConfigError:
        raise
    except (ValueError, TypeError, AttributeError) as exc:
        raise BotConfigError(f"{p}: {exc}") from None
    _CACHE[p] = (mtime, definition)
    return definition


# -- session state -------------------------------------------------------------

@dataclass
class SlotFill:
    original: str
    interpreted: str
    resolved: list[str]

    def as_json(self) -> dict:
        return slot_value(self.original, self.interpreted, self.resolved)


@dataclass
class LocalSessionState:
    """What the bot remembers about one session (one call's CallId) between conversations."""

    attributes: dict[str, str] = field(default_factory=dict)
    intent: str | None = None
    slots: dict[str, SlotFill | None] = field(default_factory=dict)
    confirmation: str = CONFIRMATION_NONE
    #: scores of the utterance that chose the intent: intent name -> (score, slots)
    interpretations: list[tuple[str, float, dict[str, SlotFill | None]]] = field(default_factory=list)


class BotSessionStore:
    """Session state per (bot, locale, session id) for the life of a call (03c §8.2).

    Pass one store to every :func:`~chimevoice.bots.create_bot` of a call (or of the
    server) so that a second StartBotConversation on the same leg continues the
    session; call :meth:`discard` with the CallId when the call ends.
    """

    def __init__(self) -> None:
        self._states: dict[tuple[str, str, str], LocalSessionState] = {}

    def get(self, key: tuple[str, str, str]) -> LocalSessionState | None:
        return self._states.get(key)

    def put(self, key: tuple[str, str, str], state: LocalSessionState) -> None:
        self._states[key] = state

    def discard(self, session_id: str) -> None:
        for key in [k for k in self._states if k[2] == session_id]:
            del self._states[key]

    def __len__(self) -> int:
        return len(self._states)


# -- the bot -------------------------------------------------------------------

_PLACEHOLDER_RE = re.compile(r"\{(\w+)\}")


class LocalBot:
    """A :class:`~chimevoice.bots.BotSession` driven by a :class:`BotDefinition`."""

    def __init__(self, definition: BotDefinition, params: BotParameters, *, session_id: str,
                 store: BotSessionStore | None = None, max_turns: int | None = None,
                 max_retries: int | None = None) -> None:
        self.definition = definition
        self.params = params
        self.session_id = session_id
        self.max_turns = max_turns or definition.max_turns
        self.max_retries = max_retries or definition.max_retries
        self._store = store
        self._key = (params.arn, params.locale_id, session_id)
        state = store.get(self._key) if store is not None else None
        self.state = state if state is not None else LocalSessionState()
        if store is not None:
            store.put(self._key, self.state)
        if params.session_attributes is not None:
            # A SessionState given by the action replaces the stored attributes (Lex semantics).
            self.state.attributes = dict(params.session_attributes)
        self.turns = 0
        self.retries = 0
        self._eliciting: tuple[str, str | None] = ("intent", None)  # ("intent"|"slot"|"confirm", slot)
        self._final: BotTurn | None = None

    # -- BotSession ------------------------------------------------------------
    async def start(self) -> BotTurn:
        p = self.params
        welcome = [(m.content, m.content_type) for m in p.welcome_messages]
        if self.state.intent is not None and p.dialog_action_type != "ElicitIntent":
            # An intent left unfinished on this session (03c §8.2) continues where it stopped:
            # Delegate lets the bot say its next prompt; with no DialogAction it listens.
            turn = self._next_step()
            if p.dialog_action_type == "Delegate" or turn.finished:
                return turn
            return BotTurn(None, None, False, None, turn.dialog_action, turn.slot_to_elicit)
        self._reset_intent()
        if welcome:
            self._eliciting = ("intent", None)
            return self._say(welcome, "ElicitIntent")
        if p.dialog_action_type == "ElicitIntent":
            return self._say([self.definition.messages["elicit_intent"]], "ElicitIntent")
        # No DialogAction (or Delegate with nothing to delegate): wait for the caller (03c §8.3).
        return BotTurn(None, None, False, None, None)

    async def input_text(self, text: str) -> BotTurn:
        if self._final is not None:
            return self._final
        self.turns += 1
        tokens = nlu.tokenize(text)
        return self._limit(self._handle(tokens, dtmf=None))

    async def input_dtmf(self, digits: str) -> BotTurn:
        if self._final is not None:
            return self._final
        self.turns += 1
        cleaned = clean_dtmf(digits)
        return self._limit(self._handle([nlu.Token(cleaned, cleaned)] if cleaned else [], dtmf=cleaned))

    # -- the Lex runtime API (chimevoice/api/lex_runtime.py) -------------------------
    @property
    def finished(self) -> bool:
        """The conversation has closed (a further input gets the closing turn again)."""
        return self._final is not None

    def progress_result(self) -> dict:
        """The IntentResult shape of where the conversation stands: the intent being worked on
        (``InProgress``; FallbackIntent when none) and the interpretations of the last input."""
        return self._intent_result(STATE_IN_PROGRESS)

    def set_session(self, *, attributes: dict[str, str] | None = None, intent: str | None = None,
                    slots: dict[str, SlotFill | None] | None = None, confirmation: str | None = None,
                    dialog_action: str | None = None, slot_to_elicit: str | None = None,
                    intent_state: str | None = None) -> BotTurn:
        """Set the session as Lex's ``PutSession`` / a request's ``sessionState`` does; the turn
        says where the bot now stands (with the prompt of a ``Delegate``d next step).
        ``ValueError`` names what the definition does not have."""
        defn = self.definition
        if attributes is not None:
            self.state.attributes = dict(attributes)
        self._final = None
        self.turns = self.retries = 0
        if intent is not None:
            if intent not in defn.intents:
                raise ValueError(f"intent {intent!r} is not an intent of bot {defn.name}")
            known = defn.intents[intent].slots
            for name in slots or {}:
                if name not in known:
                    raise ValueError(f"slot {name!r} is not a slot of intent {intent}")
            if intent != self.state.intent:
                self.state.slots = {}
            self.state.intent = intent
            self.state.slots = {**{s: self.state.slots.get(s) for s in known}, **(slots or {})}
            self.state.confirmation = confirmation or CONFIRMATION_NONE
        action = dialog_action or ("Delegate" if intent is not None else None)
        if action == "ElicitIntent" or (action in (None, "None") and self.state.intent is None):
            self._reset_intent()
            return BotTurn(None, None, False, None, "ElicitIntent")
        if self.state.intent is None:
            raise ValueError(f"dialogAction {action} needs an intent")
        current = self._current_intent()
        if action == "ElicitSlot":
            if slot_to_elicit not in current.slots:
                raise ValueError(f"slotToElicit {slot_to_elicit!r} is not a slot of intent {current.name}")
            self._eliciting = ("slot", slot_to_elicit)
            return BotTurn(None, None, False, None, "ElicitSlot", slot_to_elicit)
        if action == "ConfirmIntent":
            self._eliciting = ("confirm", None)
            return BotTurn(None, None, False, None, "ConfirmIntent")
        if action == "Close":
            return self._finish(intent_state or STATE_READY, [])
        return self._next_step()

    # -- dialogue ----------------------------------------------------------------
    def _limit(self, turn: BotTurn) -> BotTurn:
        if not turn.finished and self.turns >= self.max_turns:
            log.info("bot_turn_limit", bot=self.definition.name, session_id=self.session_id, turns=self.turns)
            return self._fail()
        return turn

    def _handle(self, tokens: list[nlu.Token], dtmf: str | None) -> BotTurn:
        kind, slot = self._eliciting
        if kind == "intent":
            return self._handle_intent(tokens, dtmf)
        if kind == "slot":
            return self._handle_slot(slot, tokens, dtmf)
        return self._handle_confirmation(tokens, dtmf)

    def _handle_intent(self, tokens: list[nlu.Token], dtmf: str | None) -> BotTurn:
        defn = self.definition
        ranked: list[tuple[str, float, dict[str, SlotFill | None]]] = []
        for name, intent in defn.intents.items():
            if dtmf is not None:
                score = 1.0 if dtmf and intent.dtmf == dtmf else 0.0
                fills: dict[str, SlotFill | None] = {s: None for s in intent.slots}
            else:
                score, fills = self._score_intent(intent, tokens)
            ranked.append((name, score, fills))
        ranked.sort(key=lambda r: r[1], reverse=True)
        best = ranked[0]
        # FallbackIntent's confidence is 1 - best; when nothing is understood it is at
        # least the best score, so the list stays in descending order with it first.
        fallback_score = round(1.0 - best[1], 2)
        if not tokens or best[1] < defn.confidence_threshold:
            fallback_score = max(fallback_score, best[1])
            ranked.insert(0, (FALLBACK_INTENT, fallback_score, {}))
            self.state.interpretations = ranked[:MAX_INTERPRETATIONS]
            return self._not_understood()
        ranked.append((FALLBACK_INTENT, fallback_score, {}))
        ranked.sort(key=lambda r: r[1], reverse=True)  # stable: the chosen intent stays first
        self.state.interpretations = ranked[:MAX_INTERPRETATIONS]
        name, _, fills = best
        self.state.intent = name
        self.state.slots = dict(fills)
        self.state.confirmation = CONFIRMATION_NONE
        self.retries = 0
        log.info("bot_intent", bot=defn.name, session_id=self.session_id, intent=name, score=best[1])
        return self._next_step()

    def _current_intent(self) -> IntentDef:
        """The intent being worked on (only called while one is: ``state.intent`` is set)."""
        name = self.state.intent
        assert name is not None, "no intent in progress"
        return self.definition.intents[name]

    def _handle_slot(self, slot_name: str | None, tokens: list[nlu.Token], dtmf: str | None) -> BotTurn:
        intent = self._current_intent()
        assert slot_name is not None, "eliciting a slot without its name"
        slot = intent.slots[slot_name]
        used: set[int] = set()
        fill = self._fill_slot(slot, tokens, dtmf, used, eliciting=True)
        if fill is None:
            return self._not_understood()
        self.state.slots[slot.name] = fill
        if dtmf is None:
            # The answer may carry other slots too ("large, with mushrooms").
            for other in intent.slots.values():
                if other.name != slot.name and self.state.slots.get(other.name) is None \
                        and other.type.kind == "custom":
                    extra = self._fill_slot(other, tokens, None, used, eliciting=False)
                    if extra is not None:
                        self.state.slots[other.name] = extra
        self.retries = 0
        return self._next_step()

    def _handle_confirmation(self, tokens: list[nlu.Token], dtmf: str | None) -> BotTurn:
        if dtmf is not None:
            answer = {"1": "Yes", "2": "No"}.get(dtmf)
        else:
            answer = nlu.confirmation_of(tokens)
        if answer is None:
            return self._not_understood()
        intent = self._current_intent()
        if answer == "Yes":
            self.state.confirmation = CONFIRMATION_CONFIRMED
            return self._fulfil(intent)
        self.state.confirmation = CONFIRMATION_DENIED
        message = intent.declined_message or self.definition.messages["declined"]
        return self._finish(STATE_FAILED, [self._fmt(message)])

    def _next_step(self, prefix: list[tuple[str, str]] | None = None) -> BotTurn:
        intent = self._current_intent()
        for slot in intent.slots.values():
            self.state.slots.setdefault(slot.name, None)
        for slot in intent.slots.values():
            if slot.required and self.state.slots.get(slot.name) is None:
                self._eliciting = ("slot", slot.name)
                return self._say([*(prefix or []), self._fmt(slot.prompt)], "ElicitSlot", slot.name)
        if intent.confirmation_prompt and self.state.confirmation == CONFIRMATION_NONE:
            self._eliciting = ("confirm", None)
            return self._say([*(prefix or []), self._fmt(intent.confirmation_prompt)], "ConfirmIntent")
        return self._fulfil(intent)

    def _fulfil(self, intent: IntentDef) -> BotTurn:
        for k, v in intent.fulfillment_attributes.items():
            self.state.attributes[k] = self._fmt(v)
        messages = [self._fmt(intent.fulfillment_message)] if intent.fulfillment_message else []
        return self._finish(intent.fulfillment_state, messages)

    def _not_understood(self) -> BotTurn:
        self.retries += 1
        if self.retries >= self.max_retries:
            log.info("bot_retries_exhausted", bot=self.definition.name, session_id=self.session_id)
            return self._fail()
        kind, slot = self._eliciting
        prompt: str | None
        if kind == "intent":
            prompt = self.definition.messages["elicit_intent"]
        elif kind == "slot":
            assert slot is not None, "eliciting a slot without its name"
            prompt = self._current_intent().slots[slot].prompt
        else:
            prompt = self._current_intent().confirmation_prompt
        action = {"intent": "ElicitIntent", "slot": "ElicitSlot", "confirm": "ConfirmIntent"}[kind]
        return self._say([self.definition.messages["not_understood"], self._fmt(prompt)], action, slot)

    def _fail(self) -> BotTurn:
        return self._finish(STATE_FAILED, [self.definition.messages["failure"]])

    def _finish(self, state: str, messages: list) -> BotTurn:
        result = self._intent_result(state)
        parts = self._as_messages(messages)
        text, ssml = render_messages(parts)
        self._final = BotTurn(text, ssml, True, result, "Close", messages=_spoken(parts))
        # The intent is closed; attributes stay with the session.
        self._reset_intent()
        return self._final

    def _reset_intent(self) -> None:
        self.state.intent = None
        self.state.slots = {}
        self.state.confirmation = CONFIRMATION_NONE
        self._eliciting = ("intent", None)

    # -- result ------------------------------------------------------------------
    def _intent_result(self, state: str) -> dict:
        name = self.state.intent or FALLBACK_INTENT
        slots = {k: (v.as_json() if v else None) for k, v in self.state.slots.items()}
        top = intent_object(name, slots, state, self.state.confirmation)
        interps = [interpretation(top, self._score_of(name))]
        for other, score, fills in self.state.interpretations:
            if other == name:
                continue
            other_slots = {k: (v.as_json() if v else None) for k, v in fills.items()}
            interps.append(interpretation(intent_object(other, other_slots, None, CONFIRMATION_NONE), score))
        return intent_result(self.session_id, self.state.attributes, top, interps)

    def _score_of(self, name: str) -> float:
        for other, score, _ in self.state.interpretations:
            if other == name:
                return score
        return 1.0 if name == FALLBACK_INTENT else 0.0

    # -- understanding -------------------------------------------------------------
    def _score_intent(self, intent: IntentDef, tokens: list[nlu.Token]) -> tuple[float, dict[str, SlotFill | None]]:
        fills: dict[str, SlotFill | None] = {s: None for s in intent.slots}
        if not tokens:
            return 0.0, fills
        used: set[int] = set()
        spans: list[tuple[int, int, str]] = []
        for slot in intent.slots.values():
            if slot.type.kind != "custom":
                continue
            found = nlu.find_phrases(tokens, slot.type.phrases, used)
            if found:
                i, j, values = found[0]
                fills[slot.name] = self._custom_fill(slot.type, tokens[i:j], values)
                spans.append((i, j, slot.name))
                used.update(range(i, j))
        numeric = [s for s in intent.slots.values() if s.type.kind == "number"]
        if len(numeric) == 1:
            for i, j, value in nlu.find_numbers(tokens, used):
                fill = self._number_fill(numeric[0].type, tokens[i:j], value)
                if fill is not None:
                    fills[numeric[0].name] = fill
                    spans.append((i, j, numeric[0].name))
                    used.update(range(i, j))
                    break
        delex: list[str] = []
        starts = {i: (j, name) for i, j, name in spans}
        k = 0
        while k < len(tokens):
            if k in starts:
                j, name = starts[k]
                delex.append("{" + name.lower() + "}")
                k = j
            else:
                delex.append(tokens[k].norm)
                k += 1
        score = max(nlu.similarity(delex, u) for u in intent.utterances)
        return score, fills

    def _fill_slot(self, slot: SlotDef, tokens: list[nlu.Token], dtmf: str | None, used: set[int],
                   *, eliciting: bool) -> SlotFill | None:
        st = slot.type
        if dtmf is not None:
            if not dtmf:
                return None
            if st.kind == "number":
                return self._number_fill(st, [nlu.Token(dtmf, dtmf)], dtmf) if dtmf.isdigit() else None
            value = st.dtmf.get(dtmf)
            return SlotFill(dtmf, value, [value]) if value is not None else None
        if not tokens:
            return None
        if st.kind == "number":
            for i, j, value in nlu.find_numbers(tokens, used):
                fill = self._number_fill(st, tokens[i:j], value)
                if fill is not None:
                    used.update(range(i, j))
                    return fill
            return None
        if st.kind == "confirmation":
            answer = nlu.confirmation_of(tokens)
            if answer is None:
                return None
            return SlotFill(" ".join(t.orig for t in tokens), answer, [answer])
        found = nlu.find_phrases(tokens, st.phrases, used)
        if not found:
            return None
        i, j, values = found[0]
        used.update(range(i, j))
        return self._custom_fill(st, tokens[i:j], values)

    @staticmethod
    def _custom_fill(st: SlotType, span: list[nlu.Token], values: list[str]) -> SlotFill:
        original = " ".join(t.orig for t in span)
        interpreted = values[0] if st.resolution == "top" else original
        return SlotFill(original, interpreted, list(values))

    @staticmethod
    def _number_fill(st: SlotType, span: list[nlu.Token], value: str) -> SlotFill | None:
        n = int(value)
        if st.minimum is not None and n < st.minimum:
            return None
        if st.maximum is not None and n > st.maximum:
            return None
        return SlotFill(" ".join(t.orig for t in span), value, [value])

    # -- output --------------------------------------------------------------------
    def _fmt(self, template: str | None) -> str:
        if template is None:
            return ""

        def sub(m: re.Match) -> str:
            name = m.group(1)
            fill = self.state.slots.get(name)
            if fill is not None:
                return fill.interpreted
            if name in self.state.attributes:
                return self.state.attributes[name]
            return m.group(0)

        return _PLACEHOLDER_RE.sub(sub, template)

    @staticmethod
    def _as_messages(messages: list) -> list[tuple[str, str]]:
        out = []
        for m in messages:
            if isinstance(m, tuple):
                out.append(m)
            elif m:
                out.append((m, "SSML" if is_ssml(m) else "PlainText"))
        return out

    def _say(self, messages: list, action: str, slot: str | None = None) -> BotTurn:
        parts = self._as_messages(messages)
        text, ssml = render_messages(parts)
        return BotTurn(text, ssml, False, None, action, slot, messages=_spoken(parts))


def _spoken(parts: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The messages that say something, whitespace-normalised as ``render_messages`` does."""
    return tuple((str(c).strip() if t == "SSML" else " ".join(str(c).split()), t)
                 for c, t in parts if c is not None and str(c).strip())
