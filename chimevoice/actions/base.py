"""What every action is made of.

An action is a small object created from the handler's ``{"Type", "Parameters"}``
JSON. The transaction calls :meth:`Action.start`; the action asks for media
work through its :class:`ActionContext` and ends by calling ``ctx.succeed()`` or
``ctx.fail()`` (or raising :class:`~chimevoice.engine.errors.ActionError` from
``start``). Inputs that arrive while it runs (audio ready, media ready,
playback finished, DTMF, timers) are passed to the matching ``on_*`` method.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from chimevoice.engine.transaction import ActionContext


class Action:
    type_name: ClassVar[str] = ""
    interruptible: ClassVar[bool] = False
    #: Sends ACTION_SUCCESSFUL as soon as it succeeds, even mid-list (README reading 6).
    reports_immediately: ClassVar[bool] = False

    def __init__(self, ctx: ActionContext, params: dict[str, Any]) -> None:
        self.ctx = ctx
        self.params = params

    # The parameters echoed in ActionData (as received, plus defaults the service adds).
    def echo_parameters(self) -> dict[str, Any]:
        return dict(self.params)

    def start(self) -> None:
        raise NotImplementedError

    # Inputs; default: ignore.
    def on_media_ready(self, call_id: str) -> None:
        pass

    def on_audio_ready(self, request_id: str, path: str, duration_s: float) -> None:
        pass

    def on_audio_failed(self, request_id: str, error_type: str, message: str) -> None:
        pass

    def on_playback_finished(self, call_id: str, play_id: str) -> None:
        pass

    def on_dtmf(self, call_id: str, digit: str) -> None:
        pass

    def on_timer(self, name: str) -> None:
        pass

    def stop(self) -> None:
        """The action is abandoned (its leg hung up or it was interrupted): release media."""
