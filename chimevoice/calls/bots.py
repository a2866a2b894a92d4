"""Bot sessions of StartBotConversation: one store per call, one session per conversation."""
from __future__ import annotations

from typing import Any

from ..bots import BotSession, BotSessionStore, create_bot
from ..config import BotsConfig


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

    def get(self, conversation_id: str) -> BotSession | None:
        return self.sessions.get(conversation_id)

    def release(self, conversation_id: str) -> None:
        self.sessions.pop(conversation_id, None)

    def clear(self) -> None:
        self.sessions.clear()
        self.store = BotSessionStore()
