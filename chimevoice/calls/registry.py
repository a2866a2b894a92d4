"""The call registry: every live call, found by TransactionId or by a leg's CallId.

The driver registers a call when it is created and forgets it when its transaction
ends; the SIP and media events, the call-control API and (later) meetings look calls
up here. :class:`CallRegistry` is the small interface they use, so that a store
shared by several nodes can replace :class:`LocalCallRegistry` (jambonz
``lib/session/session-tracker.js`` plays the same part).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

C = TypeVar("C")


class CallRegistry(Protocol[C]):
    """Live calls by TransactionId and by leg CallId."""

    def add(self, transaction_id: str, call: C) -> None: ...
    def add_leg(self, call_id: str, call: C) -> None: ...
    def remove_leg(self, call_id: str) -> None: ...
    def remove(self, transaction_id: str) -> None: ...
    def by_transaction(self, transaction_id: str) -> C | None: ...
    def by_leg(self, call_id: str) -> C | None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[C]: ...


class LocalCallRegistry(Generic[C]):
    """The registry of one daemon (two dictionaries, owned by the event loop)."""

    def __init__(self) -> None:
        self._by_tx: dict[str, C] = {}
        self._by_leg: dict[str, C] = {}

    def add(self, transaction_id: str, call: C) -> None:
        self._by_tx[transaction_id] = call

    def add_leg(self, call_id: str, call: C) -> None:
        """*call_id* (a leg's CallId) now belongs to *call*."""
        self._by_leg[call_id] = call

    def remove_leg(self, call_id: str) -> None:
        """The leg is gone (its events are no longer delivered)."""
        self._by_leg.pop(call_id, None)

    def remove(self, transaction_id: str) -> None:
        """The transaction ended (its owner removes its legs with :meth:`remove_leg`)."""
        self._by_tx.pop(transaction_id, None)

    def by_transaction(self, transaction_id: str) -> C | None:
        return self._by_tx.get(transaction_id)

    def by_leg(self, call_id: str) -> C | None:
        return self._by_leg.get(call_id)

    def __len__(self) -> int:
        return len(self._by_tx)

    def __iter__(self) -> Iterator[C]:
        return iter(list(self._by_tx.values()))
