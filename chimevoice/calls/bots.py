"""Bot sessions of StartBotConversation: one store per call, one session per conversation."""
from __future__ import annotations

from typing import Any

from ..bots import BotSession, BotSessionStore, BotTurn, create_bot
from ..config import BotsConfig
from ..engine import commands as c
from ..engine.events import CallDetailsInfo


class CallBots:
    """The bot sessions of one call (local-bot state is shared by the conversations
    of a call, 03c §8.2); dropped with the call."""

    def __init__(self, cfg: BotsConfig) -> None:
        self.cfg = cfg
        self.sessions: dict[str, BotSession] = {}
        self.store = BotSessionStore()

    def create(self, conversation_id: str, params: Any, *, session_id: str, aws_account_id: str,
               aws_region: str, sma_id: str) -> BotSession:
        bot = create_bot(
            params, local_bots=self.cfg.local, lex_endpoint_url=self.cfg.lex_endpoint_url,
            allow_lex=self.cfg.allow_lex, session_id=session_id, store=self.store,
            source_account=aws_account_id,
            source_arn=f"arn:aws:voiceconnector:{aws_region}:{aws_account_id}:sma/{sma_id}")
        self.sessions[conversation_id] = bot
        return bot

    async def step(self, cmd: c.BotRequest, info: CallDetailsInfo) -> BotTurn | None:
        """Carry out one bot step of a call (``start``, ``dtmf`` or ``text``); None when the
        conversation was released meanwhile. BotError and other errors propagate."""
        if cmd.op == "start":
            bot = self.create(cmd.conversation_id, cmd.value, session_id=cmd.call_id,
                              aws_account_id=info.aws_account_id, aws_region=info.aws_region,
                              sma_id=info.sip_media_application_id)
            return await bot.start()
        found = self.get(cmd.conversation_id)
        if found is None:
            return None
        return await (found.input_dtmf(cmd.value) if cmd.op == "dtmf" else found.input_text(cmd.value))

    def get(self, conversation_id: str) -> BotSession | None:
        return self.sessions.get(conversation_id)

    def release(self, conversation_id: str) -> None:
        self.sessions.pop(conversation_id, None)

    def clear(self) -> None:
        self.sessions.clear()
        self.store = BotSessionStore()
