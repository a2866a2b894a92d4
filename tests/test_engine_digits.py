"""DTMF digit collection without SIP: the pure algorithms (chimevoice/engine/digits.py) and
ReceiveDigits / PlayAudioAndGetDigits / SpeakAndGetDigits through the sans-IO engine.

Spec 03a §1, §2, §4, §6 A/B/E; 03b §3, §5; 04 §4 rows 17-22; README readings 1, 4, 5, 6.
Choices the spec leaves open are in docs/digits.md; the tests marked "docs/digits.md"
assert them.
"""
from __future__ import annotations

import json
import re

import pytest

from chimevoice.actions import REGISTRY
from chimevoice.engine import commands as c
from chimevoice.engine import inputs as I
from chimevoice.engine.digits import Attempt, CollectSpec, DigitListeners, Listener, Report, stream_digit
from chimevoice.engine.events import Participant
from chimevoice.engine.transaction import Limits, Target, Transaction
from chimevoice.speech import SpeechRequest

A = "call-id-1"
BUCKET = "bucket-name"
IAP = "InvalidActionParameter"


def bad(name: str) -> str:
    """The 04 §4 wording of an invalid parameter."""
    return f"{name} parameter is invalid."


# -- the pure parts -------------------------------------------------------------------------

def spec(**kw) -> CollectSpec:
    kw.setdefault("first_wait_ms", 3000)
    kw.setdefault("between_ms", 1000)
    if isinstance(kw.get("regex"), str):
        kw["regex"] = re.compile(kw["regex"])
    return CollectSpec(**kw)


def run_attempt(s: CollectSpec, keys: str, timeout: bool = False) -> Attempt:
    a = Attempt(s)
    for k in keys:
        if a.feed(k):
            break
    if timeout and not a.ended:
        a.timeout()
    return a


def test_stream_carries_0_9_star_hash_only():
    assert [stream_digit(d) for d in "0123456789*#"] == list("0123456789*#")
    assert [stream_digit(d) for d in ("A", "b", "C", "d", "", "x", "12")] == [None] * 7


def test_terminator_ends_attempt_and_is_not_collected():
    a = run_attempt(spec(min_digits=3), "1234#99")
    assert a.ended and a.terminator == "#" and a.digits == "1234" and a.succeeded


def test_max_digits_ends_attempt_without_terminator():
    a = run_attempt(spec(max_digits=4), "123456")
    assert a.ended and a.digits == "1234" and a.terminator is None and a.succeeded


def test_too_few_digits_fail_and_min_counts_digits_not_terminator():
    assert not run_attempt(spec(min_digits=3), "12#").succeeded
    assert run_attempt(spec(min_digits=3), "123#").succeeded


def test_inter_digit_timeout_with_enough_digits_succeeds():
    assert run_attempt(spec(min_digits=2), "12", timeout=True).succeeded
    assert not run_attempt(spec(min_digits=3), "12", timeout=True).succeeded


def test_min_zero_silence_fails_but_terminator_alone_succeeds_with_empty_digits():
    # docs/digits.md (03a §6 A13, README reading 1)
    silent = run_attempt(spec(), "", timeout=True)
    assert silent.ended and not silent.succeeded
    term = run_attempt(spec(), "#")
    assert term.succeeded and term.digits == ""


def test_regex_is_searched_in_digits_without_terminator():
    # README reading 1: re.search on the digits without the terminator.
    assert run_attempt(spec(regex=r"^\d{4}$"), "1234#").succeeded
    assert run_attempt(spec(regex="[5-7]"), "1152#").succeeded       # a match anywhere
    assert not run_attempt(spec(regex="[5-7]"), "1112#").succeeded
    assert not run_attempt(spec(regex=r"\d{2}#$"), "12#").succeeded   # the terminator is not in the subject


def test_a_terminator_wins_over_the_same_digit_wanted():
    a = run_attempt(spec(terminators=frozenset("1")), "21")
    assert a.digits == "2" and a.terminator == "1"


def test_waits_first_digit_then_in_between():
    a = Attempt(spec(first_wait_ms=5000, between_ms=700))
    assert a.wait_ms() == 5000
    a.feed("1")
    assert a.wait_ms() == 700


def test_listener_reports_on_gap_keeps_non_matching_buffer_and_flush_discards():
    lst = Listener(re.compile(r"\d{2}#$"), 1000, 10000)
    assert lst.digit("1") is True            # opens the window: start the flush timer
    assert lst.digit("1") is False
    assert lst.gap_expired() is None          # "11" does not match: kept
    lst.digit("#")
    assert lst.gap_expired() == "11#" and lst.buffer == ""
    lst.digit("9")
    assert lst.flush_expired() is None and lst.buffer == ""     # discarded silently
    lst.digit("4")
    lst.digit("2")
    lst.digit("#")
    assert lst.flush_expired() == "42#"       # checked once more at the flush


def test_listener_never_reports_an_empty_buffer():
    lst = Listener(re.compile(r"\d*"), 1000, 10000)
    assert lst.gap_expired() is None and lst.flush_expired() is None


def test_digit_listeners_one_per_leg_replaced_and_dropped():
    ls = DigitListeners()
    assert ls.dtmf("leg-1", "5") == []                     # nothing armed: discarded
    assert ls.arm("leg-1", Listener(re.compile("5"), 100, 1000), "ReceiveDigits", {"x": 1}) == []
    effects = ls.dtmf("leg-1", "5")
    flush, gap = effects
    assert isinstance(flush, c.StartTimer) and flush.seconds == 1.0
    assert isinstance(gap, c.StartTimer) and gap.seconds == 0.1
    assert ls.dtmf("leg-2", "5") == []                     # another leg's digits are not seen
    assert ls.timer_fired(gap.name) == [c.CancelTimer(flush.name), Report("leg-1", {
        "ReceivedDigits": "5", "Type": "ReceiveDigits", "Parameters": {"x": 1}})]
    ls.dtmf("leg-1", "5")
    cancels = ls.arm("leg-1", Listener(re.compile("7"), 100, 1000), "ReceiveDigits", {})
    assert cancels == [c.CancelTimer(gap.name), c.CancelTimer(flush.name)]
    assert ls.timer_fired(gap.name) == []                  # the replaced listener's timer
    assert ls.drop("leg-1") and not ls.armed("leg-1")


# -- through the engine ------------------------------------------------------------------------

class Call:
    """A transaction with its command log, the timers it runs and the plays it made."""

    def __init__(self) -> None:
        leg = Participant(A, "LEG-A", "+12065551212", "+15105550101", "Inbound", 1597009588342)
        self.tx = Transaction(transaction_id="transaction-id", leg_a=leg,
                              targets=[Target("sma-1", "111122223333", "us-east-1")],
                              sip_rule_id="sip-rule-id", registry=REGISTRY, limits=Limits())
        self.timers: dict[str, float] = {}
        self.playing: dict[str, str] = {}          # play_id -> path
        self.played: list[str] = []                # paths, in order
        self.events: list[dict] = []
        self.tx.handle(I.InboundCallRouted())
        self.take()

    def take(self) -> list:
        cmds = self.tx.drain()
        for cmd in cmds:
            if isinstance(cmd, c.StartTimer):
                self.timers[cmd.name] = cmd.seconds
            elif isinstance(cmd, c.CancelTimer):
                self.timers.pop(cmd.name, None)
            elif isinstance(cmd, c.Play):
                self.playing[cmd.play_id] = cmd.path
                self.played.append(cmd.path)
            elif isinstance(cmd, c.StopPlay):
                self.playing.pop(cmd.play_id, None)
            elif isinstance(cmd, c.Invoke):
                self.events.append(cmd.event)
        self.last = cmds
        return cmds

    def respond(self, actions, **extra) -> list:
        self.tx.handle(I.HandlerResponded({"SchemaVersion": "1.0", "Actions": actions, **extra}))
        return self.take()

    def event(self) -> dict:
        inv = [x for x in self.last if isinstance(x, c.Invoke)]
        assert len(inv) == 1, self.last
        return inv[0].event

    def no_event(self) -> None:
        assert not [x for x in self.last if isinstance(x, c.Invoke)], self.last

    def waits(self) -> dict[str, float]:
        return {k: v for k, v in self.timers.items() if k != "unanswered"}

    def fire(self, name: str | None = None) -> list:
        if name is None:
            (name,) = [k for k in self.waits() if not k.startswith("digits:")]
        self.timers.pop(name, None)
        self.tx.handle(I.TimerFired(name))
        return self.take()

    def keys(self, digits: str, call_id: str = A) -> list:
        out = []
        for d in digits:
            self.tx.handle(I.Dtmf(call_id, d))
            out += self.take()
        return out

    def prepared(self) -> list:
        return [x for x in self.last if isinstance(x, (c.PrepareAudio, c.PrepareSpeech))]

    def ready_all(self, requests, paths=("/cache/main.wav", "/cache/failure.wav"), duration=2.0) -> list:
        out = []
        for req, path in zip(requests, paths):
            self.tx.handle(I.AudioReady(req.request_id, path, duration))
            out += self.take()
        return out

    def media(self) -> list:
        self.tx.handle(I.MediaReady(A))
        return self.take()

    def finish_play(self) -> list:
        (pid,) = self.playing
        self.playing.pop(pid)
        self.tx.handle(I.PlaybackFinished(A, pid))
        return self.take()

    def current_prompt(self) -> str:
        (path,) = self.playing.values()
        return path


def audio(key):
    return {"Type": "S3", "BucketName": BUCKET, "Key": key}


def paagd(**params):
    out = {"AudioSource": audio("prompt.wav"), "FailureAudioSource": audio("failure.wav"),
           "RepeatDurationInMilliseconds": 3000}
    out.update(params)
    return {"Type": "PlayAudioAndGetDigits", "Parameters": {k: v for k, v in out.items() if v is not ...}}


def sagd(**params):
    out = {"SpeechParameters": {"Text": "Enter your PIN."},
           "FailureSpeechParameters": {"Text": "Sorry."},
           "RepeatDurationInMilliseconds": 3000}
    out.update(params)
    return {"Type": "SpeakAndGetDigits", "Parameters": {k: v for k, v in out.items() if v is not ...}}


def receive(**params):
    out = {"InputDigitsRegex": "\\d{2}#$", "InBetweenDigitsDurationInMilliseconds": 1000,
           "FlushDigitsDurationInMilliseconds": 10000}
    out.update(params)
    return {"Type": "ReceiveDigits", "Parameters": {k: v for k, v in out.items() if v is not ...}}


def started(action, answer=True) -> Call:
    """A call whose GetDigits action is playing its first prompt."""
    call = Call()
    call.respond([action])
    reqs = call.prepared()
    assert len(reqs) == 2
    call.ready_all(reqs)
    if answer:
        assert [x for x in call.last if isinstance(x, c.Answer)] == [c.Answer(A)]
        call.media()
    assert call.current_prompt() == "/cache/main.wav"
    return call


DETAILS = {"TransactionId": "transaction-id", "AwsAccountId": "111122223333", "AwsRegion": "us-east-1",
           "SipRuleId": "sip-rule-id", "SipMediaApplicationId": "sma-1", "SipApplicationId": "sma-1",
           "Participants": [{"CallId": A, "ParticipantTag": "LEG-A", "To": "+12065551212",
                             "From": "+15105550101", "Direction": "Inbound",
                             "StartTimeInMilliseconds": "1597009588342", "Status": "Connected"}]}


# -- ReceiveDigits -------------------------------------------------------------------------------

def test_receive_digits_success_then_digits_received_byte_exact():
    call = Call()
    params = {"CallId": A, "InputDigitsRegex": "\\d{2}#$", "InBetweenDigitsDurationInMilliseconds": 5000,
              "FlushDigitsDurationInMilliseconds": 10000}
    call.respond([{"Type": "ReceiveDigits", "Parameters": params}])
    assert not [x for x in call.last if isinstance(x, c.Answer)]      # it does not answer (03a §6 B12)
    assert json.dumps(call.event()) == json.dumps({
        "SchemaVersion": "1.0", "Sequence": 2, "InvocationEventType": "ACTION_SUCCESSFUL",
        "ActionData": {"ReceivedDigits": "", "Type": "ReceiveDigits", "Parameters": params},
        "CallDetails": DETAILS})
    call.respond([])
    call.keys("11#")
    call.no_event()
    assert sorted(call.waits().values()) == [5.0, 10.0]               # gap and flush timers
    (gap,) = [k for k, v in call.waits().items() if v == 5.0]
    call.fire(gap)
    assert json.dumps(call.event()) == json.dumps({
        "SchemaVersion": "1.0", "Sequence": 3, "InvocationEventType": "DIGITS_RECEIVED",
        "ActionData": {"ReceivedDigits": "11#", "Type": "ReceiveDigits", "Parameters": params},
        "CallDetails": DETAILS})
    assert call.waits() == {}                                          # flush timer stopped


def test_listener_persists_and_empties_its_buffer_after_each_report():
    # docs/digits.md: persistent listener (03a §2.7 choice 1)
    call = Call()
    call.respond([receive(InputDigitsRegex="[0189]$")])
    call.respond([])
    got = []
    for key in "0", "8", "5", "1":
        call.keys(key)
        gap = [k for k, v in call.waits().items() if v == 1.0][0]
        call.fire(gap)
        if any(isinstance(x, c.Invoke) for x in call.last):
            got.append(call.event()["ActionData"]["ReceivedDigits"])
            call.respond([])
    # "5" alone does not match and stays in the buffer: the next report is "51".
    assert got == ["0", "8", "51"]


def test_non_matching_input_is_flushed_silently_and_next_digit_opens_a_new_window():
    call = Call()
    call.respond([receive()])
    call.respond([])
    call.keys("12")
    gap = [k for k, v in call.waits().items() if v == 1.0][0]
    flush = [k for k, v in call.waits().items() if v == 10.0][0]
    call.fire(gap)
    call.no_event()
    call.fire(flush)
    call.no_event()
    assert call.waits() == {}
    call.keys("4")
    assert sorted(call.waits().values()) == [1.0, 10.0]                 # a new window
    call.keys("2#")
    call.fire([k for k, v in call.waits().items() if v == 1.0][0])
    assert call.event()["ActionData"]["ReceivedDigits"] == "42#"        # "12" was discarded


def test_no_listener_means_digits_are_discarded_not_queued():
    call = Call()
    call.respond([{"Type": "Pause", "Parameters": {"DurationInMilliseconds": 100}}])
    call.media()
    call.keys("11#")                     # before any ReceiveDigits: dropped (03a §2.6 R2)
    call.fire()
    call.respond([receive()])
    call.respond([])
    call.keys("2")
    call.keys("3#")
    call.fire([k for k, v in call.waits().items() if v == 1.0][0])
    assert call.event()["ActionData"]["ReceivedDigits"] == "23#"


def test_a_to_d_never_reach_the_listener():
    call = Call()
    call.respond([receive(InputDigitsRegex="[A-D]")])
    call.respond([])
    call.keys("ABCD")
    assert call.waits() == {}


def test_receive_digits_mid_list_sends_nothing_and_the_list_goes_on():
    call = Call()
    call.respond([receive(), {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 500}}])
    call.no_event()
    call.media()
    call.fire()
    assert call.event()["ActionData"]["Type"] == "Pause"


def test_a_new_receive_digits_replaces_the_listener():
    call = Call()
    call.respond([receive(InputDigitsRegex="9")])
    call.respond([])
    call.keys("9")
    call.fire([k for k, v in call.waits().items() if v == 1.0][0])
    assert call.event()["InvocationEventType"] == "DIGITS_RECEIVED"
    call.keys("1")                               # buffered while the handler is invoked
    old = set(call.waits())
    assert len(old) == 2
    call.respond([receive(InputDigitsRegex="2", InBetweenDigitsDurationInMilliseconds=500)])
    assert not old & set(call.waits())           # the old listener's timers are cancelled
    assert call.event()["ActionData"]["Parameters"]["InputDigitsRegex"] == "2"
    call.respond([])
    call.keys("12")
    call.fire([k for k, v in call.waits().items() if v == 0.5][0])
    assert call.event()["ActionData"]["ReceivedDigits"] == "12"
    assert call.event()["ActionData"]["Parameters"]["InBetweenDigitsDurationInMilliseconds"] == 500


def test_foreground_action_with_terminators_takes_the_digits():
    # docs/digits.md: foreground wins (03a §2.7 choice 4)
    call = Call()
    call.respond([receive(InputDigitsRegex="\\d"),
                  {"Type": "PlayAudio", "Parameters": {"AudioSource": audio("a.wav"), "PlaybackTerminators": ["#"]}}])
    call.tx.handle(I.AudioReady(call.prepared()[0].request_id, "/cache/a.wav", 5.0))
    call.take()
    call.media()
    call.keys("5")
    assert call.waits() == {}                         # not buffered by the listener
    call.keys("#")
    assert call.event()["InvocationEventType"] == "ACTION_SUCCESSFUL"


def test_play_without_terminators_leaves_the_digits_to_the_listener():
    call = Call()
    call.respond([receive(InputDigitsRegex="\\d"),
                  {"Type": "PlayAudio", "Parameters": {"AudioSource": audio("a.wav")}}])
    call.tx.handle(I.AudioReady(call.prepared()[0].request_id, "/cache/a.wav", 5.0))
    call.take()
    call.media()
    call.keys("5")
    call.fire([k for k, v in call.waits().items() if v == 1.0][0])
    assert call.event()["InvocationEventType"] == "DIGITS_RECEIVED"
    assert call.playing                                  # the play goes on


def test_listener_removed_on_hangup_no_digits_received_after_hangup():
    call = Call()
    call.respond([receive()])
    call.respond([])
    call.keys("11#")
    pending = dict(call.waits())
    call.tx.handle(I.LegDisconnected(A, by_remote=True))
    cmds = call.take()
    assert call.event()["InvocationEventType"] == "HANGUP"
    assert {x.name for x in cmds if isinstance(x, c.CancelTimer)} >= set(pending)
    for name in pending:                                 # a late expiry changes nothing
        call.tx.handle(I.TimerFired(name))
        call.take()
        call.no_event()


@pytest.mark.parametrize("params,message", [
    ({"ParticipantTag": "LEG-B"}, "CallId or ParticipantTag parameter for action is invalid."),
    ({"CallId": "nope"}, "CallId or ParticipantTag parameter for action is invalid."),
    ({"InBetweenDigitsDurationInMilliseconds": ...}, bad("InBetweenDigitsDurationInMilliseconds")),
    ({"InBetweenDigitsDurationInMilliseconds": 0}, bad("InBetweenDigitsDurationInMilliseconds")),
    ({"InBetweenDigitsDurationInMilliseconds": "soon"}, bad("InBetweenDigitsDurationInMilliseconds")),
    ({"FlushDigitsDurationInMilliseconds": ...}, bad("FlushDigitsDurationInMilliseconds")),
    ({"FlushDigitsDurationInMilliseconds": 1000}, bad("FlushDigitsDurationInMilliseconds")),
    ({"FlushDigitsDurationInMilliseconds": 500}, bad("FlushDigitsDurationInMilliseconds")),
    ({"InputDigitsRegex": ...}, bad("InputDigitsRegex")),
    ({"InputDigitsRegex": ""}, bad("InputDigitsRegex")),
    ({"InputDigitsRegex": None}, bad("InputDigitsRegex")),
    ({"InputDigitsRegex": "(\\d"}, bad("InputDigitsRegex")),
    # 03a §4 order: the leg first, then InBetween, Flush, regex.
    ({"CallId": "nope", "InputDigitsRegex": ""}, "CallId or ParticipantTag parameter for action is invalid."),
    ({"InBetweenDigitsDurationInMilliseconds": 0, "InputDigitsRegex": ""},
     bad("InBetweenDigitsDurationInMilliseconds")),
])
def test_receive_digits_errors(params, message):
    call = Call()
    action = receive(**params)
    call.respond([action])
    assert json.dumps(call.event()["ActionData"]) == json.dumps({
        "Type": "ReceiveDigits", "Parameters": action["Parameters"],
        "ErrorType": "InvalidActionParameter", "ErrorMessage": message})


def test_receive_digits_accepts_numbers_as_strings_and_empty_addressing():
    call = Call()
    call.respond([receive(InBetweenDigitsDurationInMilliseconds="1000", FlushDigitsDurationInMilliseconds="10000",
                          CallId="", ParticipantTag="")])
    assert call.event()["InvocationEventType"] == "ACTION_SUCCESSFUL"


# -- PlayAudioAndGetDigits ------------------------------------------------------------------

SPEC_EXAMPLE = {
    "CallId": A, "ParticipantTag": "LEG-A", "InputDigitsRegex": "^\\d{4}$",
    "AudioSource": audio("audio-file-1.wav"), "FailureAudioSource": audio("audio-file-failure.wav"),
    "MinNumberOfDigits": 3, "MaxNumberOfDigits": 5, "TerminatorDigits": ["#"],
    "InBetweenDigitsDurationInMilliseconds": 5000, "Repeat": 3, "RepeatDurationInMilliseconds": 10000}


def test_play_and_get_digits_success_byte_exact():
    call = Call()
    call.respond([{"Type": "PlayAudioAndGetDigits", "Parameters": SPEC_EXAMPLE}])
    reqs = call.prepared()
    assert [(r.bucket, r.key) for r in reqs] == [(BUCKET, "audio-file-1.wav"), (BUCKET, "audio-file-failure.wav")]
    call.tx.handle(I.AudioReady(reqs[0].request_id, "/cache/main.wav", 2.0))
    assert not [x for x in call.take() if isinstance(x, c.Answer)]    # both prompts first
    call.tx.handle(I.AudioReady(reqs[1].request_id, "/cache/failure.wav", 1.0))
    assert [x for x in call.take() if isinstance(x, c.Answer)] == [c.Answer(A)]
    call.media()
    assert call.current_prompt() == "/cache/main.wav"
    assert call.waits() == {}                        # the wait starts when the prompt ends
    call.finish_play()
    assert list(call.waits().values()) == [10.0]     # RepeatDurationInMilliseconds
    call.keys("1")
    assert list(call.waits().values()) == [5.0]      # InBetweenDigitsDurationInMilliseconds
    call.keys("234")
    call.no_event()
    call.keys("#")
    assert call.waits() == {}
    assert json.dumps(call.event()) == json.dumps({
        "SchemaVersion": "1.0", "Sequence": 2, "InvocationEventType": "ACTION_SUCCESSFUL",
        "ActionData": {"Type": "PlayAudioAndGetDigits", "Parameters": SPEC_EXAMPLE, "ReceivedDigits": "1234"},
        "CallDetails": DETAILS})


def test_digit_during_prompt_stops_it_and_counts():
    call = started(paagd(MinNumberOfDigits=2))
    (pid,) = call.playing
    cmds = call.keys("7")
    assert c.StopPlay(A, pid) in cmds and not call.playing
    assert list(call.waits().values()) == [3.0]      # in-between (defaults to RepeatDuration)
    call.keys("8#")
    assert call.event()["ActionData"]["ReceivedDigits"] == "78"


def test_all_attempts_fail_failure_audio_after_each_then_invalid_digits_received():
    action = paagd(Repeat="2", MinNumberOfDigits="1")
    call = started(action)
    call.finish_play()
    call.fire()                                        # no digit in time
    assert call.current_prompt() == "/cache/failure.wav"
    call.keys("55#")                                   # during the failure prompt: discarded
    assert call.waits() == {}
    call.finish_play()
    assert call.current_prompt() == "/cache/main.wav"  # attempt 2
    call.finish_play()
    call.fire()
    call.no_event()
    assert call.current_prompt() == "/cache/failure.wav"   # after the last attempt too (03a §6 A11)
    call.finish_play()
    assert call.played == ["/cache/main.wav", "/cache/failure.wav"] * 2
    assert json.dumps(call.event()) == json.dumps({
        "SchemaVersion": "1.0", "Sequence": 2, "InvocationEventType": "ACTION_FAILED",
        "ActionData": {"Type": "PlayAudioAndGetDigits", "Parameters": action["Parameters"],
                       "ErrorType": "InvalidDigitsReceived", "ErrorMessage": "Valid digits were not received."},
        "CallDetails": DETAILS})


def test_second_attempt_can_succeed_and_earlier_digits_do_not_carry_over():
    call = started(paagd(Repeat=3, MinNumberOfDigits=3))
    call.finish_play()
    call.keys("12#")                                   # too few
    assert call.current_prompt() == "/cache/failure.wav"
    call.finish_play()
    call.finish_play()
    call.keys("345#")
    assert call.event()["ActionData"]["ReceivedDigits"] == "345"


def test_inter_digit_timeout_with_enough_digits_succeeds_in_the_engine():
    call = started(paagd(MinNumberOfDigits=2, InBetweenDigitsDurationInMilliseconds=800))
    call.finish_play()
    call.keys("42")
    assert list(call.waits().values()) == [0.8]
    call.fire()
    assert call.event()["ActionData"]["ReceivedDigits"] == "42"


def test_max_digits_reached_succeeds_without_terminator():
    call = started(paagd(MinNumberOfDigits=4, MaxNumberOfDigits=4))     # Max = Min is valid (reading 5)
    call.finish_play()
    call.keys("9876")
    assert call.event()["ActionData"]["ReceivedDigits"] == "9876"


def test_regex_mismatch_fails_the_attempt():
    call = started(paagd(InputDigitsRegex="^1"))
    call.finish_play()
    call.keys("21#")
    assert call.current_prompt() == "/cache/failure.wav"
    call.finish_play()
    assert call.event()["ActionData"]["ErrorType"] == "InvalidDigitsReceived"


def test_min_zero_terminator_alone_gives_empty_digits_and_silence_fails():
    call = started(paagd())
    call.finish_play()
    call.keys("#")
    assert call.event()["ActionData"]["ReceivedDigits"] == ""
    call = started(paagd())
    call.finish_play()
    call.fire()
    assert call.current_prompt() == "/cache/failure.wav"


def test_a_to_d_are_not_collected():
    call = started(paagd(MinNumberOfDigits=1))
    call.finish_play()
    call.keys("A1B2CD#")
    assert call.event()["ActionData"]["ReceivedDigits"] == "12"


def test_empty_terminator_list_means_no_terminator():
    call = started(paagd(TerminatorDigits=[], MaxNumberOfDigits=3))
    call.finish_play()
    call.keys("#*1")
    assert call.event()["ActionData"]["ReceivedDigits"] == "#*1"


def test_reports_at_once_mid_list_and_empty_reply_continues():
    call = Call()
    call.respond([paagd(), {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 200}}])
    call.ready_all(call.prepared())
    call.media()
    call.finish_play()
    call.keys("5#")
    assert call.event()["InvocationEventType"] == "ACTION_SUCCESSFUL"     # reading 6
    call.respond([])
    call.fire()
    assert call.event()["ActionData"]["Type"] == "Pause"


def test_get_digits_takes_the_digits_from_an_armed_listener():
    call = Call()
    call.respond([receive(InputDigitsRegex="\\d"), paagd(MinNumberOfDigits=1)])
    call.ready_all(call.prepared())
    call.media()
    call.finish_play()
    call.keys("3")
    assert [v for k, v in call.waits().items() if k.startswith("digits:")] == []
    call.keys("#")
    assert call.event()["ActionData"] == {"Type": "PlayAudioAndGetDigits",
                                          "Parameters": paagd(MinNumberOfDigits=1)["Parameters"],
                                          "ReceivedDigits": "3"}


def test_hangup_during_collection_gives_only_hangup():
    call = started(paagd())
    call.finish_play()
    call.tx.handle(I.LegDisconnected(A, by_remote=True))
    cmds = call.take()
    assert call.event()["InvocationEventType"] == "HANGUP"
    assert call.waits() == {}
    assert not [x for x in cmds if isinstance(x, c.Play)]


def test_hangup_during_prompt_stops_it():
    call = started(paagd())
    (pid,) = call.playing
    call.tx.handle(I.LegDisconnected(A, by_remote=True))
    assert c.StopPlay(A, pid) in call.take()
    assert call.event()["InvocationEventType"] == "HANGUP"


def test_prompt_that_cannot_be_read_fails_with_invalid_audio_source():
    call = Call()
    action = paagd()
    call.respond([action])
    reqs = call.prepared()
    call.tx.handle(I.AudioReady(reqs[0].request_id, "/cache/main.wav", 1.0))
    call.take()
    call.tx.handle(I.AudioFailed(reqs[1].request_id, "InvalidAudioSource", "Cannot access S3 bucket or audio file."))
    call.take()
    assert call.event()["ActionData"] == {"Type": "PlayAudioAndGetDigits", "Parameters": action["Parameters"],
                                          "ErrorType": "InvalidAudioSource",
                                          "ErrorMessage": "Cannot access S3 bucket or audio file."}


def test_audio_source_without_type_means_s3():
    call = Call()
    call.respond([paagd(AudioSource={"BucketName": BUCKET, "Key": "a.wav"})])
    assert [r.key for r in call.prepared()] == ["a.wav", "failure.wav"]


BAD_LEG = "CallId or ParticipantTag parameter for action is invalid."
BAD_AUDIO = "Audio Source parameter value is invalid."


@pytest.mark.parametrize("params,error_type,message", [
    ({"ParticipantTag": "LEG-B"}, "InvalidActionParameter", BAD_LEG),
    ({"CallId": "nope", "AudioSource": ...}, "InvalidActionParameter", BAD_LEG),
    ({"AudioSource": ...}, "InvalidAudioSource", BAD_AUDIO),
    ({"AudioSource": {"Type": "HTTP", "BucketName": BUCKET, "Key": "a.wav"}}, "InvalidAudioSource", BAD_AUDIO),
    ({"AudioSource": {"Type": "S3", "BucketName": "", "Key": "a.wav"}}, "InvalidAudioSource", BAD_AUDIO),
    ({"FailureAudioSource": ...}, "InvalidAudioSource", BAD_AUDIO),
    ({"FailureAudioSource": {"Type": "S3", "BucketName": BUCKET}}, "InvalidAudioSource", BAD_AUDIO),
    ({"FailureAudioSource": ..., "MaxNumberOfDigits": 0}, "InvalidAudioSource", BAD_AUDIO),
    ({"MinNumberOfDigits": -1}, IAP, bad("MinNumberOfDigits")),
    ({"MinNumberOfDigits": "x"}, IAP, bad("MinNumberOfDigits")),
    ({"MaxNumberOfDigits": 0}, IAP, bad("MaxNumberOfDigits")),
    ({"MaxNumberOfDigits": 129}, IAP, bad("MaxNumberOfDigits")),
    ({"MinNumberOfDigits": 5, "MaxNumberOfDigits": 4}, IAP, bad("MaxNumberOfDigits")),
    ({"MinNumberOfDigits": 200}, IAP, bad("MaxNumberOfDigits")),
    ({"RepeatDurationInMilliseconds": ...}, IAP, bad("RepeatDurationInMilliseconds")),
    ({"RepeatDurationInMilliseconds": 0}, IAP, bad("RepeatDurationInMilliseconds")),
    ({"RepeatDurationInMilliseconds": "-5"}, IAP, bad("RepeatDurationInMilliseconds")),
    ({"RepeatDurationInMilliseconds": 1.5}, IAP, bad("RepeatDurationInMilliseconds")),
    ({"InBetweenDigitsDurationInMilliseconds": 0}, "InvalidActionParameter",
     bad("InBetweenDigitsDurationInMilliseconds")),
    ({"Repeat": 0}, IAP, bad("Repeat")),
    ({"Repeat": True}, IAP, bad("Repeat")),
    ({"TerminatorDigits": ["A"]}, IAP, bad("TerminatorDigits")),
    ({"TerminatorDigits": ["##"]}, IAP, bad("TerminatorDigits")),
    ({"TerminatorDigits": {"k": "#"}}, IAP, bad("TerminatorDigits")),
    ({"InputDigitsRegex": "[0-9"}, IAP, bad("InputDigitsRegex")),
    ({"InputDigitsRegex": 7}, IAP, bad("InputDigitsRegex")),
    # 03a §4 order: MaxNumberOfDigits before RepeatDuration before the regex.
    ({"MaxNumberOfDigits": 0, "RepeatDurationInMilliseconds": 0, "InputDigitsRegex": "("}, "InvalidActionParameter",
     bad("MaxNumberOfDigits")),
    ({"RepeatDurationInMilliseconds": 0, "InputDigitsRegex": "("}, "InvalidActionParameter",
     bad("RepeatDurationInMilliseconds")),
])
def test_play_and_get_digits_errors(params, error_type, message):
    call = Call()
    action = paagd(**params)
    call.respond([action])
    assert not call.prepared()
    assert json.dumps(call.event()["ActionData"]) == json.dumps({
        "Type": "PlayAudioAndGetDigits", "Parameters": action["Parameters"],
        "ErrorType": error_type, "ErrorMessage": message})


def test_lenient_values_are_accepted_and_echoed_unchanged():
    action = paagd(MinNumberOfDigits="1", MaxNumberOfDigits="2", Repeat="1", RepeatDurationInMilliseconds="3000",
                   InBetweenDigitsDurationInMilliseconds="", InputDigitsRegex="", TerminatorDigits="*",
                   CallId="", ParticipantTag="")
    call = started(action)
    call.finish_play()
    assert list(call.waits().values()) == [3.0]
    call.keys("1*")
    assert call.event()["ActionData"] == {"Type": "PlayAudioAndGetDigits", "Parameters": action["Parameters"],
                                          "ReceivedDigits": "1"}


# -- SpeakAndGetDigits ----------------------------------------------------------------------

def test_speak_and_get_digits_synthesizes_both_prompts_and_succeeds():
    params = {"CallId": A, "InputDigitsRegex": "^\\d{2}$",
              "SpeechParameters": {"Text": "Enter two digits", "Engine": "neural", "LanguageCode": "en-US",
                                   "TextType": "text", "VoiceId": "Joanna"},
              "FailureSpeechParameters": {"Text": "Sorry", "VoiceId": "Matthew"},
              "MinNumberOfDigits": 2, "MaxNumberOfDigits": 5, "TerminatorDigits": ["#"],
              "InBetweenDigitsDurationInMilliseconds": 5000, "Repeat": 3, "RepeatDurationInMilliseconds": 10000}
    call = Call()
    call.respond([{"Type": "SpeakAndGetDigits", "Parameters": params}])
    main, failure = call.prepared()
    assert isinstance(main, c.PrepareSpeech)
    assert main.request == SpeechRequest("Enter two digits", "text", "neural", "en-US", "Joanna")
    # Omitted failure fields take the main prompt's values (03b §3.4).
    assert failure.request == SpeechRequest("Sorry", "text", "neural", "en-US", "Matthew")
    call.ready_all([main, failure])
    call.media()
    call.finish_play()
    assert list(call.waits().values()) == [10.0]
    call.keys("12#")
    assert json.dumps(call.event()) == json.dumps({
        "SchemaVersion": "1.0", "Sequence": 2, "InvocationEventType": "ACTION_SUCCESSFUL",
        "ActionData": {"Type": "SpeakAndGetDigits", "Parameters": params, "ReceivedDigits": "12"},
        "CallDetails": DETAILS})


def test_speak_and_get_digits_uses_the_same_engine_and_fails_with_invalid_digits_received():
    action = sagd(Repeat=2, MinNumberOfDigits=1)
    call = started(action)
    call.keys("5")                              # barge-in on the spoken prompt
    assert not call.playing
    call.fire()                                 # in-between = RepeatDuration; "5" is enough
    assert call.event()["ActionData"]["ReceivedDigits"] == "5"
    call = started(action)
    for _ in range(2):
        call.finish_play()
        call.fire()
        assert call.current_prompt() == "/cache/failure.wav"
        call.finish_play()
    assert call.event()["ActionData"] == {"Type": "SpeakAndGetDigits", "Parameters": action["Parameters"],
                                          "ErrorType": "InvalidDigitsReceived",
                                          "ErrorMessage": "Valid digits were not received."}


def test_speak_and_get_digits_does_not_report_mid_list():
    call = Call()
    call.respond([sagd(), {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 200}}])
    call.ready_all(call.prepared())
    call.media()
    call.finish_play()
    call.keys("1#")
    call.no_event()
    call.fire()
    assert call.event()["ActionData"]["Type"] == "Pause"


def test_speak_and_get_digits_access_denied_uses_its_own_message():
    call = Call()
    call.respond([sagd()])
    main, failure = call.prepared()
    speak_message = "The AWSServiceRoleForAmazonChimeVoiceConnector service-linked role is not configured correctly."
    call.tx.handle(I.AudioFailed(main.request_id, "AccessDenied", speak_message))
    call.take()
    assert call.event()["ActionData"]["ErrorMessage"] == \
        "The AWSServiceRoleForAmazonChimeVoiceConnector role is not configured correctly."


TEXT_REQUIRED = ("MissingRequiredActionParameter", "Text is a required parameter.")
TEXT_TOO_LONG = ("MissingRequiredActionParameter", "Text is limited to 1,000 characters")


@pytest.mark.parametrize("params,error", [
    ({"SpeechParameters": ...}, TEXT_REQUIRED),
    ({"SpeechParameters": {"Text": ""}}, TEXT_REQUIRED),
    ({"FailureSpeechParameters": ...}, TEXT_REQUIRED),
    ({"FailureSpeechParameters": {"VoiceId": "Joanna"}}, TEXT_REQUIRED),
    ({"RepeatDurationInMilliseconds": ...}, ("MissingRequiredActionParameter", "Missing required action parameter.")),
    ({"SpeechParameters": {"Text": "x" * 1001}}, TEXT_TOO_LONG),
    ({"FailureSpeechParameters": {"Text": "x" * 1001}}, TEXT_TOO_LONG),
    ({"SpeechParameters": {"Text": "Hi", "VoiceId": "Nobody"}}, (IAP, "VoiceId parameter value is invalid.")),
    ({"FailureSpeechParameters": {"Text": "Hi", "Engine": "turbo"}},
     (IAP, "Engine parameter value is invalid.")),
    # an inherited LanguageCode the failure voice does not speak (03b §3.4)
    ({"SpeechParameters": {"Text": "Hi", "LanguageCode": "en-US"},
      "FailureSpeechParameters": {"Text": "Hallo", "VoiceId": "Hans"}},
     (IAP, "LanguageCode parameter value is invalid.")),
    ({"RepeatDurationInMilliseconds": 0}, (IAP, bad("RepeatDurationInMilliseconds"))),
    ({"MaxNumberOfDigits": 129}, (IAP, bad("MaxNumberOfDigits"))),
    ({"TerminatorDigits": ["D"]}, (IAP, bad("TerminatorDigits"))),
    ({"InputDigitsRegex": "*"}, (IAP, bad("InputDigitsRegex"))),
    ({"CallId": "nope"}, ("InvalidActionParameter", BAD_LEG)),
    # 03b §5 order: required keys and Text before values before the leg.
    ({"CallId": "nope", "MaxNumberOfDigits": 0}, (IAP, bad("MaxNumberOfDigits"))),
    ({"CallId": "nope", "SpeechParameters": {"Text": ""}}, TEXT_REQUIRED),
    ({"SpeechParameters": {"Text": "x" * 1001}, "FailureSpeechParameters": ...}, TEXT_REQUIRED),
])
def test_speak_and_get_digits_errors(params, error):
    call = Call()
    action = sagd(**params)
    call.respond([action])
    assert not call.prepared()
    error_type, message = error
    assert json.dumps(call.event()["ActionData"]) == json.dumps({
        "Type": "SpeakAndGetDigits", "Parameters": action["Parameters"],
        "ErrorType": error_type, "ErrorMessage": message})


def test_speak_and_get_digits_without_call_id_targets_the_invoked_leg():
    # README reading 4
    call = started(sagd())
    assert call.playing
