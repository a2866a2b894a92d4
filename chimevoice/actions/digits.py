"""DTMF digit collection: ReceiveDigits, PlayAudioAndGetDigits, SpeakAndGetDigits.

Spec 03a §1 (PlayAudioAndGetDigits), §2 (ReceiveDigits), §4 (check order), §6 A/B/E;
03b §3, §5 (SpeakAndGetDigits); 04 §4 rows 17–22; README readings 1, 4, 5, 6.

One collection engine (:class:`_GetDigits`, README reading 1) serves both GetDigits
actions; they differ only in where the two prompts come from (a bucket or text-to-speech)
and in their parameter checks. The attempt logic itself is pure and lives in
:mod:`chimevoice.engine.digits`. Choices the spec leaves open: docs/digits.md.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chimevoice.engine import inputs as I
from chimevoice.engine.action import Action, ActionContext, Needs
from chimevoice.engine.digits import DTMF_DIGITS, MAX_DIGITS_LIMIT, Attempt, CollectSpec, Listener
from chimevoice.engine.errors import INVALID_ACTION_PARAMETER, MISSING_REQUIRED_ACTION_PARAMETER, ActionError
from chimevoice.engine.values import ParamError, as_int, is_blank, str_list
from chimevoice.media.audio import parse_audio_source
from chimevoice.speech import MAX_TEXT_CHARS, SpeechError, SpeechRequest, validate
from chimevoice.speech.errors import ACCESS_DENIED, MSG_ACCESS_DENIED_SPEAK_AND_GET_DIGITS

#: ErrorType when every attempt failed (03a §1.6 / §6 A2, README reading 1).
INVALID_DIGITS_RECEIVED = "InvalidDigitsReceived"
#: Its message: the guide gives none; chosen here (docs/digits.md).
MSG_INVALID_DIGITS = "Valid digits were not received."
MSG_MISSING = "Missing required action parameter."


def invalid(name: str) -> ActionError:
    """``InvalidActionParameter`` / ``<Name> parameter is invalid.`` (04 §4 rows 17–22)."""
    return ActionError(INVALID_ACTION_PARAMETER, f"{name} parameter is invalid.")


def _opt_int(params: Mapping[str, Any], name: str) -> int | None:
    """A lenient integer (README reading 5); absent, null or "" gives None."""
    value = params.get(name)
    if is_blank(value):
        return None
    try:
        return int(as_int(value))
    except ParamError:
        raise invalid(name) from None


def _int(params: Mapping[str, Any], name: str, default: int) -> int:
    """A lenient integer; absent, null or "" gives *default*."""
    value = _opt_int(params, name)
    return default if value is None else value


def _regex(value: Any, *, required: bool) -> re.Pattern[str] | None:
    """``InputDigitsRegex``: compiled with Python ``re`` (matched with search semantics).

    Optional (GetDigits): absent, null or "" means no pattern (the empty pattern matches
    everything anyway). Required (ReceiveDigits): those are invalid (04 §4 row 22)."""
    if value is None or value == "":
        if required:
            raise invalid("InputDigitsRegex")
        return None
    if not isinstance(value, str):
        raise invalid("InputDigitsRegex")
    try:
        return re.compile(value)
    except (re.error, RecursionError, OverflowError):
        raise invalid("InputDigitsRegex") from None


def _terminators(value: Any) -> frozenset[str]:
    """``TerminatorDigits``: default ``["#"]``; ``[]`` = none; each one of ``0-9 # *``."""
    if value is None or value == "":
        return frozenset("#")
    try:
        keys = str_list(value)
    except ParamError:
        raise invalid("TerminatorDigits") from None
    if any(k not in DTMF_DIGITS for k in keys):
        raise invalid("TerminatorDigits")
    return frozenset(keys)


def collect_spec(params: Mapping[str, Any]) -> CollectSpec:
    """The digit parameters of both GetDigits actions (03a §1.3 normalised validation,
    README reading 5: Max may equal Min). RepeatDurationInMilliseconds must be present
    (the caller checks that first where its absence has an error of its own)."""
    min_digits = _int(params, "MinNumberOfDigits", 0)
    if min_digits < 0:
        raise invalid("MinNumberOfDigits")
    max_digits = _int(params, "MaxNumberOfDigits", MAX_DIGITS_LIMIT)
    if not 1 <= max_digits <= MAX_DIGITS_LIMIT or max_digits < min_digits:
        raise invalid("MaxNumberOfDigits")
    repeat_ms = _opt_int(params, "RepeatDurationInMilliseconds")
    if repeat_ms is None or repeat_ms <= 0:
        raise invalid("RepeatDurationInMilliseconds")
    between_ms = _int(params, "InBetweenDigitsDurationInMilliseconds", repeat_ms)
    if between_ms <= 0:
        raise invalid("InBetweenDigitsDurationInMilliseconds")
    attempts = _int(params, "Repeat", 1)
    if attempts < 1:
        raise invalid("Repeat")
    terminators = _terminators(params.get("TerminatorDigits"))
    regex = _regex(params.get("InputDigitsRegex"), required=False)
    return CollectSpec(first_wait_ms=repeat_ms, between_ms=between_ms, min_digits=min_digits,
                       max_digits=max_digits, terminators=terminators, attempts=attempts, regex=regex)


# -- ReceiveDigits ---------------------------------------------------------------------------

class ReceiveDigits(Action):
    """Arm the leg's digit listener (03a §2.7) and complete at once.

    Does not answer the call (03a §6 B12). As the last action of a list it yields
    ``ACTION_SUCCESSFUL`` with ``"ReceivedDigits": ""``; matching input later yields
    ``DIGITS_RECEIVED`` (01 §6.10), as often as the caller types it, until another
    ReceiveDigits replaces the listener or the leg hangs up."""
    type_name = "ReceiveDigits"

    def start(self) -> None:
        leg = self.ctx.resolve_leg()                          # 03a §4 order: leg first
        gap_ms = _opt_int(self.params, "InBetweenDigitsDurationInMilliseconds")
        if gap_ms is None or gap_ms <= 0:
            raise invalid("InBetweenDigitsDurationInMilliseconds")
        flush_ms = _opt_int(self.params, "FlushDigitsDurationInMilliseconds")
        if flush_ms is None or flush_ms <= gap_ms:
            raise invalid("FlushDigitsDurationInMilliseconds")
        regex = _regex(self.params.get("InputDigitsRegex"), required=True)
        assert regex is not None
        self.ctx.arm_digit_listener(leg, Listener(regex, gap_ms, flush_ms))
        self.ctx.succeed(ReceivedDigits="")

    def success_data(self, **extra: Any) -> dict[str, Any]:
        # The guide's example puts ReceivedDigits first (03a §2.4).
        return {"ReceivedDigits": extra.get("ReceivedDigits", ""), "Type": self.type_name,
                "Parameters": self.echo_parameters()}


# -- the GetDigits engine ----------------------------------------------------------------------

class _GetDigits(Action):
    """Prompt, collect, retry (03a §1.7 with README reading 1).

    Per attempt: play the main prompt (a digit stops it and counts: barge-in), wait
    RepeatDurationInMilliseconds for the first digit from the end of the prompt, then
    InBetweenDigitsDurationInMilliseconds after each digit, until a terminator, Max digits
    or a wait expires. A failed attempt plays the failure prompt (not interruptible;
    digits during it are discarded), after the last attempt too; then ACTION_FAILED
    InvalidDigitsReceived. The action takes every digit of its leg while it runs.
    """

    needs = Needs.ANSWERED_MEDIA

    def __init__(self, ctx: ActionContext, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        self.state = "preparing"
        self.requests: dict[str, str] = {}              # request id -> "main" | "failure"
        self.paths: dict[str, tuple[str, float]] = {}
        self.play_id: str | None = None
        self.timer: str | None = None
        self.attempt: Attempt | None = None
        self.attempt_no = 0

    def _validate(self) -> CollectSpec:
        """Check the parameters, resolve self.leg, ask for both prompts (self.requests)."""
        raise NotImplementedError

    def start(self) -> None:
        self.spec = self._validate()

    def run(self) -> None:
        self._next_attempt()

    def consumes_dtmf(self, call_id: str) -> bool:
        return self.owns_leg(call_id)

    def on_input(self, inp: I.Input) -> None:
        match inp:
            case I.AudioReady(request_id=rid, path=path, duration_s=duration) if rid in self.requests:
                self.paths[self.requests[rid]] = (path, duration)
            case I.AudioFailed(request_id=rid, error_type=error_type, message=message) if rid in self.requests:
                self.ctx.fail(error_type, self._failure_message(error_type, message))
            case I.PlaybackFinished(play_id=pid) if pid is not None and pid == self.play_id:
                self._prompt_finished()
            case I.Dtmf(call_id=cid, digit=digit) if self.owns_leg(cid):
                self._digit(digit)
            case I.TimerFired(name=name) if name == self.timer:
                self._timed_out()

    def _failure_message(self, error_type: str, message: str) -> str:
        return message

    # attempts
    def _next_attempt(self) -> None:
        self.attempt_no += 1
        self.attempt = Attempt(self.spec)
        self.state = "prompt"
        self._play("main")

    def _play(self, role: str) -> None:
        assert self.leg is not None
        path, duration_s = self.paths[role]
        self.play_id = self.ctx.play(self.leg, path, 1, duration_s)

    def _prompt_finished(self) -> None:
        self.play_id = None
        if self.state == "prompt":
            self.state = "collect"
            self._wait()
        elif self.state == "failure":
            if self.attempt_no < self.spec.attempts:
                self._next_attempt()
            else:
                self.state = "done"
                self.ctx.log("info", "digits_not_received", action=self.type_name, attempts=self.attempt_no)
                self.ctx.fail(INVALID_DIGITS_RECEIVED, MSG_INVALID_DIGITS)

    def _digit(self, digit: str) -> None:
        if self.attempt is None:
            return
        if self.state == "prompt":                     # barge-in: the digit stops the prompt
            self._stop_play()
            self.state = "collect"
        elif self.state != "collect":
            return                                     # failure prompt / between attempts: discarded
        if self.attempt.feed(digit):
            self._end_attempt()
        else:
            self._wait()

    def _wait(self) -> None:
        assert self.attempt is not None
        if self.timer is not None:
            self.ctx.cancel_timer(self.timer)
        self.timer = self.ctx.timer_name("digits")
        self.ctx.start_timer(self.timer, self.attempt.wait_ms() / 1000.0)

    def _timed_out(self) -> None:
        if self.state == "collect" and self.attempt is not None:
            self.timer = None
            self.attempt.timeout()
            self._end_attempt()

    def _end_attempt(self) -> None:
        assert self.attempt is not None
        if self.timer is not None:
            self.ctx.cancel_timer(self.timer)
            self.timer = None
        attempt = self.attempt
        self.ctx.log("info", "digits_attempt", action=self.type_name, attempt=self.attempt_no,
                     digits=attempt.digits, terminator=attempt.terminator, ok=attempt.succeeded)
        if attempt.succeeded:
            self.state = "done"
            self.ctx.succeed(ReceivedDigits=attempt.digits)
        else:
            self.state = "failure"
            self._play("failure")

    def _stop_play(self) -> None:
        if self.play_id is not None and self.leg is not None:
            self.ctx.stop_play(self.leg, self.play_id)
            self.play_id = None

    def stop(self) -> None:
        if self.leg is None:
            return
        self._stop_play()
        if self.timer is not None:
            self.ctx.cancel_timer(self.timer)
            self.timer = None
        self.state = "done"


def _audio_source(value: Any) -> tuple[str, str]:
    """An AudioSource / FailureAudioSource; a missing or empty Type means S3 (03a §6 A7)."""
    if isinstance(value, Mapping) and is_blank(value.get("Type")):
        value = {**value, "Type": "S3"}
    return parse_audio_source(value)


class PlayAudioAndGetDigits(_GetDigits):
    """Prompts from the bucket (AudioSource, FailureAudioSource, both required: 03a §6 A9).

    Reports ACTION_SUCCESSFUL at once, even mid-list (README reading 6)."""
    type_name = "PlayAudioAndGetDigits"
    reports_immediately = True

    def _validate(self) -> CollectSpec:
        # 03a §4: leg, audio sources, MaxNumberOfDigits, RepeatDuration, regex (others in between).
        self.leg = self.ctx.resolve_leg()
        main = _audio_source(self.params.get("AudioSource"))
        failure = _audio_source(self.params.get("FailureAudioSource"))
        spec = collect_spec(self.params)
        self.requests = {self.ctx.prepare_audio(*main): "main",
                         self.ctx.prepare_audio(*failure): "failure"}
        return spec


def _speech_object(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or is_blank(value.get("Text")):
        raise SpeechError.text_required()
    return value


def _given(value: Any) -> Any:
    return None if value is None or value == "" else value


class SpeakAndGetDigits(_GetDigits):
    """Prompts from text-to-speech (SpeechParameters, FailureSpeechParameters).

    FailureSpeechParameters fields left out (or empty) take the main prompt's effective
    values (03b §3.4, §6 D11). Check order 03b §5: required keys, Text lengths, values,
    then the leg. Not in reading 6's list, so it reports like any other action."""
    type_name = "SpeakAndGetDigits"

    def _validate(self) -> CollectSpec:
        sp = _speech_object(self.params.get("SpeechParameters"))
        fp = _speech_object(self.params.get("FailureSpeechParameters"))
        if is_blank(self.params.get("RepeatDurationInMilliseconds")):
            raise ActionError(MISSING_REQUIRED_ACTION_PARAMETER, MSG_MISSING)
        for obj in (sp, fp):
            if isinstance(obj["Text"], str) and len(obj["Text"]) > MAX_TEXT_CHARS:
                raise SpeechError.text_too_long(f"{len(obj['Text'])} characters")
        main = SpeechRequest.from_parameters(dict(sp))
        failure = SpeechRequest(
            text=fp["Text"],
            text_type=_given(fp.get("TextType")) or _given(main.text_type) or "text",
            engine=_given(fp.get("Engine")) or _given(main.engine) or "standard",
            language_code=_given(fp.get("LanguageCode")) or _given(main.language_code),
            voice_id=_given(fp.get("VoiceId")) or _given(main.voice_id),
        )
        validate(main)
        validate(failure)
        spec = collect_spec(self.params)
        self.leg = self.ctx.resolve_leg()
        self.requests = {self.ctx.prepare_speech(main): "main",
                         self.ctx.prepare_speech(failure): "failure"}
        return spec

    def _failure_message(self, error_type: str, message: str) -> str:
        # The one message that differs from Speak's (03b §6 D18).
        return MSG_ACCESS_DENIED_SPEAK_AND_GET_DIGITS if error_type == ACCESS_DENIED else message
