"""What a transaction may know of the server's configuration (plain values)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Directory:
    """The numbers and trunks an action may name, for validation in the engine."""

    phone_numbers: frozenset[str] = field(default_factory=frozenset)
    """E.164 numbers of this server (CallAndBridge's CallerIdNumber rule, 02b §1.3.2)."""

    voice_connectors: frozenset[str] = field(default_factory=frozenset)
    """Ids of the Voice Connectors with origination routes (``AWS`` endpoints)."""

    sip_media_applications: frozenset[str] = field(default_factory=frozenset)
    """Ids of the SIP media applications (bridging to an SMA of this server)."""
