"""StartBotConversation (spec 03c): a DTMF conversation with a local or Amazon Lex V2 bot.

The action is the audio path around :mod:`chimevoice.bots`; the bot session itself
lives in the driver (``BotRequest`` / ``BotRelease`` commands), so the engine stays
sans-IO and only passes ids, validated parameters and the caller's input. A turn:

1. the bot's prompt (``prompt_ssml`` or ``prompt_text``) is synthesized with the
   configured synthesizer (voice chosen from ``LocaleId``, :func:`voice_for_locale`)
   and played to the leg;
2. then caller input is collected: DTMF digits until ``#`` or an inter-digit timeout
   (5 s, 03c §8.6), and passed to the bot with ``input_dtmf``; a digit during the
   prompt stops it (barge-in, 03c §8.4); digits pressed while the bot is thinking
   are kept as the start of the next input (type-ahead);
3. no key at all within the no-input timeout (8 s) sends an empty input (the local
   bot counts it as not understood; Lex is not asked) and the last prompt is played
   again if the bot has nothing new to say.

When the bot closes the dialogue its closing message is played, then
``ACTION_SUCCESSFUL`` carries ``CallId`` and ``IntentResult`` in ``ActionData``. A
:class:`~chimevoice.bots.BotError` (parameters, unknown bot, Lex errors) is
``ACTION_FAILED`` with its ErrorType/ErrorMessage; a speech failure is
``SystemException``. A caller who hangs up ends the action silently (only ``HANGUP``).
Timeouts can be changed per conversation with Lex's session attributes (docs/bots.md).
"""
from __future__ import annotations

import re
from typing import Any

from chimevoice.bots import BotError, BotParameters, BotTurn, parse_bot_parameters
from chimevoice.bots.params import INVALID_ACTION_PARAMETER, MSG_LEG
from chimevoice.engine import inputs as I
from chimevoice.engine.action import Action, Needs
from chimevoice.engine.errors import MSG_SYSTEM, SYSTEM_EXCEPTION, ActionError
from chimevoice.engine.legs import Leg
from chimevoice.speech import SpeechRequest
from chimevoice.speech.voices import DEFAULT_VOICE_ID, POLLY_LANGUAGES, POLLY_VOICES

#: 03c §8.6: without '#', input is complete this long after the last key press.
DTMF_END_TIMEOUT_S = 5.0
#: How long the caller may take to press the first key after a prompt ends.
NO_INPUT_TIMEOUT_S = 8.0
#: Keys collected for one input at most (Lex's default x-amz-lex:dtmf:max-length is 1024).
MAX_DTMF_DIGITS = 1024

DTMF_KEYS = frozenset("0123456789*#")

# Session attributes that set the timeouts (03c §8.5 / §12 item 17: with or without the
# Lex V2 input-type segment): x-amz-lex:[dtmf:]<setting>:<intent|*>:<slot|*>.
_TIMEOUT_ATTR = re.compile(
    r"x-amz-lex:(?:dtmf:)?(?P<setting>start-timeout-ms|end-timeout-ms):(?P<intent>[^:]+):(?P<slot>[^:]+)")

# Lex locales whose speech language Polly names differently.
_LOCALE_LANGUAGES = {"es_419": "es-US", "en_AU": "en-AU", "yue_HK": "yue-CN"}


def voice_for_locale(locale_id: str) -> tuple[str, str, str | None]:
    """``(VoiceId, Engine, LanguageCode)`` used to speak a bot in *locale_id*.

    ``en_US`` → Joanna/standard/en-US (Polly's default voice); any other locale: the
    first female voice of the catalogue that speaks it with the ``standard`` engine,
    else any voice that speaks it; a locale Polly has no voice for is spoken by Joanna
    in her own language (LanguageCode left out).
    """
    language = _LOCALE_LANGUAGES.get(locale_id, locale_id.replace("_", "-"))
    default = POLLY_VOICES[DEFAULT_VOICE_ID]
    if language in default.languages:
        return default.id, "standard", language
    if language in POLLY_LANGUAGES:
        speakers = [v for v in POLLY_VOICES.values() if language in v.languages]
        speakers.sort(key=lambda v: ("standard" not in v.engines, v.gender != "Female",
                                     v.language != language))
        if speakers:
            voice = speakers[0]
            return voice.id, ("standard" if "standard" in voice.engines else "neural"), language
    return default.id, "standard", None


class StartBotConversation(Action):
    type_name = "StartBotConversation"
    needs = Needs.ANSWERED_MEDIA

    @property
    def _on(self) -> Leg:
        """The conversation's leg (resolved by start)."""
        assert self.leg is not None
        return self.leg

    def echo_parameters(self) -> dict[str, Any]:
        return dict(self.params)               # as received (01 §5.2; 03c §12 item 26)

    def success_data(self, **extra: Any) -> dict[str, Any]:
        # 03c §6.1: CallId, Type, Parameters, IntentResult (the guide's order).
        return {"CallId": extra.pop("CallId"), "Type": self.type_name, "Parameters": self.echo_parameters(),
                **extra}

    def consumes_dtmf(self, call_id: str) -> bool:
        # The bot takes every digit of its leg: no DIGITS_RECEIVED for them (03c §6.3).
        return self.owns_leg(call_id)

    def failure_data(self) -> dict[str, Any]:
        # 03c §6.2: ActionData.CallId, the leg the conversation ran on (when it was resolved).
        leg = self.leg
        if leg is None:
            try:
                leg = self.ctx.resolve_leg()
            except ActionError:
                return {}
        return {"CallId": leg.call_id}

    # -- start -----------------------------------------------------------------
    def start(self) -> None:
        self.bot_params: BotParameters = parse_bot_parameters(self.params, region=self.ctx.aws_region)
        leg = self.leg = self.ctx.resolve_leg()                    # V3 (CallId names a connected leg)
        if leg.participant.tag != "LEG-A" or any(                 # V4 / V5: LEG-A only, not bridged
                lg.connected for lg in self.ctx.legs.values() if lg is not leg):
            raise BotError(INVALID_ACTION_PARAMETER, MSG_LEG)
        following = self.ctx.following_actions()
        if following:
            # 03c §8.9: only the last action of a list reports, so IntentResult would be lost.
            self.ctx.log("warning", "bot_conversation_not_last", following=list(following))
        self.voice, self.engine, self.language = voice_for_locale(self.bot_params.locale_id)
        self.conversation = self.ctx.new_id("conversation")
        self.state = "thinking"        # thinking | prompting | listening | closing | done
        self.turn: BotTurn | None = None
        self.pending: str | None = None                # the bot request in flight
        self.speech: str | None = None                 # the speech request in flight
        self.path: str | None = None                   # the prompt ready to play
        self.duration_s = 0.0
        self.play_id: str | None = None
        self.digits = ""                               # the input being collected
        self.last_prompt: tuple[str, str] | None = None
        self.empty_input = False
        self.timer = self.ctx.timer_name("bot")
        self.pending = self.ctx.bot_request(self.conversation, self.leg.call_id, "start", self.bot_params)

    def run(self) -> None:
        """The call is answered (03c §8.1: the conversation answers it, once the first
        turn and its prompt are ready) and its media is up: play what is ready."""
        if self.path is not None and self.play_id is None:
            self._play()

    def on_input(self, inp: I.Input) -> None:
        match inp:
            case I.BotTurn(request_id=rid, turn=turn) if rid is not None and rid == self.pending:
                self.pending = None
                self._bot_turn(turn)
            case I.BotFailed(request_id=rid, error_type=error_type, message=message) if (
                    rid is not None and rid == self.pending):
                self.pending = None
                self.ctx.fail(error_type, message)
            case I.AudioReady(request_id=rid, path=path, duration_s=duration) if (
                    rid is not None and rid == self.speech):
                self.speech = None
                self.path, self.duration_s = path, duration
                if self.ctx.running:
                    self._play()
            case I.AudioFailed(request_id=rid, error_type=error_type, message=message) if (
                    rid is not None and rid == self.speech):
                # The bot's prompt could not be synthesized: not the handler's input (03c §7).
                self.speech = None
                self.ctx.log("error", "bot_prompt_speech_failed", error_type=error_type, error=message)
                self._release()
                self.ctx.fail(SYSTEM_EXCEPTION, MSG_SYSTEM)
            case I.PlaybackFinished(play_id=pid) if pid is not None and pid == self.play_id:
                self._prompt_finished()
            case I.Dtmf(call_id=cid, digit=digit) if self.owns_leg(cid):
                self._digit(digit)
            case I.TimerFired(name=name) if name == self.timer and self.state == "listening":
                self.empty_input = not self.digits
                self._submit()

    # -- bot turns -------------------------------------------------------------
    def _bot_turn(self, turn: BotTurn) -> None:
        self.turn = turn
        if self.leg is not None:
            # 03c §8.1: the conversation answers the call at its first turn, while the
            # prompt is synthesized (the precondition then only waits for the media).
            self.ctx.answer(self.leg)
        prompt = self._prompt(turn)
        if prompt is None and not turn.finished and self.empty_input:
            prompt = self.last_prompt                     # no input and nothing new: ask again
        self.empty_input = False
        if turn.finished:
            self.state = "closing"
            self.digits = ""
            if prompt is None:
                self._succeed()
            else:
                self._speak(prompt)
            return
        if prompt is not None:
            self.last_prompt = prompt
        if self.digits:                                   # typed ahead: the caller is answering
            self._listen()
            if "#" in self.digits:
                self._submit()
            return
        if prompt is None:
            self._listen()
        else:
            self._speak(prompt)

    @staticmethod
    def _prompt(turn: BotTurn) -> tuple[str, str] | None:
        if turn.prompt_ssml:
            return turn.prompt_ssml, "ssml"
        if turn.prompt_text:
            return turn.prompt_text, "text"
        return None

    # -- prompts ---------------------------------------------------------------
    def _speak(self, prompt: tuple[str, str]) -> None:
        if self.state != "closing":
            self.state = "prompting"
        text, text_type = prompt
        self.path = None
        self.speech = self.ctx.prepare_speech(SpeechRequest(
            text=text, text_type=text_type, engine=self.engine, language_code=self.language,
            voice_id=self.voice))

    def _play(self) -> None:
        assert self.path is not None
        path, self.path = self.path, None
        self.play_id = self.ctx.play(self._on, path, 1, self.duration_s)

    def _prompt_finished(self) -> None:
        self.play_id = None
        if self.state == "closing":
            self._succeed()
        elif self.state == "prompting":
            self._listen()

    # -- caller input ------------------------------------------------------------
    def _digit(self, digit: str) -> None:
        if digit not in DTMF_KEYS or self.state in ("closing", "done"):
            return
        if len(self.digits) < MAX_DTMF_DIGITS:
            self.digits += digit
        if self.state == "thinking":
            return                                        # kept for the next input
        if self.state == "prompting":                     # barge-in (03c §8.4)
            self._stop_prompt()
            self._listen()
        if digit == "#":
            self._submit()
        else:
            self.ctx.start_timer(self.timer, self._timeout("end-timeout-ms", DTMF_END_TIMEOUT_S))

    def _listen(self) -> None:
        self.state = "listening"
        if not self.digits:
            self.ctx.start_timer(self.timer, self._timeout("start-timeout-ms", NO_INPUT_TIMEOUT_S))
        else:
            self.ctx.start_timer(self.timer, self._timeout("end-timeout-ms", DTMF_END_TIMEOUT_S))

    def _submit(self) -> None:
        self.ctx.cancel_timer(self.timer)
        digits, self.digits = self.digits, ""
        if "#" in digits:                      # what follows '#' starts the next input
            digits, _, self.digits = digits.partition("#")
            digits += "#"
        self.state = "thinking"
        self.pending = self.ctx.bot_request(self.conversation, self._on.call_id, "dtmf", digits)

    def _timeout(self, setting: str, default: float) -> float:
        """A timeout from the x-amz-lex session attributes (the most specific match), else *default*."""
        attrs = self.bot_params.session_attributes or {}
        slot = self.turn.slot_to_elicit if self.turn is not None else None
        best: tuple[int, float] | None = None
        for key, value in attrs.items():
            m = _TIMEOUT_ATTR.fullmatch(key)
            if m is None or m["setting"] != setting or m["slot"] not in ("*", slot):
                continue
            try:
                seconds = int(value) / 1000.0
            except ValueError:
                continue
            rank = (m["slot"] != "*") + (m["intent"] != "*") + key.startswith("x-amz-lex:dtmf:")
            if seconds > 0 and (best is None or rank > best[0]):
                best = (rank, seconds)
        return best[1] if best is not None else default

    # -- ending ------------------------------------------------------------------
    def _stop_prompt(self) -> None:
        self.speech = None
        self.path = None
        if self.play_id is not None:
            self.ctx.stop_play(self._on, self.play_id)
            self.play_id = None

    def _release(self) -> None:
        if self.state != "done":
            self.state = "done"
            self.ctx.cancel_timer(self.timer)
            self.ctx.bot_release(self.conversation)

    def _succeed(self) -> None:
        assert self.turn is not None
        self._release()
        self.ctx.succeed(CallId=self._on.call_id, IntentResult=self.turn.intent_result)

    def stop(self) -> None:
        """Failed or abandoned (the caller hung up): stop the prompt, drop the session."""
        if not hasattr(self, "conversation"):
            return
        self._stop_prompt()
        self._release()


__all__ = ["StartBotConversation", "voice_for_locale"]
