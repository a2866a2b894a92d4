"""Pure, data-driven SIP routing: E.164 normalisation, connector/rule selection, digest auth,
origination trunks (host choice, failover, OPTIONS health; inputs/outputs in :mod:`sip_rules.origination`).

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
from .origination import (
    Origination,
    OriginationCredentials,
    OriginationHealth,
    OriginationRoute,
    Outcome,
    after_failure,
    is_host_failure,
    origination_problems,
    plan_attempts,
)
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
    "Origination",
    "OriginationCredentials",
    "OriginationHealth",
    "OriginationRoute",
    "Outcome",
    "SipRuleLike",
    "TargetApplicationLike",
    "VoiceConnectorLike",
    "after_failure",
    "compute_response",
    "is_e164",
    "is_host_failure",
    "make_challenge",
    "make_nonce",
    "match_rule",
    "nonce_status",
    "normalize_e164",
    "normalize_host",
    "origination_problems",
    "parse_authorization",
    "parse_ip",
    "plan_attempts",
    "select_voice_connector",
    "source_allowed",
    "targets_in_order",
    "uri_user_part",
    "verify_digest",
]
