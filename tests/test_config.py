"""Configuration loading and validation (chimevoice.config)."""

from __future__ import annotations

import dataclasses
import ipaddress
import textwrap
from pathlib import Path

import pytest

from chimevoice.config import (
    Config,
    ConfigError,
    ConfigIssue,
    HandlerSpec,
    Listener,
    load_config,
    parse_config,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "config" / "example.yaml"

# A valid configuration; tests below replace single lines of it. Line numbers matter.
VALID = """\
sip:
  listeners:
    - transport: udp
      address: 127.0.0.1
      port: 5060
voice_connectors:
  - id: vc1
    host_name: VC1.Example.com
    allow_list:
      - 192.0.2.0/24
      - 2001:db8::/32
    phone_numbers:
      - "+15550100000"
sip_media_applications:
  - id: sma1
    handler:
      type: python
      target: pkg.module:handler
  - id: sma2
    aws_region: us-west-2
    handler:
      type: http
      target: https://example.com/hook
sip_rules:
  - id: rule1
    trigger_type: ToPhoneNumber
    trigger_value: "+15550100000"
    target_applications:
      - sip_media_application_id: sma1
        priority: 1
      - sip_media_application_id: sma2
        priority: 2
"""


def replace_line(text: str, line: int, new: str) -> str:
    """Replace 1-based ``line`` of ``text`` (keeping its indentation when ``new`` has none)."""
    lines = text.splitlines()
    old = lines[line - 1]
    indent = old[: len(old) - len(old.lstrip())]
    lines[line - 1] = new if new.startswith(" ") else indent + new
    return "\n".join(lines) + "\n"


def errors(text: str, base_dir: Path = Path("/nonexistent")) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, base_dir=base_dir, source="test.yaml")
    assert all(isinstance(issue, ConfigIssue) for issue in info.value.errors)
    return str(info.value).splitlines()


def assert_error(lines: list[str], prefix: str, *fragments: str) -> None:
    matching = [line for line in lines if line.startswith(prefix)]
    assert matching, f"no error starting with {prefix!r} in:\n" + "\n".join(lines)
    assert any(all(fragment in line for fragment in fragments) for line in matching), matching


# --------------------------------------------------------------------------- valid files


def test_example_yaml_loads() -> None:
    config = load_config(EXAMPLE)
    assert isinstance(config, Config)
    assert config.source == str(EXAMPLE)
    assert config.data_dir == (EXAMPLE.parent / ".." / "var").resolve()
    assert config.logging.level == "info" and config.logging.format == "json"
    assert config.sip.default_country_code == "1"
    assert config.sip.unanswered_timeout_s == 30
    assert config.sip.no_route_response == 404
    assert [(lst.transport, lst.address, lst.port) for lst in config.sip.listeners] == [
        ("udp", "127.0.0.1", 5060),
        ("tcp", "127.0.0.1", 5060),
    ]
    assert (config.sip.rtp.port_start, config.sip.rtp.port_count) == (20000, 10000)
    (vc,) = config.voice_connectors
    assert vc.host_name == "vc-demo.voiceconnector.chimevoice.local"
    assert vc.allow_list == (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    assert vc.phone_numbers == ("+15550100000", "+15550100001")
    assert vc.credentials is None and vc.encryption is False
    (sma,) = config.sip_media_applications
    assert sma.aws_region == "us-east-1" and sma.aws_account_id == "111122223333"
    assert sma.handler.type == "python"
    assert sma.handler.target == "chimevoice.demo.handler:handler"
    assert dict(sma.handler.environment) == {"GREETING_BUCKET": "demo-prompts"}
    assert (sma.handler.timeout_s, sma.handler.retry_after_s, sma.handler.max_retries) == (20.0, 5.0, 1)
    assert sma.handler.workers == 2
    (rule,) = config.sip_rules
    assert rule.trigger_type == "ToPhoneNumber" and rule.trigger_value == "+15550100000"
    assert config.application(rule.target_applications[0].sip_media_application_id) is sma
    assert config.application("nope") is None
    assert dict(config.buckets) == {"demo-prompts": (EXAMPLE.parent / ".." / "var" / "prompts").resolve()}


def test_valid_config_normalises_values() -> None:
    config = parse_config(VALID, base_dir=Path("/etc/chimevoice"))
    assert config.voice_connectors[0].host_name == "vc1.example.com"
    assert config.sip_rules[0].target_applications[1].sip_media_application_id == "sma2"
    sma2 = config.application("sma2")
    assert sma2 is not None and sma2.aws_region == "us-west-2"
    assert config.voice_connector("vc1") is config.voice_connectors[0]
    assert config.sip_rule("rule1") is config.sip_rules[0]
    assert config.data_dir == Path("/etc/chimevoice/var")
    assert config.source == "<string>"


def test_minimal_config_defaults() -> None:
    config = parse_config("{}", base_dir=Path("/srv"))
    assert config.sip.listeners == (Listener("udp", "0.0.0.0", 5060),)
    assert config.sip.user_agent == "chimevoice"
    assert config.voice_connectors == () and config.sip_rules == () and dict(config.buckets) == {}


def test_dataclasses_are_frozen_with_slots() -> None:
    config = parse_config(VALID, base_dir=Path("/srv"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.sip.no_route_response = 500  # type: ignore[misc]
    assert not hasattr(config.sip, "__dict__")
    with pytest.raises(TypeError):
        config.sip_media_applications[0].handler.environment["X"] = "1"  # type: ignore[index]


def test_lenient_scalars_and_sorting(tmp_path: Path) -> None:
    (tmp_path / "tls").mkdir()
    (tmp_path / "tls" / "cert.pem").write_text("x")
    (tmp_path / "tls" / "key.pem").write_text("x")
    text = textwrap.dedent(
        """\
        data_dir: data
        logging: {level: DEBUG, format: console}
        sip:
          default_country_code: 44
          unanswered_timeout_s: "12.5"
          no_route_response: "480"
          listeners:
            - {transport: UDP, address: "[::1]", port: "5070"}
            - {transport: tls, certificate: tls/cert.pem, private_key: tls/key.pem, verify_client: "true"}
        voice_connectors:
          - id: vc1
            host_name: vc1.example.com.
            allow_list: [10.1.2.3/24]
            encryption: "yes"
            credentials: {username: pbx, password: 1234}
            phone_numbers: ["+442071838750"]
        sip_media_applications:
          - id: sma1
            aws_account_id: 123456789012
            handler:
              type: python
              target: app.main:handler
              environment: {DEBUG: true, COUNT: 3}
              workers: "4"
              python_path: [src]
          - id: sma2
            handler: {type: lambda, target: my-function, endpoint_url: "http://localhost:4566"}
        sip_rules:
          - id: r1
            trigger_type: tophonenumber
            trigger_value: "020 7183 8750"
            target_applications:
              - {sip_media_application_id: sma2, priority: 7}
              - {sip_media_application_id: sma1, priority: "2", aws_region: eu-west-1}
          - id: r2
            trigger_type: RequestUriHostname
            trigger_value: VC1.example.com
            target_applications: [{sip_media_application_id: sma1, priority: 1}]
        buckets:
          my.prompts: /abs/prompts
        """
    )
    (tmp_path / "c.yaml").write_text(text)
    config = load_config(tmp_path / "c.yaml")
    assert config.data_dir == tmp_path / "data"
    assert config.logging.level == "debug" and config.logging.format == "console"
    assert config.sip.default_country_code == "44"
    assert config.sip.unanswered_timeout_s == 12.5
    assert config.sip.no_route_response == 480
    udp, tls = config.sip.listeners
    assert (udp.transport, udp.address, udp.port) == ("udp", "::1", 5070)
    assert (tls.port, tls.address, tls.verify_client) == (5061, "0.0.0.0", True)
    assert tls.certificate == tmp_path / "tls" / "cert.pem"
    vc = config.voice_connectors[0]
    assert vc.host_name == "vc1.example.com" and vc.encryption is True
    assert vc.allow_list == (ipaddress.ip_network("10.1.2.0/24"),)
    assert vc.credentials is not None and vc.credentials.password == "1234" and vc.credentials.realm == "chimevoice"
    assert "1234" not in repr(vc.credentials)
    handler = config.sip_media_applications[0].handler
    assert isinstance(handler, HandlerSpec)
    assert dict(handler.environment) == {"DEBUG": "true", "COUNT": "3"}
    assert handler.workers == 4 and handler.python_path == (tmp_path / "src",)
    assert config.sip_media_applications[0].aws_account_id == "123456789012"
    rule = config.sip_rules[0]
    assert rule.trigger_type == "ToPhoneNumber" and rule.trigger_value == "+442071838750"
    assert [t.priority for t in rule.target_applications] == [2, 7]
    assert rule.target_applications[0].aws_region == "eu-west-1"
    assert config.sip_rules[1].trigger_value == "vc1.example.com"
    assert dict(config.buckets) == {"my.prompts": Path("/abs/prompts")}


# --------------------------------------------------------------------------- error cases


def test_bad_cidr() -> None:
    lines = errors(replace_line(VALID, 11, "- 10.0.0.0/33"))
    assert_error(lines, "test.yaml:11: voice_connectors[0].allow_list[1]: ", "'10.0.0.0/33'", "CIDR")


def test_unknown_key_with_suggestion() -> None:
    lines = errors(replace_line(VALID, 5, "prot: 5060"))
    assert_error(lines, "test.yaml:5: sip.listeners[0].prot: ", "unknown key 'prot'", "did you mean 'port'?")


def test_unknown_top_level_key_with_suggestion() -> None:
    lines = errors(VALID.replace("sip_rules:", "sip_rule:"))
    assert_error(lines, "test.yaml:24: sip_rule: ", "did you mean 'sip_rules'?")


def test_missing_handler_target() -> None:
    text = replace_line(VALID, 18, "# no target")
    lines = errors(text)
    # Reported on the line where the handler mapping starts (its first key).
    assert lines == ["test.yaml:17: sip_media_applications[0].handler.target: required key is missing"]


def test_rule_pointing_at_unknown_application() -> None:
    lines = errors(replace_line(VALID, 31, "- sip_media_application_id: smaa1"))
    assert_error(
        lines,
        "test.yaml:31: sip_rules[0].target_applications[1].sip_media_application_id: ",
        "no sip_media_application has id 'smaa1'",
        "did you mean 'sma1'?",
    )


def test_duplicate_priorities() -> None:
    lines = errors(replace_line(VALID, 32, "priority: 1"))
    assert lines == [
        "test.yaml:32: sip_rules[0].target_applications[1].priority: "
        "priority 1 is already used by sip_rules[0].target_applications[0]"
    ]


def test_tls_listener_without_certificate() -> None:
    text = replace_line(VALID, 3, "- transport: tls")
    lines = errors(text)
    assert_error(lines, "test.yaml:3: sip.listeners[0].certificate: ", "tls listener needs certificate")
    assert_error(lines, "test.yaml:3: sip.listeners[0].private_key: ", "tls listener needs private_key")


def test_tls_listener_certificate_must_exist(tmp_path: Path) -> None:
    (tmp_path / "key.pem").write_text("x")
    text = replace_line(VALID, 3, "- transport: tls")
    text = replace_line(text, 5, "certificate: missing.pem\n      private_key: key.pem")
    lines = errors(text, base_dir=tmp_path)
    assert lines == [f"test.yaml:5: sip.listeners[0].certificate: file not found: {tmp_path / 'missing.pem'}"]
    (tmp_path / "missing.pem").write_text("x")
    config = parse_config(text, base_dir=tmp_path)
    assert config.sip.listeners[0].port == 5061


def test_bad_e164_phone_number() -> None:
    lines = errors(replace_line(VALID, 13, '- "555-0100"'))
    assert_error(lines, "test.yaml:13: voice_connectors[0].phone_numbers[0]: ", "'555-0100'", "E.164")


def test_several_errors_reported_at_once() -> None:
    text = replace_line(VALID, 5, "port: 70000")
    text = replace_line(text, 10, "- 192.0.2.0/99")
    text = replace_line(text, 17, "type: perl")
    text = replace_line(text, 30, "priority: 0")
    with pytest.raises(ConfigError) as info:
        parse_config(text, base_dir=Path("/srv"), source="test.yaml")
    got = [(issue.path, issue.line) for issue in info.value.errors]
    assert got == [
        ("sip.listeners[0].port", 5),
        ("voice_connectors[0].allow_list[0]", 10),
        ("sip_media_applications[0].handler.type", 17),
        ("sip_rules[0].target_applications[0].priority", 30),
    ]
    text_lines = str(info.value).splitlines()
    assert text_lines[0] == "test.yaml:5: sip.listeners[0].port: must be between 1 and 65535, got 70000"
    assert text_lines[2].startswith("test.yaml:17: sip_media_applications[0].handler.type: 'perl' is not one of")
    assert len(text_lines) == 4


def test_rule_trigger_must_belong_to_a_connector() -> None:
    lines = errors(replace_line(VALID, 27, 'trigger_value: "+15550109999"'))
    assert_error(lines, "test.yaml:27: sip_rules[0].trigger_value: ", "+15550109999", "voice connector")
    text = replace_line(VALID, 26, "trigger_type: RequestUriHostname")
    lines = errors(replace_line(text, 27, "trigger_value: vc2.example.com"))
    assert_error(lines, "test.yaml:27: sip_rules[0].trigger_value: ", "not the host_name", "'vc1.example.com'")


def test_rule_trigger_normalised_and_not_a_number() -> None:
    config = parse_config(replace_line(VALID, 27, 'trigger_value: "(555) 010-0000"'), base_dir=Path("/srv"))
    assert config.sip_rules[0].trigger_value == "+15550100000"
    lines = errors(replace_line(VALID, 27, "trigger_value: alice"))
    assert_error(lines, "test.yaml:27: sip_rules[0].trigger_value: ", "'alice' is not a phone number")


def test_duplicate_ids_and_triggers() -> None:
    text = VALID + textwrap.indent(
        textwrap.dedent(
            """\
            - id: sma1
              trigger_type: ToPhoneNumber
              trigger_value: "5550100000"
              target_applications: [{sip_media_application_id: sma1, priority: 1}]
            """
        ),
        "  ",
    )
    lines = errors(text)
    assert_error(lines, "test.yaml:33: sip_rules[1].id: ", "duplicate id 'sma1'", "sip_media_applications[0].id")
    assert_error(lines, "test.yaml:35: sip_rules[1].trigger_value: ", "same trigger as sip_rules[0]")


def test_duplicate_listener_and_yaml_duplicate_key() -> None:
    text = VALID.replace("      port: 5060\n", "      port: 5060\n    - {transport: udp, address: 127.0.0.1}\n", 1)
    lines = errors(text)
    assert lines[0] == "test.yaml:6: sip.listeners[1]: same transport, address and port as sip.listeners[0]"
    lines = errors(replace_line(VALID, 5, "port: 5060\n      port: 5070"))
    assert lines == ["test.yaml:6: sip.listeners[0].port: duplicate key 'port' (first on line 5)"]


def test_handler_rules() -> None:
    text = replace_line(VALID, 18, "target: pkg/module.py")
    assert_error(errors(text), "test.yaml:18: sip_media_applications[0].handler.target: ", "package.module:function")
    text = replace_line(VALID, 18, "target: lambda_function.lambda_handler")
    assert_error(
        errors(text), "test.yaml:18: sip_media_applications[0].handler.target: ", "write lambda_function:lambda_handler"
    )
    text = replace_line(VALID, 23, "target: ftp://example.com/x")
    assert_error(errors(text), "test.yaml:23: sip_media_applications[1].handler.target: ", "http")
    text = replace_line(VALID, 18, "target: pkg.module:handler\n      timeout_s: 5\n      retry_after_s: 5")
    assert_error(errors(text), "test.yaml:20: sip_media_applications[0].handler.retry_after_s: ", "less than")
    text = replace_line(VALID, 18, "target: pkg.module:handler\n      workers: 65")
    assert_error(errors(text), "test.yaml:19: sip_media_applications[0].handler.workers: ", "between 1 and 64")


def test_encryption_needs_tls_listener() -> None:
    text = replace_line(VALID, 13, '- "+15550100000"\n    encryption: true')
    assert_error(errors(text), "test.yaml:14: voice_connectors[0].encryption: ", "tls listener")


def test_bucket_names() -> None:
    lines = errors(VALID + "buckets:\n  My_Bucket: ./x\n  ab: ./y\n")
    assert_error(lines, "test.yaml:34: buckets.My_Bucket: ", "invalid S3 bucket name")
    assert_error(lines, "test.yaml:35: buckets.ab: ", "3 to 63")


def test_yaml_syntax_error_and_empty_file() -> None:
    lines = errors("sip:\n  listeners: [\n")
    assert len(lines) == 1 and lines[0].startswith("test.yaml:3: invalid YAML")
    assert errors("") == ["test.yaml:1: the configuration is empty"]


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.yaml")
    assert str(info.value).startswith(f"{tmp_path / 'absent.yaml'}: cannot read configuration")


# --------------------------------------------------------------------------- speech


def test_speech_defaults_to_local() -> None:
    assert parse_config(VALID, base_dir=Path("/tmp")).speech.engine == "local"


def test_speech_polly_section() -> None:
    cfg = parse_config(VALID + "speech:\n  engine: polly\n  polly:\n    region: eu-west-1\n"
                       "    endpoint_url: http://127.0.0.1:9999\n", base_dir=Path("/tmp"))
    assert (cfg.speech.engine, cfg.speech.polly_region, cfg.speech.polly_endpoint_url) == (
        "polly", "eu-west-1", "http://127.0.0.1:9999")


def test_speech_polly_needs_region() -> None:
    lines = errors(VALID + "speech:\n  engine: polly\n")
    assert_error(lines, "test.yaml:", "speech.engine", "polly: section")
    lines = errors(VALID + "speech:\n  engine: polly\n  polly:\n    endpoint_url: http://x\n")
    assert_error(lines, "test.yaml:", "speech.polly.region", "missing")
    lines = errors(VALID + "speech:\n  engine: espeak\n")
    assert_error(lines, "test.yaml:", "speech.engine")
