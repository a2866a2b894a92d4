"""Fixtures of the API tests: a configuration, an in-memory CallControl stand-in, the real
server on loopback and real boto3 clients talking to it over HTTP."""
from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import pytest

from chimevoice.api import ApiServer, CallControl, CreateCallRequest, UpdateCallRequest
from chimevoice.api.errors import NotFoundException
from chimevoice.config import Config, parse_config

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "us-east-1"
SMA = "4e6b0d2e-7f5a-4d36-9a3c-1f0c2f8f9a10"
SMA_LAMBDA = "sma-lambda"
OUR_NUMBER = "+15550100000"

CONFIG = f"""\
voice_connectors:
  - id: vc-main
    name: Main trunk
    host_name: vc-main.example.com
    allow_list: [192.0.2.0/24, 2001:db8::/32]
    credentials: {{username: pbx1, password: secret-password}}
    phone_numbers: ["{OUR_NUMBER}", "+15550100001"]
  - id: vc-second
    host_name: vc-second.example.com
    phone_numbers: ["+442071838750"]
sip_media_applications:
  - id: {SMA}
    name: demo-ivr
    handler: {{type: python, target: chimevoice.demo.handler:handler}}
  - id: {SMA_LAMBDA}
    name: lambda-app
    aws_region: eu-west-1
    aws_account_id: "123456789012"
    handler: {{type: lambda, target: my-function}}
sip_rules:
  - id: rule-number
    trigger_type: ToPhoneNumber
    trigger_value: "{OUR_NUMBER}"
    target_applications:
      - {{sip_media_application_id: {SMA}, priority: 1}}
  - id: rule-host
    name: by-host
    trigger_type: RequestUriHostname
    trigger_value: vc-second.example.com
    target_applications:
      - {{sip_media_application_id: {SMA_LAMBDA}, priority: 1}}
      - {{sip_media_application_id: {SMA}, priority: 2, aws_region: us-west-2}}
api:
  listen: 127.0.0.1:8090
  region: {REGION}
  access_keys:
    - access_key_id: {KEY_ID}
      secret_access_key: {SECRET}
"""


class FakeCallControl:
    """Stand-in for the call driver: records the typed requests, knows the transactions it made."""

    def __init__(self) -> None:
        self.created: list[CreateCallRequest] = []
        self.updated: list[UpdateCallRequest] = []
        self.transactions: dict[str, str] = {}
        self.fail_with: BaseException | None = None

    async def create_call(self, request: CreateCallRequest) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        self.created.append(request)
        transaction_id = str(uuid.uuid4())
        self.transactions[transaction_id] = request.sip_media_application_id
        return transaction_id

    async def update_call(self, request: UpdateCallRequest) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        if self.transactions.get(request.transaction_id) != request.sip_media_application_id:
            raise NotFoundException(f"Transaction {request.transaction_id} not found.")
        self.updated.append(request)
        return request.transaction_id


def make_config(text: str = CONFIG) -> Config:
    return parse_config(text, base_dir=Path("/tmp"))


@pytest.fixture
def config() -> Config:
    return make_config()


@pytest.fixture
def control() -> FakeCallControl:
    fake = FakeCallControl()
    assert isinstance(fake, CallControl)
    return fake


class Running:
    """A started server: ``url``, and ``client(...)`` making real boto3 clients for it."""

    def __init__(self, server: ApiServer) -> None:
        self.server = server
        self.url = f"http://127.0.0.1:{server.port}"

    def client(self, service: str = "chime-sdk-voice", *, key_id: str = KEY_ID, secret: str = SECRET,
               region: str = REGION, **config: Any) -> Any:
        settings = botocore.config.Config(retries={"total_max_attempts": 1}, **config)
        return boto3.session.Session().client(
            service, endpoint_url=self.url, region_name=region, aws_access_key_id=key_id,
            aws_secret_access_key=secret, config=settings)


ServerFactory = Callable[..., "asyncio.Future[Running]"]


@pytest.fixture
async def start_server() -> AsyncIterator[Callable[..., Any]]:
    """``await start_server(config, control, clock=...)`` -> Running; stopped at teardown."""
    servers: list[ApiServer] = []

    async def start(config: Config, control: CallControl, *, clock: Callable[[], float] = time.time) -> Running:
        server = ApiServer(config, control, clock=clock, listen=("127.0.0.1", 0))
        await server.start()
        servers.append(server)
        return Running(server)

    yield start
    for server in servers:
        await server.stop()


@pytest.fixture
async def api(start_server: Callable[..., Any], config: Config, control: FakeCallControl) -> Running:
    return await start_server(config, control)


async def call(fn: Callable[..., Any], **kwargs: Any) -> Any:
    """Run a blocking boto3 call off the event loop (the server runs on it)."""
    return await asyncio.to_thread(fn, **kwargs)
