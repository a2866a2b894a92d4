"""Actions, one module per family. ``REGISTRY`` maps a Chime action Type to its class.

Known Chime actions missing from the registry fail with ACTION_FAILED
(SystemException naming the action) when a handler returns them.
"""
from __future__ import annotations

from chimevoice.engine.action import Action

from .bot import StartBotConversation
from .bridge import CallAndBridge
from .call_recording import PauseCallRecording, ResumeCallRecording, StartCallRecording, StopCallRecording
from .control import Hangup, Pause
from .digits import PlayAudioAndGetDigits, ReceiveDigits, SpeakAndGetDigits
from .play import PlayAudio
from .record import RecordAudio
from .senddigits import SendDigits
from .speak import Speak
from .voicefocus import VoiceFocus

REGISTRY: dict[str, type[Action]] = {
    cls.type_name: cls for cls in (Pause, Hangup, CallAndBridge, PlayAudio, Speak, StartBotConversation,
                                   ReceiveDigits, PlayAudioAndGetDigits, SpeakAndGetDigits,
                                   SendDigits, RecordAudio, StartCallRecording, StopCallRecording,
                                   PauseCallRecording, ResumeCallRecording, VoiceFocus)}

__all__ = ["REGISTRY", "Action"]
