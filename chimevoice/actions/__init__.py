"""Actions, one module per family. ``REGISTRY`` maps a Chime action Type to its class.

Known Chime actions missing from the registry fail with ACTION_FAILED
(SystemException naming the action) when a handler returns them.
"""
from __future__ import annotations

from .base import Action
from .control import Hangup, Pause
from .play import PlayAudio
from .speak import Speak

REGISTRY: dict[str, type[Action]] = {
    cls.type_name: cls for cls in (Pause, Hangup, PlayAudio, Speak)}

__all__ = ["REGISTRY", "Action"]
