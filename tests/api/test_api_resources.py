"""Get/List operations from the configuration, through boto3, the legacy chime client and the AWS CLI."""
from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
from botocore.exceptions import ClientError

from chimevoice.api.model import LEGACY_SERVICE, SERVICE, load_model, route_of
from chimevoice.api.server import IMPLEMENTED

from .conftest import KEY_ID, OUR_NUMBER, REGION, SECRET, SMA, SMA_LAMBDA, call


async def test_sip_media_applications(api):
    client = api.client()
    listed = (await call(client.list_sip_media_applications))["SipMediaApplications"]
    assert [app["SipMediaApplicationId"] for app in listed] == [SMA, SMA_LAMBDA]
    app = (await call(client.get_sip_media_application, SipMediaApplicationId=SMA_LAMBDA))["SipMediaApplication"]
    assert app["Name"] == "lambda-app"
    assert app["AwsRegion"] == "eu-west-1"
    assert app["SipMediaApplicationArn"] == f"arn:aws:chime:eu-west-1:123456789012:sma/{SMA_LAMBDA}"
    assert app["Endpoints"] == [{"LambdaArn": "arn:aws:lambda:eu-west-1:123456789012:function:my-function"}]
    assert isinstance(app["CreatedTimestamp"], datetime) and app["CreatedTimestamp"].tzinfo is not None
    python_app = listed[0]
    assert python_app["Endpoints"][0]["LambdaArn"] == (
        "arn:chimevoice:python:us-east-1:111122223333:function:chimevoice.demo.handler:handler")


async def test_timestamps_are_the_start_time(start_server, config, control):
    import time

    before = datetime.now(timezone.utc).replace(microsecond=0)
    api = await start_server(config, control, clock=time.time)
    after = datetime.now(timezone.utc)
    vc = (await call(api.client().get_voice_connector, VoiceConnectorId="vc-main"))["VoiceConnector"]
    assert before <= vc["CreatedTimestamp"] <= after
    assert vc["UpdatedTimestamp"] == vc["CreatedTimestamp"]


async def test_paginators_walk_the_pages(api):
    client = api.client()
    pages = await call(lambda: list(client.get_paginator("list_sip_media_applications").paginate(
        PaginationConfig={"PageSize": 1})))
    assert [[app["SipMediaApplicationId"] for app in page["SipMediaApplications"]] for page in pages] == [
        [SMA], [SMA_LAMBDA]]
    first = await call(client.list_sip_rules, MaxResults=1)
    assert len(first["SipRules"]) == 1 and first["NextToken"]
    second = await call(client.list_sip_rules, MaxResults=1, NextToken=first["NextToken"])
    assert "NextToken" not in second
    assert {rule["SipRuleId"] for rule in first["SipRules"] + second["SipRules"]} == {"rule-number", "rule-host"}
    with pytest.raises(client.exceptions.BadRequestException):
        await call(client.list_sip_rules, NextToken="not-a-token")


async def test_max_results_is_validated_by_the_server(api):
    client = api.client(parameter_validation=False)
    with pytest.raises(client.exceptions.BadRequestException) as excinfo:
        await call(client.list_voice_connectors, MaxResults=101)
    assert "'maxResults' failed to satisfy constraint" in excinfo.value.response["Error"]["Message"]


async def test_sip_rules(api):
    client = api.client()
    rule = (await call(client.get_sip_rule, SipRuleId="rule-host"))["SipRule"]
    assert rule["Name"] == "by-host"
    assert (rule["TriggerType"], rule["TriggerValue"], rule["Disabled"]) == (
        "RequestUriHostname", "vc-second.example.com", False)
    assert rule["TargetApplications"] == [
        {"SipMediaApplicationId": SMA_LAMBDA, "Priority": 1, "AwsRegion": "eu-west-1"},
        {"SipMediaApplicationId": SMA, "Priority": 2, "AwsRegion": "us-west-2"}]
    only = (await call(client.list_sip_rules, SipMediaApplicationId=SMA_LAMBDA))["SipRules"]
    assert [r["SipRuleId"] for r in only] == ["rule-host"]
    both = (await call(client.list_sip_rules, SipMediaApplicationId=SMA))["SipRules"]
    assert [r["SipRuleId"] for r in both] == ["rule-number", "rule-host"]
    with pytest.raises(client.exceptions.NotFoundException):
        await call(client.list_sip_rules, SipMediaApplicationId="nope")
    with pytest.raises(client.exceptions.NotFoundException):
        await call(client.get_sip_rule, SipRuleId="nope")


async def test_voice_connectors_and_termination(api):
    client = api.client()
    listed = (await call(client.list_voice_connectors))["VoiceConnectors"]
    assert [vc["VoiceConnectorId"] for vc in listed] == ["vc-main", "vc-second"]
    vc = (await call(client.get_voice_connector, VoiceConnectorId="vc-main"))["VoiceConnector"]
    assert vc["Name"] == "Main trunk"
    assert vc["OutboundHostName"] == "vc-main.example.com"
    assert vc["RequireEncryption"] is False
    assert vc["VoiceConnectorArn"] == "arn:aws:chime:us-east-1:111122223333:vc/vc-main"
    termination = (await call(client.get_voice_connector_termination, VoiceConnectorId="vc-main"))["Termination"]
    assert termination["CidrAllowedList"] == ["192.0.2.0/24", "2001:db8::/32"]
    credentials = await call(client.list_voice_connector_termination_credentials, VoiceConnectorId="vc-main")
    assert credentials["Usernames"] == ["pbx1"]
    assert "secret-password" not in json.dumps(credentials, default=str)
    with pytest.raises(client.exceptions.NotFoundException) as excinfo:
        await call(client.get_voice_connector, VoiceConnectorId="vc-none")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


async def test_origination_is_empty_when_not_configured(api):
    client = api.client()
    response = await call(client.get_voice_connector_origination, VoiceConnectorId="vc-second")
    assert response["Origination"] == {}


async def test_origination_routes(start_server, config, control):
    route = SimpleNamespace(host="203.0.113.5", port=5060, protocol="udp", priority=1, weight=10)
    vc = config.voice_connectors[0]
    fields = {f.name for f in dataclasses.fields(vc)}
    origination = SimpleNamespace(routes=(route,), disabled=False)
    if "origination" in fields:
        vc = dataclasses.replace(vc, origination=origination)
    else:  # before VoiceConnector.origination exists: the API reads it with getattr
        vc = SimpleNamespace(**{f: getattr(vc, f) for f in fields}, origination=origination)
    config = dataclasses.replace(config, voice_connectors=(vc, *config.voice_connectors[1:]))
    api = await start_server(config, control)
    response = await call(api.client().get_voice_connector_origination, VoiceConnectorId="vc-main")
    assert response["Origination"] == {
        "Routes": [{"Host": "203.0.113.5", "Port": 5060, "Protocol": "UDP", "Priority": 1, "Weight": 10}],
        "Disabled": False}


async def test_phone_numbers(api):
    client = api.client()
    numbers = (await call(client.list_phone_numbers))["PhoneNumbers"]
    assert [n["E164PhoneNumber"] for n in numbers] == [OUR_NUMBER, "+15550100001", "+442071838750"]
    assert all(n["PhoneNumberId"] == n["E164PhoneNumber"] for n in numbers)
    first = numbers[0]
    assert first["ProductType"] == "SipMediaApplicationDialIn" and first["Status"] == "Assigned"
    assert {(a["Name"], a["Value"]) for a in first["Associations"]} == {
        ("VoiceConnectorId", "vc-main"), ("SipRuleId", "rule-number")}
    got = (await call(client.get_phone_number, PhoneNumberId=OUR_NUMBER))["PhoneNumber"]
    assert got["E164PhoneNumber"] == OUR_NUMBER
    filtered = (await call(client.list_phone_numbers, FilterName="VoiceConnectorId",
                           FilterValue="vc-second"))["PhoneNumbers"]
    assert [n["E164PhoneNumber"] for n in filtered] == ["+442071838750"]
    voice_only = (await call(client.list_phone_numbers, ProductType="VoiceConnector"))["PhoneNumbers"]
    assert OUR_NUMBER not in [n["E164PhoneNumber"] for n in voice_only]
    with pytest.raises(client.exceptions.NotFoundException):
        await call(client.get_phone_number, PhoneNumberId="+15559999999")
    with pytest.raises(client.exceptions.BadRequestException):
        await call(client.list_phone_numbers, FilterName="VoiceConnectorId")


def test_the_legacy_chime_model_uses_the_same_routes():
    voice, legacy = load_model(SERVICE), load_model(LEGACY_SERVICE)
    shared = [name for name in IMPLEMENTED if name in legacy.operation_names]
    assert "ListPhoneNumbers" in shared and "GetPhoneNumber" in shared
    for name in shared:
        assert route_of(legacy.operation_model(name)) == route_of(voice.operation_model(name)), name
    assert legacy.signing_name == voice.signing_name == "chime"


async def test_the_legacy_chime_client(api):
    client = api.client("chime")
    numbers = (await call(client.list_phone_numbers))["PhoneNumbers"]
    assert OUR_NUMBER in [n["E164PhoneNumber"] for n in numbers]
    got = (await call(client.get_phone_number, PhoneNumberId=OUR_NUMBER))["PhoneNumber"]
    assert got["PhoneNumberId"] == OUR_NUMBER
    # botocore 1.44 dropped the SIP media application operations from the legacy model;
    # older ones have them, on the same paths
    if "CreateSipMediaApplicationCall" in client.meta.service_model.operation_names:
        response = await call(client.create_sip_media_application_call, SipMediaApplicationId=SMA,
                              FromPhoneNumber=OUR_NUMBER, ToPhoneNumber="+15557654321")
        assert response["SipMediaApplicationCall"]["TransactionId"]


async def test_unknown_operations_get_the_aws_error_shape(api):
    client = api.client()
    # a signed request to a path no implemented operation has (DeleteSipRule is DELETE /sip-rules/{id})
    with pytest.raises(ClientError) as excinfo:
        await call(client.delete_sip_rule, SipRuleId="rule-number")
    assert excinfo.value.response["Error"]["Code"] == "UnknownOperationException"
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def _aws_cli() -> list[str] | None:
    beside = Path(sys.executable).with_name("aws")
    if beside.exists():
        return [sys.executable, str(beside)]
    found = shutil.which("aws")
    return [found] if found else None


@pytest.mark.skipif(_aws_cli() is None, reason="the AWS CLI is not installed (pip install awscli)")
async def test_aws_cli_lists_the_configuration(api, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=KEY_ID, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION=REGION,
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
               AWS_EC2_METADATA_DISABLED="true", HOME=str(tmp_path))

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*_aws_cli(), "chime-sdk-voice", *args, "--endpoint-url", api.url, "--output", "json"],
                              env=env, capture_output=True, text=True, timeout=60)

    listed = await asyncio.to_thread(aws, "list-sip-media-applications")
    assert listed.returncode == 0, listed.stderr
    apps = json.loads(listed.stdout)["SipMediaApplications"]
    assert [app["SipMediaApplicationId"] for app in apps] == [SMA, SMA_LAMBDA]
    rules = await asyncio.to_thread(aws, "get-sip-rule", "--sip-rule-id", "rule-number")
    assert json.loads(rules.stdout)["SipRule"]["TriggerValue"] == OUR_NUMBER
    env["AWS_SECRET_ACCESS_KEY"] = "wrong-secret-wrong-secret-wrong-secret-00"
    denied = await asyncio.to_thread(aws, "list-voice-connectors")
    assert denied.returncode != 0
    assert "InvalidSignatureException" in denied.stderr



async def test_a_reloaded_configuration_is_served(start_server, config, control):
    """SIGHUP: the daemon hands the API the new configuration (ApiServer.reload)."""
    from .conftest import CONFIG, make_config
    api = await start_server(config, control)
    client = api.client()
    new_id = "5e6b0d2e-7f5a-4d36-9a3c-1f0c2f8f9a11"
    with pytest.raises(client.exceptions.NotFoundException):
        await call(client.get_sip_media_application, SipMediaApplicationId=new_id)
    added = CONFIG.replace("sip_media_applications:\n", "sip_media_applications:\n"
                           f"  - id: {new_id}\n    name: added-by-reload\n"
                           "    handler: {type: python, target: chimevoice.demo.handler:handler}\n", 1)
    api.server.reload(make_config(added))
    app = (await call(client.get_sip_media_application, SipMediaApplicationId=new_id))["SipMediaApplication"]
    assert app["Name"] == "added-by-reload"
    listed = (await call(client.list_sip_media_applications))["SipMediaApplications"]
    assert new_id in [a["SipMediaApplicationId"] for a in listed]
