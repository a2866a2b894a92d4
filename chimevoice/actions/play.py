"""PlayAudio (spec 02c §4)."""
from __future__ import annotations

from typing import Any

from chimevoice.engine import inputs as I
from chimevoice.engine.action import Action, ActionContext, Needs
from chimevoice.engine.errors import INVALID_ACTION_PARAMETER, ActionError
from chimevoice.engine.values import ParamError, opt_int, str_list
from chimevoice.media.audio import parse_audio_source

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
    needs = Needs.ANSWERED_MEDIA

    def __init__(self, ctx: ActionContext, params: dict[str, Any]) -> None:
        super().__init__(ctx, params)
        self.repeat = 1
        self.terminators: frozenset[str] = frozenset()
        self.request: str | None = None
        self.path: str | None = None
        self.duration_s = 0.0
        self.play_id: str | None = None

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
        self.request = self.ctx.prepare_audio(bucket, key)

    def run(self) -> None:
        assert self.leg is not None and self.path is not None
        self.play_id = self.ctx.play(self.leg, self.path, self.repeat, self.duration_s)

    def on_input(self, inp: I.Input) -> None:
        match inp:
            case I.AudioReady(request_id=rid, path=path, duration_s=duration) if rid == self.request:
                self.path, self.duration_s = path, duration
            case I.PlaybackFinished(play_id=pid) if pid is not None and pid == self.play_id:
                self.play_id = None
                self.ctx.succeed()
            case I.Dtmf(call_id=cid, digit=digit) if (self.owns_leg(cid) and digit in self.terminators
                                                       and self.play_id is not None):
                self.stop()
                self.ctx.succeed()
            case _:
                super().on_input(inp)

    def consumes_dtmf(self, call_id: str) -> bool:
        # With PlaybackTerminators the play takes its leg's digits (spec 03a §2.7 choice 4);
        # without, they go on to a ReceiveDigits listener.
        return bool(self.terminators) and self.owns_leg(call_id)

    def stop(self) -> None:
        if self.play_id is not None and self.leg is not None:
            self.ctx.stop_play(self.leg, self.play_id)
            self.play_id = None
