"""A leg of a transaction as the engine sees it (its participant and its media state)."""
from __future__ import annotations

from dataclasses import dataclass

from . import events as E


@dataclass(slots=True)
class Leg:
    """One call leg of a transaction: LEG-A, or LEG-B of a bridge."""

    participant: E.Participant
    """What events show of the leg (CallId, tag, numbers, direction, status)."""

    answered: bool = False
    """The leg has been answered (200 OK sent or received)."""

    media_ready: bool = False
    """Its audio is up."""

    answering: bool = False
    """An ``Answer`` command was sent and media is not up yet."""

    rang: bool = False
    """An outbound leg's far end sent 180/183."""

    listed: bool = True
    """The leg is in ``CallDetails.Participants``. An outbound leg that is still being
    dialled is not (CallAndBridge lists LEG-B once it answers, 02b §1.6.2); a leg that hung
    up while another stays connected is dropped from later events (README reading 12)."""

    hanging_up: bool = False
    """The transaction asked for this leg to end (a ``Hangup`` action, or LEG-B cancelled);
    ``LegDisconnected`` has not come yet. It no longer counts as the other end of a bridge."""

    @property
    def call_id(self) -> str:
        return self.participant.call_id

    @property
    def connected(self) -> bool:
        return self.participant.status == E.CONNECTED

    @property
    def inbound(self) -> bool:
        return self.participant.direction == "Inbound"
