"""StartBotConversation parameters: parsing and validation (spec 03c §3–§4, §7).

Every check of 03c §4.3 that needs only the action's ``Parameters`` is made
here; the leg checks (V3 ``CallId`` names a connected participant, V5 the leg
is not bridged) need the transaction and are made by the action through the
engine's leg resolution. A failed check raises :class:`BotError` with the
``ErrorType`` of 03c §7 and the message 03c §7 recommends,
``Invalid <ParameterName> parameter.``, where ``<ParameterName>`` is the
parameter's path under ``Parameters`` as the guide's headings write it
(``Configuration.SessionState.DialogAction.Type``). See docs/bots.md.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from chimevoice.engine.errors import MSG_BAD_LEG, MSG_SYSTEM, ActionError

# ErrorType values of 03c §7 (verbatim).
INVALID_ACTION_PARAMETER = "InvalidActionParameter"
SYSTEM_EXCEPTION = "SystemException"
RESOURCE_NOT_FOUND = "ResourceNotFound"
RESOURCE_ACCESS_DENIED = "ResourceAccessDenied"
ACTION_EXECUTION_THROTTLED = "ActionExecutionThrottled"

# ErrorMessage strings. The guide gives none for this action (03c §12 item 14);
# these are 03c §7's recommendations, except SystemException, which uses the
# wording the guide prints for that type elsewhere (L12898, L13287, L14198).
MSG_BOT_NOT_FOUND = "Bot not found."
MSG_BOT_ACCESS_DENIED = "Access to the bot was denied."
MSG_SYSTEM_ERROR = MSG_SYSTEM  # "System error while running action"
MSG_LEG = MSG_BAD_LEG  # the engine's wording for a bad CallId / ParticipantTag


def msg_invalid(parameter: str) -> str:
    """03c §7: ``Invalid <ParameterName> parameter.``"""
    return f"Invalid {parameter} parameter."


def msg_throttled(limit: str) -> str:
    """03c §7: ``Bot conversation limit exceeded: <limit name>.``"""
    return f"Bot conversation limit exceeded: {limit}."


class BotError(ActionError):
    """The bot conversation cannot run; becomes ACTION_FAILED with ErrorType/ErrorMessage.

    A subclass of the engine's :class:`~chimevoice.engine.errors.ActionError`, so an
    action may simply let it propagate.
    """


# Parameter names used in messages.
P_BOT_ALIAS_ARN = "BotAliasArn"
P_LOCALE_ID = "LocaleId"
P_PARTICIPANT_TAG = "ParticipantTag"
P_CONFIGURATION = "Configuration"
P_SESSION_STATE = "Configuration.SessionState"
P_SESSION_ATTRIBUTES = "Configuration.SessionState.SessionAttributes"
P_DIALOG_ACTION = "Configuration.SessionState.DialogAction"
P_DIALOG_ACTION_TYPE = "Configuration.SessionState.DialogAction.Type"
P_WELCOME_MESSAGES = "Configuration.WelcomeMessages"
P_CONTENT = "Configuration.WelcomeMessages.Content"
P_CONTENT_TYPE = "Configuration.WelcomeMessages.ContentType"

DIALOG_ACTION_TYPES = ("Delegate", "ElicitIntent")
CONTENT_TYPES = ("PlainText", "SSML")
DEFAULT_LOCALE = "en_US"
#: 03c §12 item 16: compact UTF-8 JSON, at most 10 KB = 10,240 bytes.
MAX_CONFIGURATION_BYTES = 10 * 1024

# arn:<partition>:lex:<region>:<12-digit account>:bot-alias/<botId>/<botAliasId>
_ARN_RE = re.compile(
    r"arn:(?P<partition>aws|aws-cn|aws-us-gov):lex:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+):"
    r"(?P<account>\d{12}):bot-alias/(?P<bot_id>[0-9A-Za-z_-]{1,100})/(?P<alias_id>[0-9A-Za-z_-]{1,100})")
# Lex locale identifiers: en_US, es_419, yue_HK ...
_LOCALE_RE = re.compile(r"[a-z]{2,3}_(?:[A-Z]{2}|\d{3})")


@dataclass(frozen=True)
class BotAliasArn:
    """The parts of ``arn:aws:lex:region:awsAccountId:bot-alias/botId/botAliasId``."""

    arn: str
    partition: str
    region: str
    account_id: str
    bot_id: str
    bot_alias_id: str

    @classmethod
    def parse(cls, value: Any) -> "BotAliasArn":
        """Parse a bot alias ARN; ``BotError(InvalidActionParameter)`` when it is not one."""
        if not isinstance(value, str):
            raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_BOT_ALIAS_ARN))
        text = value.strip()
        m = _ARN_RE.fullmatch(text)
        if m is None:
            raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_BOT_ALIAS_ARN))
        return cls(text, m["partition"], m["region"], m["account"], m["bot_id"], m["alias_id"])


@dataclass(frozen=True)
class WelcomeMessage:
    content: str
    content_type: str  # "PlainText" | "SSML"


@dataclass(frozen=True)
class BotParameters:
    """The validated ``Parameters`` of a StartBotConversation action."""

    bot_alias_arn: BotAliasArn
    locale_id: str = DEFAULT_LOCALE
    call_id: str | None = None
    participant_tag: str | None = None
    #: ``Configuration.SessionState.SessionAttributes`` (values as strings); ``None`` when absent.
    session_attributes: dict[str, str] | None = None
    #: ``Configuration.SessionState.DialogAction.Type``: "Delegate", "ElicitIntent" or None.
    dialog_action_type: str | None = None
    #: Welcome messages with content, in array order (messages without ``Content`` are skipped).
    welcome_messages: tuple[WelcomeMessage, ...] = ()
    #: The action's ``Parameters`` as received (for the ``ActionData`` echo).
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def arn(self) -> str:
        return self.bot_alias_arn.arn


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _attr_value(value: Any) -> str:
    """A session attribute value: a string, or a number/boolean taken as its JSON text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_SESSION_ATTRIBUTES))


def is_well_formed_ssml(text: str) -> bool:
    """Well-formed XML whose root element is ``<speak>`` (Polly's SSML rule)."""
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError:
        return False
    return root.tag.rsplit("}", 1)[-1] == "speak"


def parse_bot_parameters(params: dict, *, region: str | None = None) -> BotParameters:
    """Validate StartBotConversation ``Parameters`` (03c §4.3 V1, V2, V4, V6–V11).

    *region*, when given, is the SIP media application's AWS Region; a bot alias in
    another Region is rejected (V2). Empty strings and ``null`` stand for absent
    optional fields. Unknown keys are ignored.
    """
    if not isinstance(params, dict):
        raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_BOT_ALIAS_ARN))

    # V1 / V2: BotAliasArn (required; a missing one is InvalidActionParameter, 03c §7).
    arn = BotAliasArn.parse(params.get("BotAliasArn"))
    if region is not None and arn.region != region:
        raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_BOT_ALIAS_ARN))

    # Leg addressing: CallId wins; a ParticipantTag other than LEG-A is refused (V4).
    call_id = params.get("CallId")
    call_id = None if _blank(call_id) else str(call_id).strip()
    tag = params.get("ParticipantTag")
    tag = None if _blank(tag) else str(tag).strip().upper()
    if call_id is None and tag is not None and tag != "LEG-A":
        raise BotError(INVALID_ACTION_PARAMETER, MSG_LEG)

    # V6: LocaleId (default en_US).
    locale = params.get("LocaleId")
    if _blank(locale):
        locale = DEFAULT_LOCALE
    elif not isinstance(locale, str) or not _LOCALE_RE.fullmatch(locale.strip()):
        raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_LOCALE_ID))
    else:
        locale = locale.strip()

    attributes: dict[str, str] | None = None
    dialog_type: str | None = None
    welcome: list[WelcomeMessage] = []
    messages_given = False

    config = params.get("Configuration")
    if not _blank(config):
        # V7: an object, at most 10 KB as compact UTF-8 JSON.
        if not isinstance(config, dict):
            raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_CONFIGURATION))
        size = len(json.dumps(config, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        if size > MAX_CONFIGURATION_BYTES:
            raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_CONFIGURATION))

        state = config.get("SessionState")
        if not _blank(state):
            if not isinstance(state, dict):
                raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_SESSION_STATE))
            # V8: string -> string (numbers and booleans taken as strings).
            raw_attrs = state.get("SessionAttributes")
            if not _blank(raw_attrs):
                if not isinstance(raw_attrs, dict):
                    raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_SESSION_ATTRIBUTES))
                attributes = {str(k): _attr_value(v) for k, v in raw_attrs.items()}
            # V9: DialogAction.Type exactly Delegate | ElicitIntent.
            action = state.get("DialogAction")
            if not _blank(action):
                if not isinstance(action, dict):
                    raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_DIALOG_ACTION))
                dtype = action.get("Type")
                if not _blank(dtype):
                    if not isinstance(dtype, str) or dtype.strip() not in DIALOG_ACTION_TYPES:
                        raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_DIALOG_ACTION_TYPE))
                    dialog_type = dtype.strip()

        # V10 / V11: WelcomeMessages.
        raw_msgs = config.get("WelcomeMessages")
        if not _blank(raw_msgs):
            if not isinstance(raw_msgs, list):
                raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_WELCOME_MESSAGES))
            messages_given = len(raw_msgs) > 0
            for msg in raw_msgs:
                if not isinstance(msg, dict):
                    raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_WELCOME_MESSAGES))
                ctype = msg.get("ContentType")
                if not isinstance(ctype, str) or ctype.strip() not in CONTENT_TYPES:
                    raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_CONTENT_TYPE))
                ctype = ctype.strip()
                content = msg.get("Content")
                if _blank(content):
                    continue  # 03c §12 item 10: nothing to say
                if not isinstance(content, str):
                    raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_CONTENT))
                if ctype == "SSML" and not is_well_formed_ssml(content):
                    raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_CONTENT))
                welcome.append(WelcomeMessage(content, ctype))

    if messages_given and dialog_type != "ElicitIntent":
        raise BotError(INVALID_ACTION_PARAMETER, msg_invalid(P_DIALOG_ACTION_TYPE))

    return BotParameters(
        bot_alias_arn=arn, locale_id=locale, call_id=call_id, participant_tag=tag,
        session_attributes=attributes, dialog_action_type=dialog_type,
        welcome_messages=tuple(welcome), raw=params)
