"""The public surface of lambda_bridge."""

from __future__ import annotations

import pytest

import lambda_bridge
from lambda_bridge import (
    HandlerConfig,
    HandlerFailed,
    HandlerTimeout,
    HandlerUnreachable,
    InvalidHandlerOutput,
    InvocationError,
    Invoker,
    create_invoker,
)


def test_exports_exactly_the_public_api():
    assert sorted(lambda_bridge.__all__) == sorted(
        [
            "HandlerConfig", "InvocationError", "HandlerTimeout", "HandlerUnreachable",
            "HandlerFailed", "InvalidHandlerOutput", "Invoker", "create_invoker",
        ]
    )
    for name in lambda_bridge.__all__:
        assert hasattr(lambda_bridge, name)


def test_error_kinds_and_fields():
    assert HandlerTimeout("t").kind == "timeout"
    assert HandlerUnreachable("u").kind == "unreachable"
    assert InvalidHandlerOutput("i").kind == "invalid_output"
    failed = HandlerFailed("KeyError", "'CallId'")
    assert failed.kind == "error"
    assert (failed.error_type, failed.error_message) == ("KeyError", "'CallId'")
    assert failed.message == "KeyError: 'CallId'"
    for cls in (HandlerTimeout, HandlerUnreachable, HandlerFailed, InvalidHandlerOutput):
        assert issubclass(cls, InvocationError)
    assert HandlerUnreachable("msg").message == "msg"


def test_config_defaults_follow_the_chime_contract():
    cfg = HandlerConfig(type="python", target="pkg.mod:handler", function_name="sma")
    assert cfg.timeout_s == 20.0 and cfg.retry_after_s == 5.0 and cfg.max_retries == 1
    assert cfg.workers == 2 and cfg.memory_limit_mb == 256
    assert cfg.aws_region == "us-east-1" and cfg.aws_account_id == "111122223333"


def test_config_normalises_yaml_values():
    cfg = HandlerConfig(
        type="python", target="m:f", function_name="sma",
        environment={"PORT": 8080, "DEBUG": True}, python_path=["/srv/app"],
    )
    assert cfg.environment == {"PORT": "8080", "DEBUG": "true"}
    assert cfg.python_path == ("/srv/app",)
    hash(cfg)  # usable as a dict key


@pytest.mark.parametrize(
    "kw",
    [
        {"type": "ruby", "target": "x"},
        {"type": "python", "target": "no_function_part"},
        {"type": "http", "target": "ftp://example.com/"},
        {"type": "python", "target": "m:f", "timeout_s": 0},
        {"type": "python", "target": "m:f", "workers": 0},
        {"type": "python", "target": "m:f", "max_retries": -1},
    ],
)
def test_config_rejects_bad_values(kw):
    with pytest.raises(ValueError):
        HandlerConfig(function_name="sma", **kw)


async def test_create_invoker_types(logger):
    for cfg in (
        HandlerConfig(type="python", target="m:f", function_name="a"),
        HandlerConfig(type="http", target="http://127.0.0.1:1/", function_name="b"),
        HandlerConfig(type="lambda", target="fn", function_name="c"),
    ):
        inv = create_invoker(cfg, logger=logger)
        assert isinstance(inv, Invoker)
        await inv.close()
        with pytest.raises(HandlerUnreachable):
            await inv.invoke({})
