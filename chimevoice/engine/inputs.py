"""Inputs of the call engine: everything that can happen to a transaction.

One frozen dataclass per input, as aioquic's ``quic/events.py`` does for the other
direction. The driver builds them from SIP events, handler answers, media results
and timers and hands each one to :meth:`Transaction.handle
<chimevoice.engine.transaction.Transaction.handle>`, the engine's one entry point;
the transaction passes the ones an action waits for to :meth:`Action.on_input
<chimevoice.engine.action.Action.on_input>`. Results go back out as
:mod:`~chimevoice.engine.commands`.

Time enters only as :class:`TimerFired` (the engine asks for timers with
``StartTimer``): the engine never reads a clock.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .commands import Command


@dataclass(frozen=True, slots=True)
class InboundCallRouted:
    """An inbound call was admitted and routed: the transaction rings LEG-A and asks
    the first target application's handler (``NEW_INBOUND_CALL``). The leg itself is
    given to the Transaction's constructor."""


@dataclass(frozen=True, slots=True)
class OutboundCallRequested:
    """``CreateSipMediaApplicationCall``: the transaction's LEG-A is an outbound leg (given to
    the constructor, ``Direction`` ``Outbound``); dial it and tell the handler
    (``NEW_OUTBOUND_CALL``, then ``RINGING``, then ``CALL_ANSWERED`` or ``HANGUP``)."""

    arguments: Mapping[str, str]
    """The request's ``ArgumentsMap``, shown to the handler (README reading 11)."""

    sip_headers: tuple[tuple[str, str], ...] = ()
    """The request's ``SipHeaders``, sent on the INVITE."""


@dataclass(frozen=True, slots=True)
class UpdateRequested:
    """``UpdateSipMediaApplicationCall``: ``CALL_UPDATE_REQUESTED`` to the handler; the actions
    it returns interrupt PlayAudio, RecordAudio or Pause and replace the rest of the list."""

    arguments: Mapping[str, str]
    """The request's ``Arguments``."""


@dataclass(frozen=True, slots=True)
class HandlerResponded:
    """The handler answered the invocation in flight."""

    raw: Any
    """The decoded JSON answer, as the handler returned it (validated by the engine:
    garbage becomes ``INVALID_LAMBDA_RESPONSE``)."""


@dataclass(frozen=True, slots=True)
class HandlerFailed:
    """The invocation in flight could not be made or did not answer in time."""

    kind: str
    """What went wrong: ``timeout``, ``unreachable``, ``error``, ``invalid_output``
    (the kinds of ``lambda_bridge.InvocationError``)."""

    message: str
    """A human-readable description, logged with the call."""


@dataclass(frozen=True, slots=True)
class MediaReady:
    """A leg's audio is up (answered and SDP negotiated)."""

    call_id: str
    """The leg (its Chime ``CallId``)."""


@dataclass(frozen=True, slots=True)
class LegDisconnected:
    """A leg is gone (BYE, CANCEL, a final error response, or our own hang-up)."""

    call_id: str
    """The leg that ended."""

    by_remote: bool
    """True when the far end hung up, False when we did."""

    status_code: int = 0
    """The last SIP status of the dialog (for an outbound leg that was never answered:
    its final response, e.g. 486, or 408 when it timed out)."""


@dataclass(frozen=True, slots=True)
class LegRinging:
    """An outbound leg's far end is alerting (``180 Ringing`` or ``183 Session Progress``)."""

    call_id: str
    """The leg."""


@dataclass(frozen=True, slots=True)
class LegAnswered:
    """An outbound leg was answered (``200 OK`` to our INVITE)."""

    call_id: str
    """The leg."""

    start_ms: int
    """When its INVITE was sent (Unix ms): the leg's ``StartTimeInMilliseconds``."""


@dataclass(frozen=True, slots=True)
class AudioReady:
    """A ``PrepareAudio`` or ``PrepareSpeech`` request produced a playable file."""

    request_id: str
    """The request's id (from the command)."""

    path: str
    """The prepared file (16-bit mono WAV at the bridge rate)."""

    duration_s: float
    """Its length in seconds."""


@dataclass(frozen=True, slots=True)
class AudioFailed:
    """A ``PrepareAudio`` or ``PrepareSpeech`` request failed."""

    request_id: str
    """The request's id (from the command)."""

    error_type: str
    """The Chime ``ErrorType`` the action reports (e.g. ``InvalidAudioSource``)."""

    message: str
    """The Chime ``ErrorMessage``."""


@dataclass(frozen=True, slots=True)
class BotTurn:
    """One step of a bot conversation (a ``BotRequest``) answered."""

    request_id: str
    """The request's id (from the command)."""

    turn: Any
    """The bot's answer: a ``chimevoice.bots.BotTurn``."""


@dataclass(frozen=True, slots=True)
class BotFailed:
    """One step of a bot conversation (a ``BotRequest``) failed."""

    request_id: str
    """The request's id (from the command)."""

    error_type: str
    """The Chime ``ErrorType`` the action reports."""

    message: str
    """The Chime ``ErrorMessage``."""


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    """A ``Play`` ended after its last repeat (not sent for ``StopPlay``)."""

    call_id: str
    """The leg it played to."""

    play_id: str
    """The play's id (from the command)."""


@dataclass(frozen=True, slots=True)
class DigitsSent:
    """A ``SendDigits`` command sent its last signal."""

    call_id: str
    """The leg the digits went to."""

    send_id: str
    """The command's id."""


@dataclass(frozen=True, slots=True)
class Dtmf:
    """A key the far end of a leg pressed (RFC 4733, SIP INFO or in-band)."""

    call_id: str
    """The leg."""

    digit: str
    """The key: ``0``-``9``, ``*``, ``#`` or ``A``-``D``."""


@dataclass(frozen=True, slots=True)
class RecordingStarted:
    """A ``StartRecording`` command's file is open and receiving audio."""

    call_id: str
    """The recorded leg."""

    record_id: str
    """The recording's id (from the command)."""


@dataclass(frozen=True, slots=True)
class RecordingStopped:
    """A recording ended and its file is closed."""

    call_id: str
    """The recorded leg."""

    record_id: str
    """The recording's id (from the command)."""

    reason: str
    """Why: ``stopped``, ``duration``, ``silence``, ``terminator``, ``hangup``,
    ``abandoned`` or ``error``."""

    error: str | None = None
    """What failed, when *reason* is ``error`` (the destination could not be written)."""

    duration_s: float = 0.0
    """How much audio the file holds."""


@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer the engine started with ``StartTimer`` expired."""

    name: str
    """The timer's name (from the command)."""


@dataclass(frozen=True, slots=True)
class CommandFailed:
    """The driver could not carry out a command."""

    command: Command
    """The command itself, as the engine emitted it."""

    message: str
    """What went wrong (logged with the call)."""


Input = (InboundCallRouted | OutboundCallRequested | UpdateRequested | HandlerResponded | HandlerFailed
         | MediaReady | LegDisconnected
         | LegRinging | LegAnswered | AudioReady | AudioFailed | BotTurn | BotFailed | PlaybackFinished
         | DigitsSent | Dtmf
         | RecordingStarted | RecordingStopped | TimerFired | CommandFailed)
