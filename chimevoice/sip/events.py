"""Events the SIP thread posts to the asyncio loop (plain values, no pjsua2 objects)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .commands import SipCommand


@dataclass(frozen=True, slots=True)
class IncomingCall:
    leg_id: str                 # our handle for the leg (used in every command)
    source_ip: str
    source_port: int
    transport: str              # "udp" | "tcp" | "tls"
    request_uri: str
    from_uri: str
    to_uri: str
    sip_call_id: str
    headers: dict[str, list[str]] = field(default_factory=dict)   # lower-case name -> values
    sip_headers: dict[str, str] = field(default_factory=dict)     # what handlers see (04 §2.2)
    srtp_offered: bool = False  # the SDP offer is RTP/SAVP with a=crypto (SDES-SRTP)
    # Content-Length promised more body than the datagram held (RFC 4475 §3.1.2.2): 400
    short_body: bool = False
    # the endpoint's admission gate passed it: its source, per-source and daemon-wide checks
    # are done (commands.ConfigureGate); False when the gate is off or the INVITE bypassed it
    gated: bool = False


@dataclass(frozen=True, slots=True)
class MediaReady:
    leg_id: str
    codec: str = ""
    telephone_event: bool = False   # the far end negotiated RFC 4733 (else DTMF is in-band)


@dataclass(frozen=True, slots=True)
class RtpDirection:
    packets: int
    lost: int
    jitter_ms: float            # mean interarrival jitter (RFC 3550) over the call

    def __add__(self, other: RtpDirection) -> RtpDirection:
        """Two streams of one leg in turn (a re-INVITE replaced the first): packets and losses
        add up, the jitter is the packet-weighted mean."""
        n = self.packets + other.packets
        jitter = (self.jitter_ms * self.packets + other.jitter_ms * other.packets) / n if n else 0.0
        return RtpDirection(n, self.lost + other.lost, jitter)


@dataclass(frozen=True, slots=True)
class RtpStats:
    """A leg's RTP stream at its end (pjmedia's RTCP statistics): ``rx`` is what the far end
    sent us, measured here; ``tx`` what we sent, with the loss and jitter the far end's RTCP
    receiver reports gave (zero when it sent none)."""

    rx: RtpDirection
    tx: RtpDirection

    def __add__(self, other: RtpStats) -> RtpStats:
        return RtpStats(self.rx + other.rx, self.tx + other.tx)


@dataclass(frozen=True, slots=True)
class RtpProgress:
    """A live leg's RTP totals so far, sampled every ``rtp_stats_interval_s`` while its stream
    is up (the final totals come with :class:`CallDisconnected`)."""

    leg_id: str
    rtp: RtpStats
    receiving: bool = True
    """Whether the far end is to send us RTP: the stream's negotiated direction includes
    receiving (False while it holds the call with ``a=inactive`` or ``a=recvonly``). Read only
    when no packet came since the last sample; True otherwise."""


@dataclass(frozen=True, slots=True)
class CallDisconnected:
    leg_id: str
    status_code: int            # last SIP status seen on the dialog (e.g. 200 after BYE, 487 after CANCEL)
    reason: str
    by_remote: bool             # the far end hung up (BYE/CANCEL), not us
    connect_duration_s: float = 0.0
    rtp: RtpStats | None = None  # None: the leg never had media


@dataclass(frozen=True, slots=True)
class OutgoingProgress:
    leg_id: str
    status_code: int            # 180 or 183


@dataclass(frozen=True, slots=True)
class OutgoingAnswered:
    leg_id: str
    status_code: int = 200


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    leg_id: str
    digit: str
    method: str                 # "rfc4733" | "sip-info"


@dataclass(frozen=True, slots=True)
class DigitsSent:
    leg_id: str
    send_id: str
    method: str                 # "rfc4733" | "inband"


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    leg_id: str
    play_id: str


@dataclass(frozen=True, slots=True)
class CommandFailed:
    leg_id: str
    command: SipCommand         # the command itself, as it was sent
    message: str


@dataclass(frozen=True, slots=True)
class GateRefusals:
    """INVITEs the endpoint's admission gate refused (503 + Retry-After, no call made) since
    the last report; posted at most once per poll round."""

    leg_id: str
    """Always "": no leg was made (every SIP event has the field)."""

    counts: tuple[tuple[str, int], ...]
    """(cause, refused) for each cause with refusals: ``draining``, ``auth_lockout``,
    ``source_rate``, ``rate`` (sip_rules/admission.py)."""

    source: str
    """The last refused INVITE's source address (for the log line)."""

    sip_call_id: str
    """Its Call-ID (escaped like every wire string)."""

    retry_after_s: int
    """Its Retry-After."""


SipEvent = (IncomingCall | MediaReady | RtpProgress | CallDisconnected | DtmfReceived | OutgoingProgress
            | OutgoingAnswered | PlaybackFinished | DigitsSent | CommandFailed | GateRefusals)
