"""SendDigits (spec 03b §1): DTMF toward one leg.

RFC 4733 telephone-events when the leg negotiated them, each lasting
ToneDurationInMilliseconds; in-band dual tones otherwise. A comma pauses 0.5 s.
Between two tones the server leaves a fixed gap (``GAP_MS``); the spec has no gap
parameter (docs/digits.md). ACTION_SUCCESSFUL comes after the last signal.
"""
from __future__ import annotations

from typing import Any

from chimevoice.engine import inputs as I
from chimevoice.engine.action import Action
from chimevoice.engine.errors import (
    INVALID_ACTION_PARAMETER,
    MISSING_REQUIRED_ACTION_PARAMETER,
    MSG_BAD_LEG,
    ActionError,
)
from chimevoice.engine.values import ParamError, opt_int

ALLOWED = frozenset("0123456789*#ABCD,")
MAX_SIGNALS = 50                 # the whole string, commas included (03b §6 D3 reading)
TONE_MIN_MS = 50
TONE_MAX_MS = 24000
TONE_DEFAULT_MS = 250
GAP_MS = 100                     # silence between two tones (not a handler parameter)
MSG_DIGITS = "Digits parameter value is invalid."
MSG_TONE = "ToneDuration parameter value is invalid."
MSG_MISSING = "Missing required action parameter."


def parse_digits(value: Any) -> str:
    """The Digits string, or ActionError: 1-50 characters of 0-9 * # A-D and ','."""
    if value is None:
        raise ActionError(MISSING_REQUIRED_ACTION_PARAMETER, MSG_MISSING)
    if not isinstance(value, str) or not value or len(value) > MAX_SIGNALS or not set(value) <= ALLOWED:
        raise ActionError(INVALID_ACTION_PARAMETER, MSG_DIGITS)
    return value


def parse_tone_ms(params: dict[str, Any]) -> int:
    try:
        ms = opt_int(params, "ToneDurationInMilliseconds", default=TONE_DEFAULT_MS)
    except ParamError:
        raise ActionError(INVALID_ACTION_PARAMETER, MSG_TONE) from None
    if not TONE_MIN_MS <= ms <= TONE_MAX_MS:
        raise ActionError(INVALID_ACTION_PARAMETER, MSG_TONE)
    return ms


class SendDigits(Action):
    type_name = "SendDigits"

    send_id: str | None = None

    def start(self) -> None:
        if "Digits" not in self.params:
            raise ActionError(MISSING_REQUIRED_ACTION_PARAMETER, MSG_MISSING)
        digits = parse_digits(self.params.get("Digits"))
        tone_ms = parse_tone_ms(self.params)
        self.leg = self.ctx.resolve_leg()
        if not self.leg.media_ready:
            # 03b §1.3: SendDigits does not answer an unanswered inbound call.
            raise ActionError(INVALID_ACTION_PARAMETER, MSG_BAD_LEG)
        self.send_id = self.ctx.send_digits(self.leg, digits, tone_ms, GAP_MS)

    def on_input(self, inp: I.Input) -> None:
        if isinstance(inp, I.DigitsSent) and inp.send_id == self.send_id:
            self.send_id = None
            self.ctx.succeed()

    def stop(self) -> None:
        if self.send_id is not None and self.leg is not None:
            self.ctx.stop_digits(self.leg, self.send_id)
            self.send_id = None


__all__ = ["SendDigits", "parse_digits", "parse_tone_ms"]
