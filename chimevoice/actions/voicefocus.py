"""VoiceFocus (spec 04 §5): noise suppression on one leg's incoming audio, on or off.

The leg is addressed by CallId (no ParticipantTag; reading 4: a missing CallId means
the leg the handler was invoked for). The suppressor runs in the media worker on the
leg's audio as heard by the server: recordings, and the audio the leg contributes to
bridges and meetings (docs/voicefocus.md)."""
from __future__ import annotations

from typing import Any

from chimevoice.engine.action import Action
from chimevoice.engine.errors import INVALID_ACTION_PARAMETER, MISSING_REQUIRED_ACTION_PARAMETER, ActionError

MSG_ENABLE = "Enable parameter value is invalid."
MSG_MISSING = "Missing required action parameter."


def parse_enable(value: Any) -> bool:
    if value is None:
        raise ActionError(MISSING_REQUIRED_ACTION_PARAMETER, MSG_MISSING)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ActionError(INVALID_ACTION_PARAMETER, MSG_ENABLE)


class VoiceFocus(Action):
    type_name = "VoiceFocus"

    def start(self) -> None:
        enabled = parse_enable(self.params.get("Enable"))
        params = {k: v for k, v in self.params.items() if k != "ParticipantTag"}
        leg = self.ctx.resolve_leg(params)
        self.ctx.set_voice_focus(leg, enabled)
        self.ctx.succeed()
