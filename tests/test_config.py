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



def test_rtp_timeout_default_and_bounds() -> None:
    assert parse_config("{}", base_dir=Path("/srv")).sip.rtp.timeout_s == 60.0
    off = parse_config("sip: {rtp: {timeout_s: 0}}", base_dir=Path("/srv"))
    assert off.sip.rtp.timeout_s == 0.0
    lines = errors("sip:\n  rtp:\n    stats_interval_s: 10\n    timeout_s: 5\n")
    assert_error(lines, "test.yaml:4: sip.rtp.timeout_s: ", "at least stats_interval_s (10)")
    assert_error(errors("sip: {rtp: {timeout_s: -1}}"), "test.yaml:1: sip.rtp.timeout_s: ")


def test_rtp_realtime_priority_default_off_and_bounds() -> None:
    assert parse_config("{}", base_dir=Path("/srv")).sip.rtp.realtime_priority == 10
    assert parse_config("sip: {rtp: {realtime_priority: 0}}", base_dir=Path("/srv")).sip.rtp.realtime_priority == 0
    assert_error(errors("sip: {rtp: {realtime_priority: 100}}"), "test.yaml:1: sip.rtp.realtime_priority: ")
    assert_error(errors("sip: {rtp: {realtime_priority: high}}"), "test.yaml:1: sip.rtp.realtime_priority: ")


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
    text = replace_line(VALID, 18, "target: lambda_function.lambda_handler")       # Lambda's spelling
    assert parse_config(text, base_dir=Path("/tmp"), source="test.yaml").sip_media_applications[0].handler.target \
        == "lambda_function:lambda_handler"
    text = replace_line(VALID, 18, "target: src/app.handler")
    assert parse_config(text, base_dir=Path("/tmp"), source="test.yaml").sip_media_applications[0].handler.target \
        == "src.app:handler"
    text = replace_line(VALID, 18, "target: index.py")
    assert_error(
        errors(text), "test.yaml:18: sip_media_applications[0].handler.target: ", "Lambda's 'file.function'"
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


# --------------------------------------------------------------------------- origination and pstn

# Line numbers matter: tests below replace single lines.
ORIGINATED = """\
sip:
  listeners:
    - {transport: udp, address: 127.0.0.1}
voice_connectors:
  - id: vc1
    host_name: vc1.example.com
    origination:
      routes:
        - host: SBC1.Example.com
          port: 5070
          protocol: UDP
          priority: 1
          weight: 10
        - {host: "10.0.0.2", protocol: tcp, priority: 2}
      credentials: {username: chime, password: s3cret}
      options_interval_s: 15
pstn:
  voice_connector: vc1
"""

ROUTE = "voice_connectors[0].origination.routes"


def test_origination_and_pstn_parse() -> None:
    from sip_rules.origination import Origination, OriginationCredentials, OriginationRoute

    config = parse_config(ORIGINATED, base_dir=Path("/srv"))
    (vc,) = config.voice_connectors
    assert vc.origination == Origination(
        routes=(
            OriginationRoute("sbc1.example.com", 5070, "udp", 1, 10),
            OriginationRoute("10.0.0.2", 5060, "tcp", 2, 1),
        ),
        credentials=OriginationCredentials("chime", "s3cret", None),
        disabled=False,
        options_interval_s=15.0,
    )
    assert "s3cret" not in repr(vc)
    assert config.pstn is not None and config.pstn.voice_connector == "vc1"
    assert config.pstn_connector() is vc
    assert parse_config(VALID, base_dir=Path("/srv")).voice_connectors[0].origination is None
    assert parse_config(VALID, base_dir=Path("/srv")).pstn_connector() is None


def test_origination_defaults_and_disabled_without_routes() -> None:
    text = replace_line(ORIGINATED, 16, "options_interval_s: 0\n      disabled: true")
    config = parse_config(text, base_dir=Path("/srv"))
    origination = config.voice_connectors[0].origination
    assert origination is not None and origination.disabled and origination.options_interval_s == 0
    text = "\n".join(ORIGINATED.splitlines()[:7] + ["      disabled: yes"]) + "\n"
    origination = parse_config(text, base_dir=Path("/srv")).voice_connectors[0].origination
    assert origination is not None and origination.routes == () and origination.credentials is None
    assert origination.options_interval_s == 30.0


@pytest.mark.parametrize(
    ("line", "new", "prefix", "fragment"),
    [
        (10, "port: 70000", f"test.yaml:10: {ROUTE}[0].port: ", "must be between 1 and 65535, got 70000"),
        (10, "port: 0", f"test.yaml:10: {ROUTE}[0].port: ", "must be between 1 and 65535, got 0"),
        (9, "- host: sip:sbc1.example.com", f"test.yaml:9: {ROUTE}[0].host: ", "without a scheme"),
        (9, "- host: sbc1.example.com:5060", f"test.yaml:9: {ROUTE}[0].host: ", "put the port in the port key"),
        (9, "- host: 10.0.0.256", f"test.yaml:9: {ROUTE}[0].host: ", "not a valid IPv4 address"),
        (9, "- host: bad_host!", f"test.yaml:9: {ROUTE}[0].host: ", "not a valid host name"),
        (9, "- host:", f"test.yaml:9: {ROUTE}[0].host: ", "required key is missing"),
        (11, "protocol: sctp", f"test.yaml:11: {ROUTE}[0].protocol: ", "'sctp' is not one of udp, tcp, tls"),
        (12, "priority: 0", f"test.yaml:12: {ROUTE}[0].priority: ", "must be between 1 and 100, got 0"),
        (12, "priority: 101", f"test.yaml:12: {ROUTE}[0].priority: ", "must be between 1 and 100, got 101"),
        (13, "weight: 0", f"test.yaml:13: {ROUTE}[0].weight: ", "must be between 1 and 100, got 0"),
        (13, "wieght: 10", f"test.yaml:13: {ROUTE}[0].wieght: ", "did you mean 'weight'?"),
        (
            14,
            "- {host: sbc1.example.com., port: 5070}",
            f"test.yaml:14: {ROUTE}[1]: ",
            "same host, port and protocol as routes[0]",
        ),
        (
            11,
            "protocol: tls",
            f"test.yaml:11: {ROUTE}[0].protocol: ",
            "a tls route needs a tls listener in sip.listeners",
        ),
        (
            15,
            "credentials: {username: chime}",
            "test.yaml:15: voice_connectors[0].origination.credentials.password: ",
            "required key is missing",
        ),
        (
            15,
            'credentials: {username: "", password: x}',
            "test.yaml:15: voice_connectors[0].origination.credentials.username: ",
            "must not be empty",
        ),
        (16, "options_interval_s: -1", "test.yaml:16: voice_connectors[0].origination.options_interval_s: ",
         "must be at least 0"),
        (16, "options_interval_s: 15\n      enabled: true", "test.yaml:17: voice_connectors[0].origination.enabled: ",
         "unknown key 'enabled'"),
        (18, "voice_connector: vc2", "test.yaml:18: pstn.voice_connector: ",
         "no voice connector has id 'vc2'; did you mean 'vc1'?"),
    ],
)
def test_origination_messages(line: int, new: str, prefix: str, fragment: str) -> None:
    assert_error(errors(replace_line(ORIGINATED, line, new)), prefix, fragment)


def test_origination_route_count_and_empty_routes() -> None:
    many = "\n".join(f"        - {{host: h{i}.example.com}}" for i in range(20))
    lines = errors(replace_line(ORIGINATED, 14, many))
    assert_error(lines, f"test.yaml:9: {ROUTE}: ", "at most 20 routes allowed, got 21")
    text = "\n".join(ORIGINATED.splitlines()[:7] + ["      routes: []"] + ORIGINATED.splitlines()[14:]) + "\n"
    lines = errors(text)
    assert_error(lines, f"test.yaml:8: {ROUTE}: ", "an enabled origination needs at least one route")


def test_pstn_needs_a_connector_with_routes() -> None:
    lines = errors(VALID + "pstn:\n  voice_connector: vc1\n")
    assert lines == [
        "test.yaml:34: pstn.voice_connector: voice connector 'vc1' has no origination routes "
        "(add voice_connectors[0].origination.routes)"
    ]
    lines = errors(VALID + "pstn:\n  connector: vc1\n")
    assert_error(lines, "test.yaml:34: pstn.connector: ", "unknown key", "did you mean 'voice_connector'?")
    assert_error(lines, "test.yaml:34: pstn.voice_connector: ", "required key is missing")


def test_encrypted_connector_routes_must_use_tls(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    text = replace_line(
        ORIGINATED, 3, "- {transport: tls, address: 127.0.0.1, certificate: cert.pem, private_key: key.pem}"
    )
    text = replace_line(text, 6, "host_name: vc1.example.com\n    encryption: true")
    lines = errors(text, base_dir=tmp_path)
    assert_error(lines, f"test.yaml:12: {ROUTE}[0].protocol: ", "encryption: true", "must use tls, got udp")
    assert_error(lines, f"test.yaml:15: {ROUTE}[1].protocol: ", "must use tls, got tcp")
    text = text.replace("protocol: UDP", "protocol: tls").replace("protocol: tcp", "protocol: TLS")
    config = parse_config(text, base_dir=tmp_path)
    origination = config.voice_connectors[0].origination
    assert origination is not None
    assert [(r.protocol, r.port) for r in origination.routes] == [("tls", 5070), ("tls", 5061)]


def test_example_yaml_commented_origination_is_valid() -> None:
    text = EXAMPLE.read_text()
    start, end = text.index("    # origination:"), text.index("#   voice_connector: vc-demo")
    block = text[start:end] + "#   voice_connector: vc-demo"
    uncommented = (
        block.replace("    # origination:", "    origination:")
        .replace("    #   ", "      ")
        .replace("# pstn:", "pstn:")
        .replace("#   voice_connector", "  voice_connector")
    )
    config = parse_config(text.replace(block, uncommented), base_dir=EXAMPLE.parent)
    connector = config.pstn_connector()
    assert connector is not None and connector.origination is not None
    assert [route.host for route in connector.origination.routes] == ["sbc1.example.com", "10.0.0.2"]


def _tls_listener_config(tmp_path: Path, extra: str) -> Path:
    for name in ("cert.pem", "key.pem", "ca.pem"):
        (tmp_path / name).write_text("x")
    text = VALID.replace("sip:\n  listeners:\n", f"sip:\n  listeners:\n    - {{transport: tls, certificate: cert.pem, "
                                                 f"private_key: key.pem{extra}}}\n", 1)
    assert text != VALID
    (tmp_path / "c.yaml").write_text(text)
    return tmp_path / "c.yaml"


def test_verify_server_follows_ca_list(tmp_path: Path) -> None:
    """A tls listener with ca_list checks origination hosts' certificates unless told not to."""
    assert load_config(_tls_listener_config(tmp_path, "")).sip.listeners[0].verify_server is False
    lst = load_config(_tls_listener_config(tmp_path, ", ca_list: ca.pem")).sip.listeners[0]
    assert lst.verify_server is True and lst.ca_list == tmp_path / "ca.pem"
    lst = load_config(_tls_listener_config(tmp_path, ", ca_list: ca.pem, verify_server: false")).sip.listeners[0]
    assert lst.verify_server is False


def test_verify_server_is_for_tls_listeners_only() -> None:
    text = VALID.replace("sip:\n  listeners:\n",
                         "sip:\n  listeners:\n    - {transport: udp, port: 5070, verify_server: true}\n", 1)
    assert_error(errors(text), "test.yaml:", "verify_server", "tls listeners only")

def test_nodejs_handlers() -> None:
    def handler(text: str) -> HandlerSpec:
        return parse_config(text, base_dir=Path("/srv/cfg"), source="test.yaml").sip_media_applications[0].handler

    node = replace_line(replace_line(VALID, 17, "type: nodejs"), 18, "target: index.handler")
    spec = handler(node)
    assert (spec.type, spec.target, spec.code_dir) == ("nodejs", "index.handler", None)
    # Lambda's runtime names, as a key of their own or as the type
    runtime = replace_line(replace_line(VALID, 17, "runtime: nodejs20.x"), 18, "target: src/app.handler\n"
                           "      code_dir: ./functions/ivr")
    spec = handler(runtime)
    assert (spec.type, spec.target, spec.code_dir) == ("nodejs", "src/app.handler", Path("/srv/cfg/functions/ivr"))
    assert handler(replace_line(node, 17, "type: nodejs18.x")).type == "nodejs"
    assert handler(replace_line(VALID, 17, "runtime: python3.12")).type == "python"
    assert handler(replace_line(node, 18, "target: src/index.ts:handler")).target == "src/index.ts:handler"
    clash = replace_line(VALID, 17, "type: python\n      runtime: nodejs20.x")
    assert_error(errors(clash), "test.yaml:18: sip_media_applications[0].handler.runtime: ", "does not match")
    assert_error(errors(replace_line(node, 18, "target: index")), "test.yaml:18: sip_media_applications[0]"
                 ".handler.target: ", "Lambda's 'file.export'")
    assert_error(errors(replace_line(node, 18, "target: index.js.handler")), "test.yaml:18: ",
                 "write index.handler (or index.js:handler)")
    assert_error(errors(replace_line(VALID, 18, "target: pkg.module:handler\n      code_dir: x")),
                 "test.yaml:19: sip_media_applications[0].handler.code_dir: ", "applies to nodejs handlers only")
    assert_error(errors(replace_line(node, 18, "target: index.handler\n      python_path: [x]")),
                 "test.yaml:19: sip_media_applications[0].handler.python_path: ", "applies to python handlers only")


def test_admission_auth_lockout_is_configurable_and_checked() -> None:
    from chimevoice.config import AdmissionConfig
    assert parse_config("{}", base_dir=Path("/srv")).admission.auth_failures == AdmissionConfig().auth_failures == 10
    c = parse_config("admission:\n  auth_lockout: {failures: 5, window_s: 30, lockout_s: 900}\n", base_dir=Path("/srv"))
    assert (c.admission.auth_failures, c.admission.auth_window_s, c.admission.auth_lockout_s) == (5, 30.0, 900.0)
    assert parse_config("admission: {auth_lockout: off}\n", base_dir=Path("/srv")).admission.auth_failures is None
    with pytest.raises(ConfigError) as info:
        parse_config("admission:\n  auth_lockout: {failures: 0, lockout: 3}\n", base_dir=Path("/srv"))
    text = str(info.value)
    assert "admission.auth_lockout.failures" in text and "admission.auth_lockout.lockout" in text, text
