"""The bot layer behind the StartBotConversation action (spec 03c).

The action (and the audio path) call::

    params = parse_bot_parameters(action_parameters, region=sma_region)   # BotError -> ACTION_FAILED
    bot = create_bot(params, local_bots=..., session_id=leg.call_id, store=store)
    turn = await bot.start()                      # welcome / elicitation prompt (may be silent)
    while not turn.finished:
        play(turn.prompt_ssml or turn.prompt_text)
        turn = await bot.input_text(recognised)   # or await bot.input_dtmf("123#")
    play(turn.prompt_ssml or turn.prompt_text)    # closing message, if any
    send ACTION_SUCCESSFUL with ActionData.IntentResult = turn.intent_result

Every method may raise :class:`BotError` (its ``error_type``/``message`` are the
ACTION_FAILED ``ErrorType``/``ErrorMessage``).

Which backend serves an ARN: ``arn:aws:lex:<region>:<account>:bot-alias/<botId>/<botAliasId>``
is served by the local bot ``local_bots["<botId>/<botAliasId>"]`` if that key exists,
else by ``local_bots["<botId>"]``, else by Amazon Lex V2 (:class:`LexV2Bot`). So
``arn:aws:lex:us-east-1:111122223333:bot-alias/LOCALPIZZA/TSTALIASID`` with
``local_bots={"LOCALPIZZA": Path("config/bots/pizza.yaml")}`` is the embedded pizza
bot, whatever the region, account and alias. See docs/bots.md.
"""
from __future__ import annotations

import uuid
from pathlib import Path
from typing import Mapping

import structlog

from .base import (
    CONFIRMATION_CONFIRMED,
    CONFIRMATION_DENIED,
    CONFIRMATION_NONE,
    FALLBACK_INTENT,
    STATE_FAILED,
    STATE_FULFILLED,
    STATE_IN_PROGRESS,
    STATE_READY,
    BotSession,
    BotTurn,
    clean_dtmf,
    render_messages,
)
from .lex import LexV2Bot, convert_response, lex_error
from .local import BotConfigError, BotDefinition, BotSessionStore, LocalBot, load_definition, parse_definition
from .params import (
    ACTION_EXECUTION_THROTTLED,
    DEFAULT_LOCALE,
    INVALID_ACTION_PARAMETER,
    MAX_CONFIGURATION_BYTES,
    MSG_BOT_ACCESS_DENIED,
    MSG_BOT_NOT_FOUND,
    MSG_SYSTEM_ERROR,
    RESOURCE_ACCESS_DENIED,
    RESOURCE_NOT_FOUND,
    SYSTEM_EXCEPTION,
    BotAliasArn,
    BotError,
    BotParameters,
    WelcomeMessage,
    msg_invalid,
    msg_throttled,
    parse_bot_parameters,
)

__all__ = [
    "ACTION_EXECUTION_THROTTLED", "BotAliasArn", "BotConfigError", "BotDefinition", "BotError",
    "BotParameters", "BotSession", "BotSessionStore", "BotTurn", "CONFIRMATION_CONFIRMED",
    "CONFIRMATION_DENIED", "CONFIRMATION_NONE", "DEFAULT_LOCALE", "FALLBACK_INTENT",
    "INVALID_ACTION_PARAMETER", "LexV2Bot", "LocalBot", "MAX_CONFIGURATION_BYTES",
    "MSG_BOT_ACCESS_DENIED", "MSG_BOT_NOT_FOUND", "MSG_SYSTEM_ERROR", "RESOURCE_ACCESS_DENIED",
    "RESOURCE_NOT_FOUND", "STATE_FAILED", "STATE_FULFILLED", "STATE_IN_PROGRESS", "STATE_READY",
    "SYSTEM_EXCEPTION", "WelcomeMessage", "clean_dtmf", "convert_response", "create_bot",
    "lex_error", "load_definition", "local_bot_path", "msg_invalid", "msg_throttled",
    "parse_bot_parameters", "parse_definition", "render_messages",
]

log = structlog.get_logger("chimevoice.bots")


def local_bot_path(arn: BotAliasArn, local_bots: Mapping[str, Path | str]) -> Path | None:
    """The YAML file serving *arn*: key ``botId/botAliasId`` first, then ``botId``."""
    path = local_bots.get(f"{arn.bot_id}/{arn.bot_alias_id}")
    if path is None:
        path = local_bots.get(arn.bot_id)
    return Path(path) if path is not None else None


def create_bot(params: BotParameters, *, local_bots: Mapping[str, Path | str],
               lex_endpoint_url: str | None = None, session_id: str | None = None,
               store: BotSessionStore | None = None, allow_lex: bool = True,
               source_account: str | None = None, source_arn: str | None = None,
               max_turns: int | None = None, lex_client: object | None = None) -> BotSession:
    """The bot session for a validated StartBotConversation.

    *session_id* is the bot session id, the CallId of the leg (03c §8.2); it
    defaults to ``params.call_id``, else a fresh UUID. *store* keeps local-bot
    session state between conversations of one call. With ``allow_lex=False`` an
    ARN that names no local bot fails with ``ResourceNotFound`` instead of going to
    Amazon Lex. *source_account* / *source_arn* (the SMA's account and ARN) are
    checked against a local bot's ``policy`` (03c §9) when given.
    """
    sid = session_id or params.call_id or str(uuid.uuid4())
    path = local_bot_path(params.bot_alias_arn, local_bots)
    if path is not None:
        try:
            definition = load_definition(path)
        except BotConfigError as exc:
            log.error("bot_definition_invalid", path=str(path), error=str(exc))
            raise BotError(SYSTEM_EXCEPTION, MSG_SYSTEM_ERROR) from exc
        if params.locale_id not in definition.locales:
            raise BotError(RESOURCE_NOT_FOUND, MSG_BOT_NOT_FOUND)
        if source_account is not None and definition.source_accounts \
                and source_account not in definition.source_accounts:
            raise BotError(RESOURCE_ACCESS_DENIED, MSG_BOT_ACCESS_DENIED)
        if source_arn is not None and definition.source_arns and source_arn not in definition.source_arns:
            raise BotError(RESOURCE_ACCESS_DENIED, MSG_BOT_ACCESS_DENIED)
        return LocalBot(definition, params, session_id=sid, store=store, max_turns=max_turns)
    if not allow_lex:
        raise BotError(RESOURCE_NOT_FOUND, MSG_BOT_NOT_FOUND)
    return LexV2Bot(params, session_id=sid, endpoint_url=lex_endpoint_url, client=lex_client,
                    **({"max_turns": max_turns} if max_turns else {}))
