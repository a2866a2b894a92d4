"""The aws_local section (docs/configuration.md#aws_local): defaults, file:line errors, and the
environment handlers get from it (an application's own environment wins)."""
from __future__ import annotations

from pathlib import Path

import pytest

from chimevoice.config import AwsLocalConfig, ConfigError, parse_config
from chimevoice.daemon import handler_config

APP = """
sip_media_applications:
  - id: app-1
    handler:
      type: python
      target: index:handler
      environment:
        AWS_ENDPOINT_URL_S3: http://127.0.0.1:9999
        CALL_TABLE: t
"""


def parse(text: str):
    return parse_config(text, base_dir=Path("/tmp"), source="c.yaml")


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse(text)
    return str(exc.value).splitlines()


def test_absent_is_off_and_present_is_on():
    assert parse("data_dir: /tmp/x\n").aws_local == AwsLocalConfig()
    assert not AwsLocalConfig().enabled
    local = parse("aws_local: {}\n").aws_local
    assert local.enabled and local.dynamodb_listen == ("127.0.0.1", 4567) and local.s3_listen == ("127.0.0.1", 4568)
    assert not parse("aws_local: {enabled: false}\n").aws_local.enabled


def test_tables_and_seed_items():
    local = parse("""
aws_local:
  dynamodb:
    listen: 127.0.0.1:8123
    tables:
      - name: Calls
        hash_key: pk
        range_key: seq
        range_key_type: N
        items:
          - {pk: a, seq: 1, nested: {x: [1, 2.5, true]}}
""").aws_local
    table = local.tables[0]
    assert (table.name, table.hash_key, table.hash_key_type, table.range_key, table.range_key_type) == (
        "Calls", "pk", "S", "seq", "N")
    assert dict(table.items[0]) == {"pk": "a", "seq": 1, "nested": {"x": [1, 2.5, True]}}
    assert local.dynamodb_listen == ("127.0.0.1", 8123)


def test_errors_name_file_line_and_key():
    lines = errors("""aws_local:
  dynamodb:
    tables:
      - name: ok-table
        hash_key: pk
        items:
          - {other: 1}
          - {pk: 5}
      - name: ok-table
        hash_key: pk
      - name: x
        hash_key: pk
        range_key_type: N
  s3:
    listen: 127.0.0.1:4567
  colour: blue
""")
    assert "c.yaml:7: aws_local.dynamodb.tables[0].items[0].pk: the key attribute 'pk' (type S) is missing" in lines
    assert "c.yaml:8: aws_local.dynamodb.tables[0].items[1].pk: the key attribute 'pk' (type S) is not a string" \
        in lines
    assert any(line.startswith("c.yaml:11: aws_local.dynamodb.tables[2].name:") for line in lines), lines
    assert "c.yaml:13: aws_local.dynamodb.tables[2].range_key_type: has no effect without range_key" in lines
    assert any(line.startswith("c.yaml:16: aws_local.colour: unknown key") for line in lines), lines


def test_duplicate_tables_and_ports():
    assert any("duplicate table" in line and line.startswith("c.yaml:6:") for line in errors("""aws_local:
  dynamodb:
    tables:
      - name: same
        hash_key: pk
      - name: same
        hash_key: pk
"""))
    assert errors("aws_local:\n  s3:\n    listen: 127.0.0.1:4567\n") == [
        "c.yaml:2: aws_local.s3.listen: same address and port as dynamodb.listen"]
    assert errors("aws_local:\n  lex_runtime:\n    listen: 127.0.0.1:4569\n") == [
        "c.yaml:2: aws_local.lex_runtime.listen: same address and port as polly.listen"]
    assert errors("aws_local:\n  lex_runtime: {listen: 127.0.0.1:4570, port: 1}\n")
    assert parse("aws_local: {lex_runtime: {listen: '[::1]:5070'}}\n").aws_local.lex_listen == ("::1", 5070)


def test_handlers_get_endpoints_but_their_own_environment_wins(tmp_path):
    cfg = parse("aws_local: {s3: {listen: 127.0.0.1:5001}}\n" + APP)
    env = handler_config(cfg.sip_media_applications[0], tmp_path, cfg).environment
    assert env["AWS_ENDPOINT_URL_DYNAMODB"] == "http://127.0.0.1:4567"
    assert env["AWS_ENDPOINT_URL_POLLY"] == "http://127.0.0.1:4569"
    assert env["AWS_ENDPOINT_URL_LEX_RUNTIME_V2"] == "http://127.0.0.1:4570"   # the name botocore and v3 read
    assert env["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:9999"          # the application's
    assert (env["AWS_ACCESS_KEY_ID"], env["CALL_TABLE"]) == ("chimevoice", "t")
    assert "AWS_ENDPOINT_URL_CHIME" not in env                              # the API is off
    off = parse(APP)
    assert "AWS_ENDPOINT_URL_DYNAMODB" not in handler_config(off.sip_media_applications[0], tmp_path, off).environment


def test_with_the_api_on_handlers_sign_with_its_first_key(tmp_path):
    cfg = parse("""
aws_local: {}
api:
  listen: 127.0.0.1:8090
  access_keys:
    - {access_key_id: AKIDFIRST, secret_access_key: first-secret-0123456789}
    - {access_key_id: AKIDSECOND, secret_access_key: second-secret-0123456789}
""" + APP)
    env = handler_config(cfg.sip_media_applications[0], tmp_path, cfg).environment
    assert env["AWS_ENDPOINT_URL_CHIME_SDK_VOICE"] == env["AWS_ENDPOINT_URL_CHIME"] == "http://127.0.0.1:8090"
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == ("AKIDFIRST", "first-secret-0123456789")
