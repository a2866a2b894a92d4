"""What the driver keeps about each leg for its CDR (the engine keeps the rest)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class LegRecord:
    """One leg of a call, as its CDR reports it. Each leg writes its own CDR."""

    call_id: str
    """The leg's Chime CallId (our handle in every command)."""

    direction: str
    """``Inbound`` (a call to us) or ``Outbound`` (a call we placed)."""

    source_number: str
    """The caller's number (E.164 when it is one)."""

    destination_number: str
    """The called number."""

    start_ms: int
    """When the leg began (INVITE received or sent), Unix ms."""

    sip_call_id: str = ""
    """The SIP Call-ID of the leg's dialog."""

    transport: str = ""
    """``udp``, ``tcp`` or ``tls``."""

    source_address: str = ""
    """The far end's ``ip:port``."""

    answer_ms: int | None = None
    """When it was answered, Unix ms (None: never)."""

    end_ms: int | None = None
    """When it ended, Unix ms."""

    status_code: int = 0
    """The last SIP status of the dialog."""

    hangup_source: str = "system"
    """Who ended it: ``caller``, ``application`` or ``system``."""

    trigger_type: str = ""
    """``CallLegTriggerType`` of its CDR (docs/cdr.md): the SIP rule's trigger type for an
    inbound leg, ``CallAndBridge`` or ``CreateSipMediaApplicationCall`` for outbound ones."""
