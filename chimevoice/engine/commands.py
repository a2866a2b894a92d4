"""Commands the engine asks its driver to carry out.

Plain frozen dataclasses: the driver (``chimevoice.calls``) pattern-matches on
them and turns them into SIP/media operations, handler invocations and timers.
Results come back into the engine as method calls on the Transaction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Invoke:
    """Invoke the handler of application *app_id* with *event*."""
    event: dict[str, Any]
    app_id: str


@dataclass(frozen=True, slots=True)
class Ring:
    """Send 180 Ringing on an unanswered inbound leg."""
    call_id: str


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer an inbound leg with 200 OK (media follows)."""
    call_id: str


@dataclass(frozen=True, slots=True)
class Reject:
    """Final non-2xx response to an unanswered inbound leg."""
    call_id: str
    status_code: int
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """BYE an answered leg (optionally with a Reason: SIP;cause=N header)."""
    call_id: str
    cause: int = 0


@dataclass(frozen=True, slots=True)
class EarlyMedia:
    """``183 Session Progress`` with SDP on an unanswered inbound leg: its audio comes up
    (``MediaReady``) before it is answered (ringback played by CallAndBridge)."""
    call_id: str


@dataclass(frozen=True, slots=True)
class Dial:
    """Place an outbound call as leg *call_id* (CallAndBridge's LEG-B, or an API call).

    The driver resolves the endpoint: ``PSTN`` (*uri* an E.164 number: the PSTN gateway's
    origination routes, or a number of this server), ``AWS`` (*arn* names a Voice
    Connector, *uri* is the Request-URI user part) or ``SMA`` (*arn* names a SIP media
    application of this server). Results: ``LegRinging``, ``MediaReady``, ``LegAnswered``,
    or ``LegDisconnected`` with the final status."""
    call_id: str
    endpoint_type: str
    uri: str
    caller_id: str
    arn: str | None = None
    sip_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class LinkAudio:
    """What leg *source* says is heard by leg *sink* (one direction; a bridge is two).
    Applied once both legs have media; undone when either leg ends."""
    source: str
    sink: str


@dataclass(frozen=True, slots=True)
class UnlinkAudio:
    source: str
    sink: str


@dataclass(frozen=True, slots=True)
class PrepareAudio:
    """Resolve (bucket, key) to a playable file; answer with audio_ready/audio_failed."""
    request_id: str
    bucket: str
    key: str


@dataclass(frozen=True, slots=True)
class PrepareSpeech:
    """Synthesize *request* (a chimevoice.speech.SpeechRequest); answer with audio_ready/audio_failed."""
    request_id: str
    request: Any


@dataclass(frozen=True, slots=True)
class Play:
    """Play a prepared file *repeat* times to a leg; answer with playback_finished."""
    call_id: str
    play_id: str
    path: str
    repeat: int = 1
    duration_s: float = 0.0       # length of one play


@dataclass(frozen=True, slots=True)
class StopPlay:
    call_id: str
    play_id: str


@dataclass(frozen=True, slots=True)
class BotRequest:
    """One step of a bot conversation (StartBotConversation); answer with
    Transaction.bot_turn(request_id, turn) or bot_failed(request_id, error_type, message).

    *op* is ``start`` (*value*: the validated chimevoice.bots.BotParameters; the driver
    creates the session, keyed by *conversation_id*, with *call_id* as the bot session
    id), ``dtmf`` or ``text`` (*value*: the caller's input for that session)."""
    request_id: str
    conversation_id: str
    call_id: str
    op: str
    value: Any = None


@dataclass(frozen=True, slots=True)
class BotRelease:
    """The conversation is over (finished, failed or abandoned): drop its bot session."""
    conversation_id: str


@dataclass(frozen=True, slots=True)
class SendDigits:
    """Send DTMF to a leg (RFC 4733 when negotiated, else in-band); answer with digits_sent."""
    call_id: str
    send_id: str
    digits: str
    tone_ms: int
    gap_ms: int


@dataclass(frozen=True, slots=True)
class StopDigits:
    call_id: str
    send_id: str


@dataclass(frozen=True, slots=True)
class StartRecording:
    """Record a leg's audio into bucket/key (a WAV written as it grows); answer with
    recording_stopped when it ends (stop, max duration, silence, leg gone or an error).

    *track*: ``INCOMING`` (from the caller), ``OUTGOING`` (sent to the caller) or ``BOTH``
    (stereo, INCOMING left). *max_s* / *silence_s* None: no such limit."""
    call_id: str
    record_id: str
    bucket: str
    key: str
    track: str = "INCOMING"
    max_s: float | None = None
    silence_s: float | None = None
    silence_threshold: int = 200
    metadata: tuple[tuple[str, str], ...] = ()
    call_recording: bool = False    # keys sent out of band are rendered as tones into it (02a §2.3)


@dataclass(frozen=True, slots=True)
class StopRecording:
    call_id: str
    record_id: str
    reason: str = "stopped"


@dataclass(frozen=True, slots=True)
class PauseRecording:
    """Pause (silence after a marker tone) or resume (marker tone, then live audio)."""
    call_id: str
    record_id: str
    paused: bool


@dataclass(frozen=True, slots=True)
class SetVoiceFocus:
    """Noise suppression on the leg's incoming audio on or off."""
    call_id: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Call Transaction.timer_fired(name) after *seconds* (replaces a timer of that name)."""
    name: str
    seconds: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    name: str


@dataclass(frozen=True, slots=True)
class Log:
    """A log line the driver emits with the transaction's context bound."""
    level: str
    event: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ActionEnded:
    """An action ended (for the ``actions_total{type,result}`` metric): *result* is
    ``successful``, ``failed`` (with *error_type*), ``interrupted`` (CALL_UPDATE_REQUESTED) or
    ``abandoned`` (its leg hung up, or the call was ended, before it finished)."""
    type_name: str
    result: str
    error_type: str = ""


@dataclass(frozen=True, slots=True)
class Finished:
    """The transaction is over: every leg is disconnected and no invocation is pending."""
    reason: str


Command = (Invoke | Ring | Answer | Reject | Disconnect | EarlyMedia | Dial | LinkAudio | UnlinkAudio
           | PrepareAudio | PrepareSpeech | Play | StopPlay
           | StartTimer | CancelTimer | Log | ActionEnded | Finished | BotRequest | BotRelease
           | SendDigits | StopDigits | StartRecording | StopRecording | PauseRecording | SetVoiceFocus)
