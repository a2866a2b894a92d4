from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chimevoice.bots import BotSessionStore, create_bot, parse_bot_parameters

from .fake_lex import FakeLex

REPO = Path(__file__).resolve().parents[2]
PIZZA_YAML = REPO / "config" / "bots" / "pizza.yaml"
LOCAL_ARN = "arn:aws:lex:us-east-1:111122223333:bot-alias/LOCALPIZZA/TSTALIASID"
LOCAL_BOTS = {"LOCALPIZZA": PIZZA_YAML}


def action_params(arn: str = LOCAL_ARN, *, attributes: dict | None = None, dialog: str | None = None,
                  welcome: list[dict] | None = None, call_id: str = "call-id-1", **extra: Any) -> dict:
    """StartBotConversation Parameters as a handler would send them."""
    params: dict[str, Any] = {"CallId": call_id, "BotAliasArn": arn, **extra}
    config: dict[str, Any] = {}
    state: dict[str, Any] = {}
    if attributes is not None:
        state["SessionAttributes"] = attributes
    if dialog is not None:
        state["DialogAction"] = {"Type": dialog}
    if state:
        config["SessionState"] = state
    if welcome is not None:
        config["WelcomeMessages"] = welcome
    if config:
        params["Configuration"] = config
    return params


@pytest.fixture
def make_local_bot():
    """``make_local_bot(**action_params kwargs, max_turns=None, store=None)``."""

    def factory(*, max_turns: int | None = None, store: BotSessionStore | None = None, **kw: Any):
        params = parse_bot_parameters(action_params(**kw))
        return create_bot(params, local_bots=LOCAL_BOTS, store=store, max_turns=max_turns)

    return factory


@pytest.fixture
async def fake_lex():
    server = FakeLex()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    """Dummy credentials for boto3; no shared config files are read."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
