"""Pure, data-driven SIP routing: E.164 normalisation, connector/rule selection, digest auth.

No I/O and no import of ``chimevoice``: functions take plain values or any objects shaped
like the configuration dataclasses (see :mod:`sip_rules.routing` Protocols).
"""

from .digest import (
    NonceStatus,
    compute_response,
    make_challenge,
    make_nonce,
    nonce_status,
    parse_authorization,
    verify_digest,
)
from .e164 import E164_PATTERN, is_e164, normalize_e164, uri_user_part
from .routing import (
    TRIGGER_REQUEST_URI_HOSTNAME,
    TRIGGER_TO_PHONE_NUMBER,
    SipRuleLike,
    TargetApplicationLike,
    VoiceConnectorLike,
    match_rule,
    normalize_host,
    parse_ip,
    select_voice_connector,
    source_allowed,
    targets_in_order,
)

__all__ = [
    "E164_PATTERN",
    "TRIGGER_REQUEST_URI_HOSTNAME",
    "TRIGGER_TO_PHONE_NUMBER",
    "NonceStatus",
    "SipRuleLike",
    "TargetApplicationLike",
    "VoiceConnectorLike",
    "compute_response",
    "is_e164",
    "make_challenge",
    "make_nonce",
    "match_rule",
    "nonce_status",
    "normalize_e164",
    "normalize_host",
    "parse_authorization",
    "parse_ip",
    "select_voice_connector",
    "source_allowed",
    "targets_in_order",
    "uri_user_part",
    "verify_digest",
]
