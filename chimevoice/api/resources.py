"""Read-only views of the configuration in the shapes of the ``chime-sdk-voice`` model.

The configuration has no creation times: every resource reports the daemon's start time as
its CreatedTimestamp and UpdatedTimestamp. ARNs follow Chime's
(``arn:aws:chime:{region}:{account}:sma/{id}``, ``.../vc/{id}``, ``.../phone-number/{number}``);
for python and http handlers, which have no Lambda ARN, SipMediaApplication Endpoints carry
a descriptive pseudo ARN (docs/api.md).
"""
from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sip_rules import TRIGGER_TO_PHONE_NUMBER

from ..config import Config, SipMediaApplication, SipRule, VoiceConnector
from .errors import BadRequestException, NotFoundException

__all__ = ["ConfigResources", "page"]

_T = TypeVar("_T")
DEFAULT_PAGE = 100


def page(items: Sequence[_T], max_results: int | None, next_token: str | None) -> tuple[list[_T], str | None]:
    """One page of ``items`` and the token of the next one (None on the last page)."""
    start = 0
    if next_token:
        try:
            text = base64.urlsafe_b64decode(next_token.encode("ascii")).decode("ascii")
            start = int(text.removeprefix("offset:")) if text.startswith("offset:") else -1
        except (binascii.Error, UnicodeError, ValueError):
            start = -1
        if start < 0:
            raise BadRequestException("Invalid NextToken.")
    size = max_results or DEFAULT_PAGE
    chunk = list(items[start:start + size])
    more = start + size < len(items)
    token = base64.urlsafe_b64encode(f"offset:{start + size}".encode()).decode() if more else None
    return chunk, token


@dataclass(frozen=True, slots=True)
class ConfigResources:
    """The configured SIP media applications, SIP rules, Voice Connectors and phone numbers.

    ``region`` / ``account_id``: of the Voice Connectors and phone numbers (the ``api`` section);
    applications keep their own ``aws_region`` / ``aws_account_id``. ``started``: the daemon's
    start time, reported as every resource's creation and update time.
    """

    config: Config
    region: str
    account_id: str
    started: datetime

    # -- SIP media applications

    def sip_media_application(self, id: str) -> dict[str, Any]:
        """GetSipMediaApplication's SipMediaApplication."""
        app = self.config.application(id)
        if app is None:
            raise NotFoundException(f"SIP media application {id} not found.")
        return self._application(app)

    def sip_media_applications(self) -> list[dict[str, Any]]:
        """All applications, in configuration order."""
        return [self._application(app) for app in self.config.sip_media_applications]

    def _application(self, app: SipMediaApplication) -> dict[str, Any]:
        return {
            "SipMediaApplicationId": app.id,
            "AwsRegion": app.aws_region,
            "Name": app.name,
            "Endpoints": [{"LambdaArn": _endpoint_arn(app)}],
            "CreatedTimestamp": self.started,
            "UpdatedTimestamp": self.started,
            "SipMediaApplicationArn": f"arn:aws:chime:{app.aws_region}:{app.aws_account_id}:sma/{app.id}",
        }

    # -- SIP rules

    def sip_rule(self, id: str) -> dict[str, Any]:
        """GetSipRule's SipRule."""
        rule = self.config.sip_rule(id)
        if rule is None:
            raise NotFoundException(f"SIP rule {id} not found.")
        return self._rule(rule)

    def sip_rules(self, sip_media_application_id: str | None = None) -> list[dict[str, Any]]:
        """All rules, or those targeting one application (NotFoundException if unknown)."""
        rules = self.config.sip_rules
        if sip_media_application_id is not None:
            if self.config.application(sip_media_application_id) is None:
                raise NotFoundException(f"SIP media application {sip_media_application_id} not found.")
            rules = tuple(rule for rule in rules if any(
                target.sip_media_application_id == sip_media_application_id
                for target in rule.target_applications))
        return [self._rule(rule) for rule in rules]

    def _rule(self, rule: SipRule) -> dict[str, Any]:
        targets = []
        for target in rule.target_applications:
            app = self.config.application(target.sip_media_application_id)
            region = target.aws_region or (app.aws_region if app else self.region)
            targets.append({"SipMediaApplicationId": target.sip_media_application_id,
                            "Priority": target.priority, "AwsRegion": region})
        return {
            "SipRuleId": rule.id,
            "Name": rule.name,
            "Disabled": False,
            "TriggerType": rule.trigger_type,
            "TriggerValue": rule.trigger_value,
            "TargetApplications": targets,
            "CreatedTimestamp": self.started,
            "UpdatedTimestamp": self.started,
        }

    # -- Voice Connectors

    def _connector(self, id: str) -> VoiceConnector:
        vc = self.config.voice_connector(id)
        if vc is None:
            raise NotFoundException(f"Voice Connector {id} not found.")
        return vc

    def voice_connector(self, id: str) -> dict[str, Any]:
        """GetVoiceConnector's VoiceConnector."""
        return self._voice_connector(self._connector(id))

    def voice_connectors(self) -> list[dict[str, Any]]:
        """All Voice Connectors, in configuration order."""
        return [self._voice_connector(vc) for vc in self.config.voice_connectors]

    def _voice_connector(self, vc: VoiceConnector) -> dict[str, Any]:
        return {
            "VoiceConnectorId": vc.id,
            "AwsRegion": self.region,
            "Name": vc.name,
            "OutboundHostName": vc.host_name,
            "RequireEncryption": vc.encryption,
            "CreatedTimestamp": self.started,
            "UpdatedTimestamp": self.started,
            "VoiceConnectorArn": f"arn:aws:chime:{self.region}:{self.account_id}:vc/{vc.id}",
        }

    def termination(self, id: str) -> dict[str, Any]:
        """GetVoiceConnectorTermination's Termination: CidrAllowedList is the allow_list."""
        vc = self._connector(id)
        return {"CidrAllowedList": [str(network) for network in vc.allow_list], "Disabled": False}

    def termination_usernames(self, id: str) -> list[str]:
        """ListVoiceConnectorTerminationCredentials' Usernames (never the passwords)."""
        vc = self._connector(id)
        return [vc.credentials.username] if vc.credentials is not None else []

    def origination(self, id: str) -> dict[str, Any]:
        """GetVoiceConnectorOrigination's Origination; empty when none is configured."""
        origination = getattr(self._connector(id), "origination", None)
        if origination is None:
            return {}
        routes = [{"Host": route.host, "Port": route.port, "Protocol": str(route.protocol).upper(),
                   "Priority": route.priority, "Weight": route.weight}
                  for route in getattr(origination, "routes", ())]
        return {"Routes": routes, "Disabled": bool(getattr(origination, "disabled", False))}

    # -- phone numbers

    def phone_number(self, id: str) -> dict[str, Any]:
        """GetPhoneNumber's PhoneNumber; the id is the E.164 number (with or without ``+``)."""
        number = id if id.startswith("+") else f"+{id}"
        for vc in self.config.voice_connectors:
            if number in vc.phone_numbers:
                return self._phone_number(vc, number)
        raise NotFoundException(f"Phone number {id} not found.")

    def phone_numbers(self, *, product_type: str | None = None, status: str | None = None,
                      filter_name: str | None = None, filter_value: str | None = None) -> list[dict[str, Any]]:
        """Every configured number, optionally filtered as ListPhoneNumbers does."""
        if (filter_name is None) != (filter_value is None):
            raise BadRequestException("FilterName and FilterValue must be given together.")
        numbers = [self._phone_number(vc, number) for vc in self.config.voice_connectors for number in vc.phone_numbers]
        if product_type is not None:
            numbers = [n for n in numbers if n["ProductType"] == product_type]
        if status is not None:
            numbers = [n for n in numbers if n["Status"] == status]
        if filter_name is not None:
            numbers = [n for n in numbers if any(a["Name"] == filter_name and a["Value"] == filter_value
                                                 for a in n["Associations"])]
        return numbers

    def _phone_number(self, vc: VoiceConnector, number: str) -> dict[str, Any]:
        rules = [rule for rule in self.config.sip_rules
                 if rule.trigger_type == TRIGGER_TO_PHONE_NUMBER and rule.trigger_value == number]
        associations = [{"Value": vc.id, "Name": "VoiceConnectorId", "AssociatedTimestamp": self.started}]
        associations += [{"Value": rule.id, "Name": "SipRuleId", "AssociatedTimestamp": self.started}
                         for rule in rules]
        return {
            "PhoneNumberId": number,
            "E164PhoneNumber": number,
            "PhoneNumberArn": f"arn:aws:chime:{self.region}:{self.account_id}:phone-number/{number}",
            "Type": "Local",
            "ProductType": "SipMediaApplicationDialIn" if rules else "VoiceConnector",
            "Status": "Assigned",
            "Capabilities": {"InboundCall": True, "OutboundCall": True, "InboundSMS": False,
                             "OutboundSMS": False, "InboundMMS": False, "OutboundMMS": False},
            "Associations": associations,
            "CreatedTimestamp": self.started,
            "UpdatedTimestamp": self.started,
        }

    def is_phone_number(self, number: str) -> bool:
        """Whether ``number`` (E.164 with ``+``) is one of the configured numbers."""
        return any(number in vc.phone_numbers for vc in self.config.voice_connectors)


def _endpoint_arn(app: SipMediaApplication) -> str:
    """A Lambda function ARN, or for other handlers ``arn:chimevoice:<type>:<region>:<account>:
    function:<target>`` (an http target without its query string and credentials)."""
    handler = app.handler
    prefix = f"{app.aws_region}:{app.aws_account_id}:function"
    if handler.type == "lambda":
        return handler.target if handler.target.startswith("arn:") else f"arn:aws:lambda:{prefix}:{handler.target}"
    target = handler.target
    if handler.type == "http":
        parts = urlsplit(target)
        target = f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"
    return f"arn:chimevoice:{handler.type}:{prefix}:{target}"
