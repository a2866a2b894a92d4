"""The call layer between the SIP endpoint and the engine.

* :mod:`.manager` — admission and routing of INVITEs, event dispatch, drain;
* :mod:`.registry` — live calls by TransactionId and CallId;
* :mod:`.driver` — one per call: engine inputs in, commands out;
* services of their own: :mod:`.cdrs` (group commit), :mod:`.prompts` (audio and
  speech), :mod:`.bots` (bot sessions of a call).
"""
from .manager import CallManager

__all__ = ["CallManager"]
