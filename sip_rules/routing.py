"""Routing of an incoming SIP request: Voice Connector, allow list, SIP rule, targets.

Pure functions over plain values. They accept the dataclasses of ``chimevoice.config`` (or any
object with the same attributes, see the Protocols below) and never import that module.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar, runtime_checkable

from .e164 import normalize_e164

__all__ = [
    "TRIGGER_REQUEST_URI_HOSTNAME",
    "TRIGGER_TO_PHONE_NUMBER",
    "SipRuleLike",
    "TargetApplicationLike",
    "VoiceConnectorLike",
    "match_rule",
    "normalize_host",
    "parse_ip",
    "select_voice_connector",
    "source_allowed",
    "targets_in_order",
]

TRIGGER_TO_PHONE_NUMBER = "ToPhoneNumber"
TRIGGER_REQUEST_URI_HOSTNAME = "RequestUriHostname"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@runtime_checkable
class VoiceConnectorLike(Protocol):
    """What routing needs from a Voice Connector."""

    @property
    def host_name(self) -> str: ...
    @property
    def allow_list(self) -> Sequence[IPNetwork]: ...
    @property
    def phone_numbers(self) -> Sequence[str]: ...


@runtime_checkable
class TargetApplicationLike(Protocol):
    """What routing needs from a rule target."""

    @property
    def sip_media_application_id(self) -> str: ...
    @property
    def priority(self) -> int: ...


@runtime_checkable
class SipRuleLike(Protocol):
    """What routing needs from a SIP rule."""

    @property
    def trigger_type(self) -> str: ...
    @property
    def trigger_value(self) -> str: ...
    @property
    def target_applications(self) -> Sequence[TargetApplicationLike]: ...


VC = TypeVar("VC", bound=VoiceConnectorLike)
Rule = TypeVar("Rule", bound=SipRuleLike)
Target = TypeVar("Target", bound=TargetApplicationLike)


def normalize_host(host: str) -> str:
    """Lower-case a Request-URI host and drop a port, IPv6 brackets and a trailing dot."""
    text = host.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        return text[1:end] if end > 0 else text[1:]
    if text.count(":") == 1:  # host:port (a bare IPv6 literal has several colons)
        text = text.split(":", 1)[0]
    return text.rstrip(".")


def parse_ip(value: str) -> IPAddress | None:
    """Parse an IP address (brackets, ``%zone`` and ``host:port`` tolerated), or None."""
    text = value.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    text = text.split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def select_voice_connector(
    connectors: Iterable[VC],
    *,
    request_uri_host: str,
    called_number: str | None,
    default_country_code: str = "1",
) -> VC | None:
    """The connector addressed by a request: by Request-URI host first, else by called number."""
    connectors = list(connectors)
    host = normalize_host(request_uri_host or "")
    if host:
        for connector in connectors:
            if normalize_host(connector.host_name) == host:
                return connector
    if called_number:
        number = normalize_e164(called_number, default_country_code) or called_number
        for connector in connectors:
            if number in connector.phone_numbers:
                return connector
    return None


def source_allowed(connector: VoiceConnectorLike, source_ip: str) -> bool:
    """True when ``source_ip`` lies inside one of the connector's allow-list CIDRs.

    IPv4-mapped IPv6 sources (``::ffff:192.0.2.1``) are also checked as IPv4. An empty allow
    list admits nobody; an unparsable address is refused.
    """
    address = parse_ip(source_ip) if isinstance(source_ip, str) else None
    if address is None:
        return False
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    for network in connector.allow_list:
        if isinstance(network, str):
            try:
                network = ipaddress.ip_network(network, strict=False)
            except ValueError:
                continue
        for candidate in candidates:
            if candidate.version == network.version and candidate in network:
                return True
    return False


def match_rule(
    rules: Iterable[Rule],
    *,
    called_number: str | None,
    request_uri_host: str,
    default_country_code: str = "1",
) -> Rule | None:
    """The SIP rule for a request: ToPhoneNumber on the called number, then RequestUriHostname.

    The called number (a URI user part or a number) is normalised to E.164 first; the host is
    compared case-insensitively without port. The first matching rule in list order wins.
    """
    rules = list(rules)
    number = normalize_e164(called_number, default_country_code) if called_number else None
    if number is not None:
        for rule in rules:
            if rule.trigger_type == TRIGGER_TO_PHONE_NUMBER:
                trigger = normalize_e164(rule.trigger_value, default_country_code)
                if trigger == number:
                    return rule
    host = normalize_host(request_uri_host or "")
    if host:
        for rule in rules:
            if rule.trigger_type == TRIGGER_REQUEST_URI_HOSTNAME and normalize_host(rule.trigger_value) == host:
                return rule
    return None


def targets_in_order(rule: SipRuleLike) -> list[TargetApplicationLike]:
    """The rule's targets by ascending priority (lower number first; ties keep list order)."""
    return sorted(rule.target_applications, key=lambda target: int(target.priority))
