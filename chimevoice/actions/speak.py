"""Speak (spec 03b §2): text or SSML through the configured synthesizer, played to one leg."""
from __future__ import annotations

from typing import Any

from chimevoice.speech import SpeechRequest, validate

from .play import PlayAudio


class Speak(PlayAudio):
    """Like PlayAudio, but the audio comes from text-to-speech (local espeak-ng by
    default, Amazon Polly when configured). Validation errors are the spec's exact
    ErrorType/ErrorMessage (SpeechError is an ActionError). Interruptible as PlayAudio."""
    type_name = "Speak"

    def echo_parameters(self) -> dict[str, Any]:
        return dict(self.params)               # as received, no defaults added

    def start(self) -> None:
        request = SpeechRequest.from_parameters(self.params)
        validate(request)
        self.leg = self.ctx.resolve_leg()
        self.request = self.ctx.prepare_speech(request)
