"""Commands the asyncio side sends to the pjsua2 thread (plain values, no pjsua2 objects).

:meth:`SipEndpoint.send <chimevoice.sip.endpoint.SipEndpoint.send>` puts one on a
thread-safe queue; the pjsua2 thread runs each through one dispatch table. A command
that fails comes back as :class:`~chimevoice.sip.events.CommandFailed` carrying the
command itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Ring:
    """Send ``180 Ringing`` on an unanswered inbound leg."""

    leg_id: str
    """The leg (its Chime CallId)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """Answer an inbound leg with ``200 OK``; ``MediaReady`` follows."""

    leg_id: str
    """The leg."""


@dataclass(frozen=True, slots=True)
class Reject:
    """A final non-2xx response to an unanswered inbound leg."""

    leg_id: str
    """The leg."""

    status_code: int
    """The SIP status (4xx-6xx)."""

    headers: tuple[tuple[str, str], ...] = ()
    """Extra header fields of the response (e.g. ``Retry-After``, a digest challenge)."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """End a leg: ``BYE`` when answered, else a final response (*cause* or 480)."""

    leg_id: str
    """The leg."""

    cause: int = 0
    """A SIP status to report in ``Reason: SIP;cause=N`` (0: none)."""


@dataclass(frozen=True, slots=True)
class Play:
    """Play a 16-bit mono WAV at the bridge rate to a leg; ``PlaybackFinished`` follows."""

    leg_id: str
    """The leg that hears it."""

    play_id: str
    """The caller's id for this play (in ``PlaybackFinished`` and ``StopPlay``)."""

    path: str
    """The prepared file."""

    repeat: int = 1
    """How many times to play it."""

    duration_s: float = 0.0
    """The length of one play (the end is a deadline the pjsua2 thread keeps)."""


@dataclass(frozen=True, slots=True)
class StopPlay:
    """Stop a play early (no ``PlaybackFinished``)."""

    leg_id: str
    """The leg."""

    play_id: str
    """The play's id."""


@dataclass(frozen=True, slots=True)
class Tap:
    """Capture a leg's audio for the media worker; ``Tap(leg, False, False)`` stops it."""

    leg_id: str
    """The leg."""

    incoming: bool
    """Capture what the far end sends."""

    outgoing: bool
    """Capture what the leg hears from us."""


@dataclass(frozen=True, slots=True)
class SendDigits:
    """Send DTMF: RFC 4733 events when the leg negotiated telephone-event, else in-band
    tones; ``,`` pauses. ``DigitsSent`` follows."""

    leg_id: str
    """The leg."""

    send_id: str
    """The caller's id (in ``DigitsSent`` and ``StopDigits``)."""

    digits: str
    """The signals: ``0-9 * # A-D ,``."""

    tone_ms: int
    """Length of each tone."""

    gap_ms: int
    """Silence between two tones."""


@dataclass(frozen=True, slots=True)
class StopDigits:
    """Stop sending digits."""

    leg_id: str
    """The leg."""

    send_id: str
    """The sender's id."""


@dataclass(frozen=True, slots=True)
class EarlyMedia:
    """``183 Session Progress`` with SDP on an unanswered inbound leg; ``MediaReady`` follows."""

    leg_id: str
    """The leg."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """Digest credentials to answer a 401/407 challenge to an outbound INVITE."""

    username: str
    """The user name."""

    password: str = field(repr=False)
    """The password."""

    realm: str = "*"
    """The realm they are for (``*``: any)."""


@dataclass(frozen=True, slots=True)
class Dial:
    """Place an outbound call as leg *leg_id*. Events: ``OutgoingProgress`` (180/183),
    ``MediaReady`` (also for early media), ``OutgoingAnswered``, ``CallDisconnected``."""

    leg_id: str
    """Our handle for the new leg (its Chime CallId)."""

    uri: str
    """The Request-URI, e.g. ``sip:+15550100@sbc.example.com:5060;transport=tcp``."""

    from_uri: str
    """The From URI (the caller id as its user part)."""

    headers: tuple[tuple[str, str], ...] = ()
    """Extra header fields of the INVITE (the handler's SipHeaders)."""

    credentials: Credentials | None = None
    """Digest credentials for the far end's challenge."""

    srtp: bool = False
    """Offer SRTP only (RTP/SAVP with SDES keys, mandatory): the Voice Connector has
    ``encryption: true``, whose unencrypted outbound calls Chime blocks."""


@dataclass(frozen=True, slots=True)
class LinkAudio:
    """Leg *sink* hears leg *source* (one direction of the conference bridge); applied when
    both legs have media, undone when either ends."""

    source: str
    """The leg whose audio is sent."""

    sink: str
    """The leg that hears it."""


@dataclass(frozen=True, slots=True)
class UnlinkAudio:
    """Undo a ``LinkAudio``."""

    source: str
    """The leg whose audio was sent."""

    sink: str
    """The leg that heard it."""


@dataclass(frozen=True, slots=True)
class SetVoiceFocus:
    """VoiceFocus on a leg: every leg that hears it (LinkAudio) hears it noise-suppressed,
    on pjmedia's clock thread, one 20 ms frame later (a DenoiseSink in place of that leg)."""

    leg_id: str
    """The leg whose audio is suppressed for the others."""

    enabled: bool
    """On or off."""


@dataclass(frozen=True, slots=True)
class ConfigureGate:
    """The endpoint's admission gate (our build's ``gateConfigure``): a pjsip module that
    answers a new INVITE with a stateless 503 + Retry-After before pjsua makes a call of it,
    when new calls are not accepted, its source is locked out, or a token bucket is empty
    (the checks of sip_rules/admission.py, in its order). Refused INVITEs are reported in
    :class:`~chimevoice.sip.events.GateRefusals`; the ones it passes carry ``gated``."""

    accepting: bool
    """False while draining: every new INVITE is refused (cause ``draining``)."""

    draining_retry_after_s: int
    """The Retry-After of a refusal while draining, whole seconds."""

    max_calls_per_second: float | None
    """The daemon-wide bucket's rate (cause ``rate``); None: off."""

    burst: int
    """The daemon-wide bucket's size."""

    per_source_rate: float | None
    """One source address's bucket rate (cause ``source_rate``); None: off."""

    per_source_burst: int
    """One source's bucket size."""

    bypass_header: str
    """INVITEs carrying this header from :attr:`bypass_source` pass uncounted, for the
    manager to check (the signed hairpin header of a bridge to ourselves: only the manager
    can verify it)."""

    bypass_source: str
    """The one source address (no port, IPv6 without brackets) whose INVITEs may bypass the
    gate with :attr:`bypass_header`: where our own hairpin calls come from. From any other
    address the header is counted like any INVITE."""


@dataclass(frozen=True, slots=True)
class LockSource:
    """The gate refuses new INVITEs from *source* (cause ``auth_lockout``) for a while."""

    source: str
    """The source address, without port (as in ``IncomingCall.source_ip``)."""

    seconds: float
    """How long; 0 lifts a lockout."""


@dataclass(frozen=True, slots=True)
class Shutdown:
    """End the pjsua2 thread's loop (the endpoint then hangs up every call)."""


SipCommand = (Ring | Answer | Reject | Disconnect | Play | StopPlay | Tap | SendDigits | StopDigits | EarlyMedia
              | Dial | LinkAudio | UnlinkAudio | SetVoiceFocus | ConfigureGate | LockSource | Shutdown)
