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

    def success_data(self, **extra: Any) -> dict[str, Any]:
        """ActionData of this action's ACTION_SUCCESSFUL: Type, Parameters, then outputs."""
        out: dict[str, Any] = {"Type": self.type_name, "Parameters": self.echo_parameters()}
        out.update(extra)
        return out

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

    def consumes_dtmf(self, call_id: str) -> bool:
        """Whether a digit on *call_id* goes to this action rather than the leg's
        ReceiveDigits listener (spec 03a §2.7 choice 4). Default: actions that define
        on_dtmf take every digit; PlayAudio and the GetDigits actions narrow it."""
        return type(self).on_dtmf is not Action.on_dtmf

    def on_timer(self, name: str) -> None:
        pass

    def on_digits_sent(self, call_id: str, send_id: str) -> None:
        pass

    def on_recording_started(self, call_id: str, record_id: str) -> None:
        pass

    def on_recording_stopped(self, call_id: str, record_id: str, reason: str, error: str | None) -> None:
        pass

    def on_bot_turn(self, request_id: str, turn: Any) -> None:
        pass

    def on_bot_failed(self, request_id: str, error_type: str, message: str) -> None:
        pass

    def failure_data(self) -> dict[str, Any]:
        """Extra ActionData keys of this action's ACTION_FAILED (StartBotConversation: CallId)."""
        return {}

    def stop(self) -> None:
        """The action is abandoned (its leg hung up or it was interrupted): release media."""
