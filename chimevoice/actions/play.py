"""PlayAudio (spec 02c §4)."""
from __future__ import annotations

from typing import Any

from chimevoice.engine.errors import INVALID_ACTION_PARAMETER, ActionError
from chimevoice.media.audio import parse_audio_source
from chimevoice.engine.values import ParamError, opt_int, str_list

from .base import Action

DTMF_KEYS = frozenset("0123456789#*")


def parse_terminators(value: Any, name: str) -> frozenset[str]:
    try:
        keys = str_list(value)
    except ParamError:
        raise ActionError(INVALID_ACTION_PARAMETER, f"{name} parameter is invalid.") from None
    if any(k not in DTMF_KEYS for k in keys):
        raise ActionError(INVALID_ACTION_PARAMETER, f"{name} parameter is invalid.")
    return frozenset(keys)


class PlayAudio(Action):
    """Play a WAV from a bucket Repeat times (default 1) to one leg; a DTMF key
    listed in PlaybackTerminators stops it (the action still succeeds)."""
    type_name = "PlayAudio"
    interruptible = True

    def echo_parameters(self) -> dict[str, Any]:
        # 02c §4.6: the echo carries the default Repeat the handler left out.
        out = dict(self.params)
        out.setdefault("Repeat", 1)
        return out

    def start(self) -> None:
        try:
            self.repeat = opt_int(self.params, "Repeat", default=1)
        except ParamError:
            raise ActionError(INVALID_ACTION_PARAMETER, "Repeat parameter is invalid.") from None
        if self.repeat < 1:
            raise ActionError(INVALID_ACTION_PARAMETER, "Repeat parameter is invalid.")
        self.terminators = parse_terminators(self.params.get("PlaybackTerminators"), "PlaybackTerminators")
        bucket, key = parse_audio_source(self.params.get("AudioSource"))
        self.leg = self.ctx.resolve_leg()
        self.path: str | None = None
        self.play_id: str | None = None
        self.request = self.ctx.prepare_audio(bucket, key)

    def on_audio_ready(self, request_id: str, path: str, duration_s: float) -> None:
        if request_id != self.request:
            return
        self.path = path
        self.duration_s = duration_s
        if self.ctx.answer(self.leg):
            self._play()

    def on_audio_failed(self, request_id: str, error_type: str, message: str) -> None:
        if request_id == self.request:
            self.ctx.fail(error_type, message)

    def on_media_ready(self, call_id: str) -> None:
        if call_id == self.leg.call_id and self.path is not None and self.play_id is None:
            self._play()

    def _play(self) -> None:
        assert self.path is not None
        self.play_id = self.ctx.play(self.leg, self.path, self.repeat, self.duration_s)

    def on_playback_finished(self, call_id: str, play_id: str) -> None:
        if play_id == self.play_id:
            self.play_id = None
            self.ctx.succeed()

    def consumes_dtmf(self, call_id: str) -> bool:
        # With PlaybackTerminators the play takes its leg's digits (spec 03a §2.7 choice 4);
        # without, they go on to a ReceiveDigits listener.
        leg = getattr(self, "leg", None)
        return bool(getattr(self, "terminators", None)) and leg is not None and leg.call_id == call_id

    def on_dtmf(self, call_id: str, digit: str) -> None:
        if call_id == self.leg.call_id and digit in self.terminators and self.play_id is not None:
            self.stop()
            self.ctx.succeed()

    def stop(self) -> None:
        if getattr(self, "play_id", None) is not None:
            self.ctx.stop_play(self.leg, self.play_id)
            self.play_id = None
