"""Admission and routing of an inbound INVITE (pure).

Order (docs/configuration.md): pick the Voice Connector (Request-URI host,
then called number) whose allow list has the source; none: 403 for a source on
no allow list, 401 when every trunk the source may use wants digest and the
request has none valid, else 404 (so the answer never tells a number of a trunk
the source may not use from a number we do not have) → digest
credentials when configured, else 401 with a challenge → TLS when the
connector requires encryption, else 403, and an SRTP offer, else 488 → SIP rule (ToPhoneNumber, then
RequestUriHostname), else the configured no-route response (404).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import sip_rules

from .config import Config, SipMediaApplication, SipRule, TargetApplication, VoiceConnector
from .sip.events import IncomingCall
from .sip.message import uri_of, uri_parts


@dataclass(frozen=True, slots=True)
class Route:
    connector: VoiceConnector
    rule: SipRule
    applications: list[SipMediaApplication]   # priority order
    called: str                                # E.164 when it normalises, else the URI user
    caller: str


@dataclass(frozen=True, slots=True)
class Rejection:
    status_code: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    bad_credentials: bool = False       # a 401 for digest credentials that were wrong (not stale)


def called_and_caller(call: IncomingCall, country_code: str) -> tuple[str, str, str]:
    """(called, caller, request-URI host) with numbers normalised to E.164 where possible."""
    _, user, host, _ = uri_parts(call.request_uri)
    if not user:
        _, user, _, _ = uri_parts(uri_of(call.to_uri))
    _, from_user, _, _ = uri_parts(uri_of(call.from_uri))
    called = sip_rules.normalize_e164(user, country_code) or user
    caller = sip_rules.normalize_e164(from_user, country_code) or from_user
    return called, caller, host


def route_call(cfg: Config, call: IncomingCall, *, auth_secret: bytes,
               now: float | None = None, hairpin_sma: str | None = None,
               trusted: bool = False) -> Route | Rejection:
    """Admit and route *call*. *trusted*: a call this server placed to itself (a hairpin,
    docs/bridging.md): no allow list, digest or TLS check; with *hairpin_sma* it goes to that
    SIP media application instead of a SIP rule."""
    if call.short_body:
        return Rejection(400, "Content-Length larger than the body received")
    cc = cfg.sip.default_country_code
    called, caller, host = called_and_caller(call, cc)
    if hairpin_sma:
        app = cfg.application(hairpin_sma)
        if app is None or not cfg.voice_connectors:
            return Rejection(cfg.sip.no_route_response, f"no SIP media application {hairpin_sma}")
        direct = SipRule("", "hairpin", "ToPhoneNumber", called, (TargetApplication(app.id, 1),))
        return Route(cfg.voice_connectors[0], direct, [app], called, caller)
    connector = sip_rules.select_voice_connector(
        cfg.voice_connectors, request_uri_host=host, called_number=called, default_country_code=cc)
    if connector is not None and not trusted and not sip_rules.source_allowed(connector, call.source_ip):
        # A trunk this source may not use is, to it, no trunk: the answer must not tell a
        # number of another trunk from a number we do not have (docs/security.md).
        connector = None
    if connector is None:
        admitting = [vc for vc in cfg.voice_connectors if sip_rules.source_allowed(vc, call.source_ip)]
        if not admitting:
            return Rejection(403, f"source {call.source_ip} is on no Voice Connector allow list")
        if not trusted and all(vc.credentials is not None for vc in admitting):
            # Every trunk this source may use wants digest: challenge before saying that the
            # number does not exist, so a scanner without credentials cannot tell our numbers
            # from others (401 for both; docs/security.md).
            problem = _first_credentials_problem(admitting, call, auth_secret, time.time() if now is None else now)
            if problem is not None:
                return problem
        return Rejection(cfg.sip.no_route_response, f"no Voice Connector serves {called}@{host}")
    if connector.credentials is not None and not trusted:
        problem = _check_credentials(connector, call, auth_secret, time.time() if now is None else now)
        if problem is not None:
            return problem
    if connector.encryption and call.transport != "tls" and not trusted:
        return Rejection(403, f"Voice Connector {connector.id} requires TLS")
    if connector.encryption and not call.srtp_offered and not trusted:
        # Chime: an encrypted connector takes SRTP media only; 488 as RFC 3261 §21.4.26 for
        # an offer whose media we will not accept, with a Warning saying why (RFC 3261 §20.43)
        return Rejection(488, f"Voice Connector {connector.id} requires SRTP (RTP/SAVP with a=crypto)",
                         (("Warning", '399 chimevoice "SRTP required"'),))
    rule = sip_rules.match_rule(cfg.sip_rules, called_number=called, request_uri_host=host,
                                default_country_code=cc)
    if rule is None:
        return Rejection(cfg.sip.no_route_response, f"no SIP rule for {called} or host {host}")
    apps = [app for t in sip_rules.targets_in_order(rule)
            if (app := cfg.application(t.sip_media_application_id)) is not None]
    if not apps:
        return Rejection(cfg.sip.no_route_response, f"SIP rule {rule.id} has no usable target")
    return Route(connector, rule, apps, called, caller)


def _first_credentials_problem(connectors: list[VoiceConnector], call: IncomingCall, secret: bytes,
                               now: float) -> Rejection | None:
    """None when *call* carries valid credentials of one of *connectors*, else the challenge
    of the first (the one a call to a number of that trunk would also get)."""
    problems = [_check_credentials(vc, call, secret, now) for vc in connectors]
    return None if any(p is None for p in problems) else problems[0]


def _check_credentials(connector: VoiceConnector, call: IncomingCall, secret: bytes,
                       now: float) -> Rejection | None:
    creds = connector.credentials
    assert creds is not None
    stale = False
    answers = call.headers.get("authorization", [])
    for value in answers:
        params = sip_rules.parse_authorization(value)
        if sip_rules.verify_digest(params, method="INVITE", username=creds.username,
                                   password=creds.password, realm=creds.realm, secret=secret, now=now):
            return None
        stale = stale or sip_rules.nonce_status(params.get("nonce", ""), secret=secret, now=now) == "stale"
    challenge = sip_rules.make_challenge(creds.realm, sip_rules.make_nonce(secret, now), stale=stale)
    return Rejection(401, "digest authentication required" if not answers else "wrong digest credentials",
                     (("WWW-Authenticate", challenge),), bad_credentials=bool(answers) and not stale)
