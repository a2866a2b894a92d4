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

    @property
    def call_id(self) -> str:
        return self.participant.call_id

    @property
    def connected(self) -> bool:
        return self.participant.status == E.CONNECTED

    @property
    def inbound(self) -> bool:
        return self.participant.direction == "Inbound"
