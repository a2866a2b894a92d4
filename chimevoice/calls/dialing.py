"""Outbound legs: where a ``Dial`` goes, host by host (docs/trunks.md).

:class:`Dialer` turns an engine ``Dial`` into the list of SIP attempts for it and keeps
the health of every origination route:

* ``PSTN``: the PSTN gateway's Voice Connector (``pstn.voice_connector``), its origination
  routes in :func:`~sip_rules.origination.plan_attempts` order (priority, then weight; routes
  believed down last);
* ``AWS``: the named Voice Connector's routes, the endpoint ``Uri`` as Request-URI user;
* a number of this server, or a SIP media application of this server: a call to our own
  first listener (hairpin), marked so admission trusts it (``X-Chimevoice-Hairpin``).

After a failed attempt :func:`~sip_rules.origination.after_failure` decides: the next host
on timeout, 408, 5xx and transport errors; otherwise the final status goes to the engine.
An attempt that gets no provisional response within ``ATTEMPT_TIMEOUT_S`` is cancelled
and counts as a timeout, so a dead host is skipped without waiting for SIP's 32 s.
"""
from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sip_rules.origination import (
    CallAttemptAnswered,
    CallAttemptFailed,
    HealthInput,
    Origination,
    OriginationHealth,
    OriginationRoute,
    Outcome,
    after_failure,
    is_host_failure,
    plan_attempts,
)

from ..config import Config, VoiceConnector
from ..engine import commands as c
from ..sip import commands as sc

#: An attempt with no 1xx (other than 100) by then is abandoned for the next host.
ATTEMPT_TIMEOUT_S = 4.0
HAIRPIN_HEADER = "X-Chimevoice-Hairpin"


@dataclass(slots=True)
class Attempt:
    """One host to try."""

    uri: str
    """The Request-URI."""

    route: OriginationRoute | None
    """The origination route (None for a hairpin to ourselves)."""

    credentials: sc.Credentials | None = None
    """Digest credentials for the host's challenge."""


@dataclass(slots=True)
class Outbound:
    """The dialling state of one outbound leg."""

    cmd: c.Dial
    """What the engine asked for."""

    attempts: list[Attempt]
    """Hosts still to try, the current one first."""

    connector_id: str | None
    """The Voice Connector whose routes are used (None: hairpin)."""

    headers: tuple[tuple[str, str], ...] = ()
    """Header fields of every attempt's INVITE."""

    from_uri: str = ""
    """The From URI."""

    start_ms: int = 0
    """When the first INVITE was sent (Unix ms)."""

    progressed: bool = False
    """The current attempt got a 180/183."""

    answered: bool = False
    """The leg was answered."""

    timed_out: bool = False
    """The current attempt was cancelled by the attempt timer."""

    tried: list[str] = field(default_factory=list)
    """Hosts tried so far (for the log)."""

    srtp: bool = False
    """Offer SRTP only: the connector has ``encryption: true`` (its routes are all TLS)."""


class DialError(Exception):
    """The endpoint cannot be dialled at all (no gateway, disabled origination...)."""


class Dialer:
    """Origination routes and their health, shared by every call (owned by the loop)."""

    def __init__(self, cfg: Config, *, hairpin_secret: bytes, rng: random.Random | None = None) -> None:
        self.cfg = cfg
        self.secret = hairpin_secret
        self.rng = rng or random.Random()
        self.numbers = {n for vc in cfg.voice_connectors for n in vc.phone_numbers}
        self.health: dict[str, OriginationHealth] = {}
        for vc in cfg.voice_connectors:
            if vc.origination is not None:
                self.health[vc.id] = OriginationHealth.for_origination(vc.origination)
        first = cfg.sip.listeners[0] if cfg.sip.listeners else None
        host = "127.0.0.1" if first is None or first.address in ("0.0.0.0", "::") else first.address
        host = f"[{host}]" if ":" in host else host
        self.local = (host, first.port if first is not None else 5060,
                      first.transport if first is not None else "udp")

    def plan(self, cmd: c.Dial) -> Outbound:
        """The attempts for *cmd*, or DialError."""
        from_uri = f"sip:{cmd.caller_id}@{self.local[0]}:{self.local[1]}"
        headers = cmd.sip_headers
        if cmd.endpoint_type == "SMA" or (cmd.endpoint_type == "PSTN" and cmd.uri in self.numbers):
            return Outbound(cmd, [self._hairpin(cmd)], None, headers + (self._hairpin_header(cmd),), from_uri)
        if cmd.endpoint_type == "PSTN":
            vc = self.cfg.pstn_connector()
            if vc is None:
                raise DialError("no PSTN gateway is configured (pstn.voice_connector)")
        elif cmd.endpoint_type == "AWS":
            vc = self.cfg.voice_connector(cmd.arn or "")
            if vc is None:
                raise DialError(f"no Voice Connector {cmd.arn!r}")
        else:
            raise DialError(f"unknown endpoint type {cmd.endpoint_type!r}")
        attempts = self._routes(vc, cmd.uri)
        if not attempts:
            raise DialError(f"Voice Connector {vc.id!r} has no usable origination route")
        return Outbound(cmd, attempts, vc.id, headers, from_uri, srtp=vc.encryption)

    def _routes(self, vc: VoiceConnector, user: str) -> list[Attempt]:
        o: Origination | None = vc.origination
        if o is None:
            return []
        creds = None
        if o.credentials is not None:
            creds = sc.Credentials(o.credentials.username, o.credentials.password, o.credentials.realm or "*")
        routes = plan_attempts(o, self.health.get(vc.id), time.monotonic(), self.rng)
        return [Attempt(r.uri(user), r, creds) for r in routes]

    def _hairpin(self, cmd: c.Dial) -> Attempt:
        host, port, transport = self.local
        return Attempt(f"sip:{cmd.uri}@{host}:{port};transport={transport}", None)

    def _hairpin_header(self, cmd: c.Dial) -> tuple[str, str]:
        """``leg-id;sma=<id>;sig=<hmac>``: admission routes a hairpin with a valid signature
        to the SMA (or by its number's SIP rule) without the allow list."""
        sma = cmd.arn if cmd.endpoint_type == "SMA" and cmd.arn else ""
        return HAIRPIN_HEADER, f"{cmd.call_id};sma={sma};sig={self.sign(cmd.call_id, sma)}"

    def sign(self, call_id: str, sma: str) -> str:
        return hmac.new(self.secret, f"{call_id}|{sma}".encode(), hashlib.sha256).hexdigest()[:32]

    def verify_hairpin(self, value: str) -> tuple[str, str] | None:
        """(leg id, SMA id or "") of a valid hairpin header value, else None."""
        leg, _, rest = value.partition(";")
        params = dict(p.partition("=")[::2] for p in rest.split(";") if p)
        sma, sig = params.get("sma", ""), params.get("sig", "")
        if leg and hmac.compare_digest(sig, self.sign(leg, sma)):
            return leg, sma
        return None

    # -- outcomes -------------------------------------------------------------------
    def failed(self, out: Outbound, status: int) -> bool:
        """The current attempt ended without an answer; True when the next host is to be
        tried (the attempt list then starts with it)."""
        timed_out = out.timed_out
        transport_error = status in (0, 503) and not out.progressed and not timed_out
        if is_host_failure(status, transport_error, timed_out):
            self._health(out, lambda key, now: CallAttemptFailed(
                key, f"status {status}" if status else "no answer", now))
        else:
            self._health(out, CallAttemptAnswered)
        if out.answered or out.progressed and not timed_out:
            return False                    # the far end took the call: its answer is final
        outcome = after_failure(status or None, transport_error, timed_out)
        out.attempts.pop(0)
        out.timed_out = False
        out.progressed = False
        return outcome is Outcome.TRY_NEXT and bool(out.attempts)

    def answered(self, out: Outbound) -> None:
        out.answered = True
        self._health(out, CallAttemptAnswered)

    def _health(self, out: Outbound, make: Callable[[str, float], HealthInput]) -> None:
        """Feed the current attempt's result to its route's health table (not for hairpins)."""
        route = out.attempts[0].route
        health = self.health.get(out.connector_id or "")
        if route is not None and health is not None:
            health.handle(make(route.key, time.monotonic()))
