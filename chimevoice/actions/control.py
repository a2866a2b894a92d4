"""Call-control actions: Pause and Hangup (spec 02c §3, 02b §2)."""
from __future__ import annotations

from typing import Any

from chimevoice.engine import inputs as I
from chimevoice.engine.action import Action, Needs
from chimevoice.engine.errors import INVALID_ACTION_PARAMETER, MSG_DURATION, ActionError
from chimevoice.engine.values import ParamError, is_blank, opt_int

PAUSE_MIN_MS = 100
PAUSE_MAX_MS = 30000
HANGUP_CODES = (0, 480, 486)


class Pause(Action):
    """Wait DurationInMilliseconds (100–30000, 04 §4 row 16) on the target leg.

    Interruptible. On an unanswered inbound leg it answers first, so the caller
    hears silence rather than ringback (docs/decisions.md)."""
    type_name = "Pause"
    interruptible = True
    needs = Needs.ANSWERED_MEDIA

    timer: str | None = None

    def start(self) -> None:
        try:
            ms = opt_int(self.params, "DurationInMilliseconds", "DurationInMilliSeconds")
        except ParamError:
            raise ActionError(INVALID_ACTION_PARAMETER, MSG_DURATION) from None
        if not PAUSE_MIN_MS <= ms <= PAUSE_MAX_MS:
            raise ActionError(INVALID_ACTION_PARAMETER, MSG_DURATION)
        self.leg = self.ctx.resolve_leg()
        self.ms = ms

    def run(self) -> None:
        self.timer = self.ctx.timer_name("pause")
        self.ctx.start_timer(self.timer, self.ms / 1000.0)

    def on_input(self, inp: I.Input) -> None:
        if isinstance(inp, I.TimerFired) and inp.name == self.timer:
            self.timer = None
            self.ctx.succeed()

    def stop(self) -> None:
        if self.timer is not None:
            self.ctx.cancel_timer(self.timer)
            self.timer = None


class Hangup(Action):
    """End one leg with SipResponseCode 0, 480 or 486 (02b §2; reading 28 of 02b §4).

    On a call with one leg the list ends here and the handler gets HANGUP for the leg.
    When another leg stays up (a bridged call) the action succeeds like any other
    (ACTION_SUCCESSFUL with Type Hangup as the last of its list, README reading 12) and the
    HANGUP of the leg follows, in either order."""
    type_name = "Hangup"

    def start(self) -> None:
        code = self._code(self.params.get("SipResponseCode", self.params.get("SipStatusCode")))
        leg = self.ctx.resolve_leg()
        others = any(lg.connected and lg.listed and not lg.hanging_up and lg is not leg
                     for lg in self.ctx.legs.values())
        self.ctx.hang_up(leg, code)
        if others:
            self.ctx.succeed()
        else:
            self.ctx.end_list()

    @staticmethod
    def _code(value: Any) -> int:
        if is_blank(value):
            return 0
        try:
            code = opt_int({"c": value}, "c")
        except ParamError:
            raise ActionError(INVALID_ACTION_PARAMETER, "SipResponseCode parameter is invalid.") from None
        if code not in HANGUP_CODES:
            raise ActionError(INVALID_ACTION_PARAMETER, "SipResponseCode parameter is invalid.")
        return code
