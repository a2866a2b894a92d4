"""The DTMF digit stream of a call leg and the two digit-collection algorithms (pure).

Every leg has one digit stream (spec 03a §6 D6: RFC 4733, SIP INFO and in-band digits all
feed it). A digit goes to the first of:

1. the running foreground action, when it consumes DTMF on that leg (``PlayAudio`` with
   ``PlaybackTerminators``, ``PlayAudioAndGetDigits``, ``SpeakAndGetDigits``, …);
2. the ``ReceiveDigits`` listener armed on that leg (03a §2.7);
3. nobody: it is discarded, not queued (03a §2.6 R2).

``A``–``D`` are not part of the stream (03a §0.5, README reading 1): :func:`stream_digit`
drops them before routing.

Nothing here does I/O or keeps time. :class:`Attempt` is one attempt of
PlayAudioAndGetDigits / SpeakAndGetDigits (03a §1.7); :class:`Listener` is the buffer of a
ReceiveDigits listener (03a §2.7); :class:`DigitListeners` keeps one listener per leg and
turns digits and timer expiries into engine commands and :class:`Report` s. See
docs/digits.md.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from . import commands as c

DTMF_DIGITS = frozenset("0123456789#*")
MAX_DIGITS_LIMIT = 128


def stream_digit(raw: Any) -> str | None:
    """The digit as it enters a leg's stream, or None for what is not collected (A–D, junk)."""
    d = str(raw).strip().upper()
    return d if d in DTMF_DIGITS else None


# -- PlayAudioAndGetDigits / SpeakAndGetDigits ---------------------------------------------

@dataclass(frozen=True, slots=True)
class CollectSpec:
    """The digit parameters shared by both GetDigits actions, validated and with defaults."""
    first_wait_ms: int                     # RepeatDurationInMilliseconds
    between_ms: int                        # InBetweenDigitsDurationInMilliseconds (default: first_wait_ms)
    min_digits: int = 0
    max_digits: int = MAX_DIGITS_LIMIT
    terminators: frozenset[str] = frozenset("#")
    attempts: int = 1                      # Repeat
    regex: re.Pattern[str] | None = None


def digits_valid(spec: CollectSpec, digits: str, terminator: str | None) -> bool:
    """Whether an ended attempt succeeded (03a §1.7).

    At least Min digits; no digits at all only with a terminator (Min 0); the regex, if
    any, found anywhere (``re.search``) in the digits without the terminator.
    """
    if len(digits) < spec.min_digits:
        return False
    if not digits and terminator is None:
        return False
    return spec.regex is None or spec.regex.search(digits) is not None


class Attempt:
    """One attempt: digits collected until a terminator, Max digits, or a wait expires.

    Feed digits with :meth:`feed` (True when the attempt ended) and a wait's expiry with
    :meth:`timeout`. :meth:`wait_ms` is the wait to (re)arm now: ``first_wait_ms`` before
    the first digit, ``between_ms`` after each one. No overall cap (README reading 1).
    """

    __slots__ = ("spec", "digits", "terminator", "ended")

    def __init__(self, spec: CollectSpec) -> None:
        self.spec = spec
        self.digits = ""
        self.terminator: str | None = None
        self.ended = False

    def wait_ms(self) -> int:
        return self.spec.between_ms if self.digits else self.spec.first_wait_ms

    def feed(self, digit: str) -> bool:
        if self.ended:
            return True
        if digit in self.spec.terminators:          # a terminator wins over the same digit wanted
            self.terminator = digit
            self.ended = True
        else:
            self.digits += digit
            self.ended = len(self.digits) >= self.spec.max_digits
        return self.ended

    def timeout(self) -> None:
        self.ended = True

    @property
    def succeeded(self) -> bool:
        return self.ended and digits_valid(self.spec, self.digits, self.terminator)


# -- ReceiveDigits ----------------------------------------------------------------------------

@dataclass(slots=True)
class Listener:
    """The buffer of one ReceiveDigits listener (03a §2.7).

    :meth:`digit` adds a digit and says whether it opened a window (start the flush timer);
    the gap timer restarts on every digit. :meth:`gap_expired` and :meth:`flush_expired`
    return the digits to report, or None. A report empties the buffer; a flush without a
    match discards it silently.
    """
    regex: re.Pattern[str]
    gap_ms: int
    flush_ms: int
    buffer: str = ""

    def digit(self, d: str) -> bool:
        opened = self.buffer == ""
        self.buffer += d
        return opened

    def _match(self) -> str | None:
        if self.buffer and self.regex.search(self.buffer):
            out, self.buffer = self.buffer, ""
            return out
        return None

    def gap_expired(self) -> str | None:
        return self._match()

    def flush_expired(self) -> str | None:
        out = self._match()
        self.buffer = ""
        return out


@dataclass(frozen=True, slots=True)
class Report:
    """Send DIGITS_RECEIVED for *call_id* with this ActionData."""
    call_id: str
    action_data: dict[str, Any]


@dataclass(slots=True)
class _Armed:
    listener: Listener
    action_type: str
    parameters: dict[str, Any]
    gap_timer: str
    flush_timer: str


@dataclass
class DigitListeners:
    """One ReceiveDigits listener per leg; its timers are engine timers named ``digits:…``.

    Every method returns the effects to carry out, in order: engine commands
    (StartTimer/CancelTimer) and :class:`Report` s.
    """
    PREFIX = "digits:"
    by_leg: dict[str, _Armed] = field(default_factory=dict)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def arm(self, call_id: str, listener: Listener, action_type: str,
            parameters: dict[str, Any]) -> list[Any]:
        """Install *listener* on the leg, replacing (and silencing) the one there."""
        out = self.drop(call_id)
        n = next(self._ids)
        self.by_leg[call_id] = _Armed(listener, action_type, parameters,
                                      f"{self.PREFIX}{n}:gap", f"{self.PREFIX}{n}:flush")
        return out

    def drop(self, call_id: str) -> list[Any]:
        armed = self.by_leg.pop(call_id, None)
        if armed is None:
            return []
        return [c.CancelTimer(armed.gap_timer), c.CancelTimer(armed.flush_timer)]

    def drop_all(self) -> list[Any]:
        out: list[Any] = []
        for call_id in list(self.by_leg):
            out += self.drop(call_id)
        return out

    def armed(self, call_id: str) -> bool:
        return call_id in self.by_leg

    def owns(self, timer: str) -> bool:
        return timer.startswith(self.PREFIX)

    def dtmf(self, call_id: str, digit: str) -> list[Any]:
        armed = self.by_leg.get(call_id)
        if armed is None:
            return []                               # no listener: discarded (R2)
        out: list[Any] = []
        if armed.listener.digit(digit):
            out.append(c.StartTimer(armed.flush_timer, armed.listener.flush_ms / 1000.0))
        out.append(c.StartTimer(armed.gap_timer, armed.listener.gap_ms / 1000.0))
        return out

    def timer_fired(self, name: str) -> list[Any]:
        for call_id, armed in self.by_leg.items():
            if name == armed.gap_timer:
                digits = armed.listener.gap_expired()
                if digits is None:
                    return []
                return [c.CancelTimer(armed.flush_timer), self._report(call_id, armed, digits)]
            if name == armed.flush_timer:
                digits = armed.listener.flush_expired()
                out: list[Any] = [c.CancelTimer(armed.gap_timer)]
                if digits is not None:
                    out.append(self._report(call_id, armed, digits))
                return out
        return []                                   # a timer of a replaced listener

    @staticmethod
    def _report(call_id: str, armed: _Armed, digits: str) -> Report:
        # Key order of the guide's DIGITS_RECEIVED example (01 §6.10).
        return Report(call_id, {"ReceivedDigits": digits, "Type": armed.action_type,
                                "Parameters": armed.parameters})
