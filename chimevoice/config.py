"""Configuration: YAML file -> validated, frozen dataclasses.

``load_config(path)`` / ``parse_config(text, base_dir=...)`` return a :class:`Config` or raise
:class:`ConfigError` listing *every* problem found as ``FILE:LINE: key.path: message``.
The format is documented in ``docs/configuration.md``; ``config/example.yaml`` is an example.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypeVar
from urllib.parse import urlparse

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from sip_rules import TRIGGER_REQUEST_URI_HOSTNAME, TRIGGER_TO_PHONE_NUMBER, is_e164, normalize_e164
from sip_rules.admission import Limits
from sip_rules.origination import (
    DEFAULT_OPTIONS_INTERVAL_S,
    DEFAULT_PORTS,
    MAX_PRIORITY,
    MAX_WEIGHT,
    PROTOCOLS,
    Origination,
    OriginationCredentials,
    OriginationRoute,
    host_problem,
    normalize_route_host,
    origination_problems,
)

__all__ = [
    "AccessKey",
    "AdmissionConfig",
    "ApiConfig",
    "AwsLocalConfig",
    "DynamoTable",
    "BotsConfig",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "Credentials",
    "HandlerSpec",
    "Listener",
    "LoggingConfig",
    "Origination",
    "OriginationCredentials",
    "OriginationRoute",
    "PstnGateway",
    "RtpConfig",
    "SipConfig",
    "SipMediaApplication",
    "SipRule",
    "TargetApplication",
    "VoiceConnector",
    "load_config",
    "parse_config",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

LOG_LEVELS: Final = ("debug", "info", "warning", "error")
LOG_FORMATS: Final = ("json", "console")
TRANSPORTS: Final = ("udp", "tcp", "tls")
HANDLER_TYPES: Final = ("python", "nodejs", "http", "lambda")
TRIGGER_TYPES: Final = (TRIGGER_TO_PHONE_NUMBER, TRIGGER_REQUEST_URI_HOSTNAME)
MAX_TARGETS: Final = 25


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One configuration problem: key path, 1-based line (None if unknown), message."""

    path: str
    line: int | None
    message: str

    def format(self, source: str) -> str:
        """``FILE:LINE: key.path: message``."""
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(Exception):
    """Invalid configuration; ``errors`` holds every problem found, in file order."""

    def __init__(self, errors: Sequence[ConfigIssue], source: str = "<string>") -> None:
        self.errors: list[ConfigIssue] = list(errors)
        self.source = source
        super().__init__("\n".join(issue.format(source) for issue in self.errors))

    def __str__(self) -> str:
        return "\n".join(issue.format(self.source) for issue in self.errors)


# --------------------------------------------------------------------------- model


def _empty_map() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: str = "info"
    format: str = "json"


@dataclass(frozen=True, slots=True)
class RtpConfig:
    port_start: int = 20000
    port_count: int = 10000
    stats_interval_s: float = 10.0      # how often a live call's RTP totals reach /metrics
    timeout_s: float = 60.0             # an answered leg that receives no RTP this long is hung up (0: never)
    realtime_priority: int = 10         # SCHED_RR priority of pjmedia's conference clock thread (0: off)

    @property
    def port_end(self) -> int:
        """Last port of the range (inclusive)."""
        return self.port_start + self.port_count - 1


@dataclass(frozen=True, slots=True)
class Listener:
    transport: str
    address: str
    port: int
    certificate: Path | None = None
    private_key: Path | None = None
    ca_list: Path | None = None
    verify_client: bool = False
    verify_server: bool = False


DEFAULT_LISTENERS: Final = (Listener("udp", "0.0.0.0", 5060),)


@dataclass(frozen=True, slots=True)
class SipConfig:
    default_country_code: str = "1"
    unanswered_timeout_s: float = 30.0
    no_route_response: int = 404
    listeners: tuple[Listener, ...] = DEFAULT_LISTENERS
    rtp: RtpConfig = RtpConfig()
    user_agent: str = "chimevoice"


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    realm: str = "chimevoice"


@dataclass(frozen=True, slots=True)
class VoiceConnector:
    id: str
    name: str
    host_name: str
    allow_list: tuple[IPNetwork, ...] = ()
    credentials: Credentials | None = None
    phone_numbers: tuple[str, ...] = ()
    encryption: bool = False
    origination: Origination | None = None  # outbound routes (sip_rules.origination), docs/trunks.md


@dataclass(frozen=True, slots=True)
class PstnGateway:
    """The trunk that carries calls to the PSTN (docs/trunks.md)."""

    voice_connector: str
    """Id of the Voice Connector whose origination routes carry CallAndBridge
    ``BridgeEndpointType: PSTN`` legs and API-originated calls."""


@dataclass(frozen=True, slots=True)
class HandlerSpec:
    type: str
    target: str
    environment: Mapping[str, str] = field(default_factory=_empty_map)
    timeout_s: float = 20.0
    retry_after_s: float = 5.0
    max_retries: int = 1
    workers: int = 2
    python_path: tuple[Path, ...] = ()
    memory_limit_mb: int = 256
    endpoint_url: str | None = None
    headers: Mapping[str, str] = field(default_factory=_empty_map)
    target_line: int | None = field(default=None, compare=False)   # of the target key, for later checks
    code_dir: Path | None = None    # nodejs: the task root the handler file is relative to


@dataclass(frozen=True, slots=True)
class SipMediaApplication:
    id: str
    name: str
    handler: HandlerSpec
    aws_region: str = "us-east-1"
    aws_account_id: str = "111122223333"


@dataclass(frozen=True, slots=True)
class TargetApplication:
    sip_media_application_id: str
    priority: int
    aws_region: str | None = None


@dataclass(frozen=True, slots=True)
class SipRule:
    id: str
    name: str
    trigger_type: str
    trigger_value: str
    target_applications: tuple[TargetApplication, ...]


@dataclass(frozen=True, slots=True)
class BotsConfig:
    """StartBotConversation back ends (docs/bots.md): local YAML bots by ``botId`` or
    ``botId/botAliasId``; other bot alias ARNs go to Amazon Lex V2 only with ``allow_lex``."""
    local: Mapping[str, Path] = field(default_factory=_empty_map)
    allow_lex: bool = False
    lex_endpoint_url: str | None = None


@dataclass(frozen=True, slots=True)
class SpeechConfig:
    """Text-to-speech for Speak, SpeakAndGetDigits and bot prompts (docs/speech.md):
    ``local`` (espeak-ng, no cloud) or ``polly`` (Amazon Polly through boto3)."""
    engine: str = "local"
    polly_region: str | None = None
    polly_endpoint_url: str | None = None


@dataclass(frozen=True, slots=True)
class AccessKey:
    """One API credential: SigV4 requests signed with it are accepted (docs/api.md)."""

    access_key_id: str
    """The ``AWS_ACCESS_KEY_ID`` clients use."""
    secret_access_key: str = field(repr=False)
    """The ``AWS_SECRET_ACCESS_KEY`` clients sign with."""


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """The HTTP call-control API (chime-sdk-voice operations, docs/api.md)."""

    listen: tuple[str, int] | None = None
    """Address and port of the API listener; None (no ``listen``): the API is off."""
    region: str = "us-east-1"
    """The region clients sign for (their client's ``region_name``); also in ARNs."""
    account_id: str = "111122223333"
    """The account id in Voice Connector and phone number ARNs."""
    access_keys: tuple[AccessKey, ...] = ()
    """The credentials accepted; at least one when ``listen`` is set."""


@dataclass(frozen=True, slots=True)
class DynamoTable:
    """A DynamoDB table the embedded endpoint creates (docs/aws-local.md), with its seed items."""

    name: str
    hash_key: str
    hash_key_type: str = "S"
    range_key: str | None = None
    range_key_type: str = "S"
    items: tuple[Mapping[str, Any], ...] = ()
    """Plain YAML values (numbers become DynamoDB N, strings S, lists L, mappings M); an item whose
    key is not in the table yet is written at start-up, one that is keeps what was written to it."""


@dataclass(frozen=True, slots=True)
class AwsLocalConfig:
    """The embedded AWS-compatible endpoint (docs/aws-local.md): DynamoDB (dynalite) and S3
    (rclone serve s3 over the ``buckets`` directories), and the ``AWS_ENDPOINT_URL_*`` variables
    handlers get."""

    enabled: bool = False
    dynamodb_listen: tuple[str, int] = ("127.0.0.1", 4567)
    s3_listen: tuple[str, int] = ("127.0.0.1", 4568)
    polly_listen: tuple[str, int] = ("127.0.0.1", 4569)
    access_key_id: str = "chimevoice"
    """The credentials handlers get (when the API is off) and the S3 endpoint accepts."""
    secret_access_key: str = field(default="chimevoice-local-secret", repr=False)
    tables: tuple[DynamoTable, ...] = ()
    """(``polly_listen``: SynthesizeSpeech / DescribeVoices by chimevoice's own text-to-speech.)"""
    lex_listen: tuple[str, int] = ("127.0.0.1", 4570)
    """The Lex V2 runtime over the local bots of ``bots.local`` (HTTP/1.1 and h2c)."""


#: Load shedding for new inbound calls (docs/configuration.md#admission): the admission core's
#: own value (sip_rules.admission.Limits), validated here; ``None`` switches a limit off.
AdmissionConfig = Limits


@dataclass(frozen=True, slots=True)
class Config:
    data_dir: Path
    logging: LoggingConfig = LoggingConfig()
    sip: SipConfig = SipConfig()
    voice_connectors: tuple[VoiceConnector, ...] = ()
    sip_media_applications: tuple[SipMediaApplication, ...] = ()
    sip_rules: tuple[SipRule, ...] = ()
    buckets: Mapping[str, Path] = field(default_factory=_empty_map)
    bots: BotsConfig = BotsConfig()
    speech: SpeechConfig = SpeechConfig()
    api: ApiConfig = ApiConfig()
    aws_local: AwsLocalConfig = AwsLocalConfig()
    source: str = "<string>"
    pstn: PstnGateway | None = None
    admission: AdmissionConfig = AdmissionConfig()
    warnings: tuple[ConfigIssue, ...] = field(default=(), compare=False)
    """What is valid but likely a mistake (check-config prints it, the daemon logs
    ``config_warning``), in file order."""

    def application(self, id: str) -> SipMediaApplication | None:
        """The SIP media application with this id, or None."""
        return next((app for app in self.sip_media_applications if app.id == id), None)

    def voice_connector(self, id: str) -> VoiceConnector | None:
        """The Voice Connector with this id, or None."""
        return next((vc for vc in self.voice_connectors if vc.id == id), None)

    def pstn_connector(self) -> VoiceConnector | None:
        """The Voice Connector of the PSTN gateway (``pstn.voice_connector``), or None."""
        return self.voice_connector(self.pstn.voice_connector) if self.pstn is not None else None

    def sip_rule(self, id: str) -> SipRule | None:
        """The SIP rule with this id, or None."""
        return next((rule for rule in self.sip_rules if rule.id == id), None)


# --------------------------------------------------------------------------- entry points


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a YAML configuration file (relative paths resolve against its folder)."""
    file = Path(path)
    source = str(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue("", None, f"cannot read configuration: {exc}")], source) from exc
    return parse_config(text, base_dir=file.expanduser().resolve().parent, source=source)


def parse_config(text: str, *, base_dir: Path, source: str = "<string>") -> Config:
    """Validate YAML text; relative paths resolve against ``base_dir``."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        message = " ".join(part for part in (exc.context, exc.problem) if part)
        raise ConfigError([ConfigIssue("", line, f"invalid YAML: {message}")], source) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue("", None, f"invalid YAML: {exc}")], source) from exc
    checker = _Checker(Path(base_dir).expanduser().absolute())
    config = checker.root(root, source)
    if checker.issues or config is None:
        raise ConfigError(sorted(checker.issues, key=_issue_order), source)
    if checker.warnings:
        config = dataclasses.replace(config, warnings=tuple(sorted(checker.warnings, key=_issue_order)))
    return config


def _issue_order(issue: ConfigIssue) -> tuple[int, int]:
    return (0, 0) if issue.line is None else (1, issue.line)


# --------------------------------------------------------------------------- validation machinery

_T = TypeVar("_T")


class _Invalid:
    """Marker for a value that failed validation (its error is already recorded)."""

    def __repr__(self) -> str:
        return "<invalid>"


INVALID: Final = _Invalid()
_MISSING: Final = object()
_NULL_TAG = "tag:yaml.org,2002:null"
_SIMPLE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")

Converter = Callable[["_Checker", str, Node], Any]


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _SIMPLE_KEY.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key!r}]"


def _line(node: Node | None) -> int | None:
    return node.start_mark.line + 1 if node is not None else None


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL_TAG


def _suggest(word: str, options: Sequence[str]) -> str:
    lowered = {option.lower(): option for option in options}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return f"; did you mean {lowered[close[0]]!r}?" if close else ""


class _Fields:
    """The keys of one YAML mapping; reports duplicate, unknown and missing keys."""

    def __init__(self, checker: _Checker, node: MappingNode, path: str, allowed: Sequence[str]) -> None:
        self.checker, self.mapping, self.path = checker, node, path
        self.items: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or _is_null(key_node):
                checker.error(path, key_node, "mapping keys must be plain strings")
                continue
            key = key_node.value
            if key in self.items:
                first = _line(self.items[key][0])
                checker.error(_join(path, key), key_node, f"duplicate key {key!r} (first on line {first})")
                continue
            self.items[key] = (key_node, value_node)
            if key not in allowed:
                checker.error(_join(path, key), key_node, f"unknown key {key!r}{_suggest(key, allowed)}")

    def has(self, key: str) -> bool:
        return key in self.items and not _is_null(self.items[key][1])

    def node(self, key: str) -> Node | None:
        return self.items[key][1] if key in self.items else None

    def get(self, key: str, convert: Converter, default: Any = _MISSING) -> Any:
        """Convert the value of ``key``; a missing or null value gives ``default`` (or an error)."""
        if not self.has(key):
            if default is _MISSING:
                self.checker.error(_join(self.path, key), self.node_or_parent(key), "required key is missing")
                return INVALID
            return default
        return convert(self.checker, _join(self.path, key), self.items[key][1])

    def node_or_parent(self, key: str) -> Node:
        return self.items[key][0] if key in self.items else self.mapping


def _ok(*values: Any) -> bool:
    return not any(value is INVALID for value in values)


# ---- scalar converters (checker, path, node) -> value | INVALID


def _scalar(checker: _Checker, path: str, node: Node, what: str) -> Any:
    if not isinstance(node, ScalarNode):
        kind = "a list" if isinstance(node, SequenceNode) else "a mapping"
        checker.error(path, node, f"expected {what}, got {kind}")
        return INVALID
    return checker.construct(node)


def _text(checker: _Checker, path: str, node: Node) -> Any:
    """A non-empty string; other scalars keep their source text (``5060`` -> ``"5060"``)."""
    value = _scalar(checker, path, node, "a string")
    if value is INVALID:
        return INVALID
    text = "" if _is_null(node) else str(node.value).strip()
    if not text:
        checker.error(path, node, "must not be empty")
        return INVALID
    return text


def _ident(checker: _Checker, path: str, node: Node) -> Any:
    value = _text(checker, path, node)
    if value is not INVALID and (len(value) > 256 or any(c.isspace() or ord(c) < 32 for c in value)):
        checker.error(path, node, f"invalid id {value!r}: no spaces, at most 256 characters")
        return INVALID
    return value


def _int(minimum: int | None = None, maximum: int | None = None) -> Converter:
    def convert(checker: _Checker, path: str, node: Node) -> Any:
        value = _scalar(checker, path, node, "an integer")
        if value is INVALID:
            return INVALID
        result: int | None = None
        if isinstance(value, bool):
            result = None
        elif isinstance(value, int):
            result = value
        elif isinstance(value, float) and value.is_integer():
            result = int(value)
        elif isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            result = int(value)
        if result is None:
            checker.error(path, node, f"expected an integer, got {node.value!r}")
            return INVALID
        return _check_range(checker, path, node, result, minimum, maximum)

    return convert


def _float(minimum: float | None = None, maximum: float | None = None, *, exclusive_min: bool = False) -> Converter:
    def convert(checker: _Checker, path: str, node: Node) -> Any:
        value = _scalar(checker, path, node, "a number")
        if value is INVALID:
            return INVALID
        result: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            result = float(value)
        elif isinstance(value, str):
            try:
                result = float(value.strip())
            except ValueError:
                result = None
        if result is None or result != result or result in (float("inf"), float("-inf")):
            checker.error(path, node, f"expected a number, got {node.value!r}")
            return INVALID
        if exclusive_min and minimum is not None and result <= minimum:
            checker.error(path, node, f"must be greater than {minimum:g}, got {result:g}")
            return INVALID
        return _check_range(checker, path, node, result, None if exclusive_min else minimum, maximum)

    return convert


def _check_range(checker: _Checker, path: str, node: Node, value: _T, minimum: Any, maximum: Any) -> Any:
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if minimum is not None and maximum is not None:
            checker.error(path, node, f"must be between {minimum:g} and {maximum:g}, got {value:g}")
        elif minimum is not None:
            checker.error(path, node, f"must be at least {minimum:g}, got {value:g}")
        else:
            checker.error(path, node, f"must be at most {maximum:g}, got {value:g}")
        return INVALID
    return value


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _bool(checker: _Checker, path: str, node: Node) -> Any:
    value = _scalar(checker, path, node, "true or false")
    if value is INVALID:
        return INVALID
    if isinstance(value, bool):
        return value
    text = str(node.value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    checker.error(path, node, f"expected true or false, got {node.value!r}")
    return INVALID


def _choice(options: Sequence[str]) -> Converter:
    """One of ``options``, compared case-insensitively; returns the canonical spelling."""

    def convert(checker: _Checker, path: str, node: Node) -> Any:
        value = _text(checker, path, node)
        if value is INVALID:
            return INVALID
        for option in options:
            if option.lower() == value.lower():
                return option
        checker.error(path, node, f"{value!r} is not one of {', '.join(options)}{_suggest(value, options)}")
        return INVALID

    return convert


def _path(checker: _Checker, path: str, node: Node) -> Any:
    value = _text(checker, path, node)
    if value is INVALID:
        return INVALID
    return checker.resolve(value)


def _existing_file(checker: _Checker, path: str, node: Node) -> Any:
    value = _path(checker, path, node)
    if value is not INVALID and not value.is_file():
        checker.error(path, node, f"file not found: {value}")
        return INVALID
    return value


def _url(checker: _Checker, path: str, node: Node) -> Any:
    value = _text(checker, path, node)
    if value is INVALID:
        return INVALID
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        checker.error(path, node, f"expected an http:// or https:// URL, got {value!r}")
        return INVALID
    return value


def _list(item: Converter, *, minimum: int = 0, maximum: int | None = None) -> Converter:
    def convert(checker: _Checker, path: str, node: Node) -> Any:
        if not isinstance(node, SequenceNode):
            checker.error(path, node, "expected a list")
            return INVALID
        if len(node.value) < minimum:
            checker.error(path, node, f"needs at least {minimum} entr{'y' if minimum == 1 else 'ies'}")
            return INVALID
        if maximum is not None and len(node.value) > maximum:
            checker.error(path, node, f"at most {maximum} entries allowed, got {len(node.value)}")
            return INVALID
        values = [item(checker, _join(path, index), child) for index, child in enumerate(node.value)]
        return tuple(values) if _ok(*values) else INVALID

    return convert


def _string_map(key_pattern: re.Pattern[str], key_hint: str) -> Converter:
    """A mapping of names to strings; scalar values keep their source text."""

    def convert(checker: _Checker, path: str, node: Node) -> Any:
        if not isinstance(node, MappingNode):
            checker.error(path, node, "expected a mapping of names to strings")
            return INVALID
        result: dict[str, str] = {}
        valid = True
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or not key_pattern.fullmatch(key_node.value):
                checker.error(path, key_node, f"invalid name {getattr(key_node, 'value', '?')!r}: {key_hint}")
                valid = False
                continue
            key = key_node.value
            entry = _join(path, key)
            if key in result:
                checker.error(entry, key_node, f"duplicate key {key!r}")
                valid = False
                continue
            if _is_null(value_node):
                checker.error(entry, value_node, 'value must be a string (write "" for an empty one)')
                valid = False
                continue
            value = _scalar(checker, entry, value_node, "a string")
            if value is INVALID:
                valid = False
                continue
            result[key] = value_node.value
        return MappingProxyType(result) if valid else INVALID

    return convert


def _mapping(checker: _Checker, path: str, node: Node, allowed: Sequence[str]) -> _Fields | None:
    if not isinstance(node, MappingNode):
        checker.error(path, node, "expected a mapping")
        return None
    return _Fields(checker, node, path, allowed)


# ---- value rules

_LAMBDA_RUNTIME = re.compile(r"(nodejs|python)(?:\d+(?:\.\d+|\.x)?)?")
# Lambda's "dir/file.export" (export may be nested: file.a.b) or "dir/file.ext:export"
_NODE_TARGET = re.compile(r"(?:[\w.@-]+/)*[\w@-]+\.[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*"
                          r"|(?:[\w.@-]+/)*[\w.@-]+:[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*")
_PYTHON_TARGET = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_COUNTRY_CODE = re.compile(r"[1-9][0-9]{0,2}")
_ACCOUNT_ID = re.compile(r"[0-9]{12}")


def _valid_host_name(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        pass
    return 0 < len(host) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in host.split("."))


def _bucket_name_problem(name: str) -> str | None:
    if not 3 <= len(name) <= 63:
        return "must be 3 to 63 characters long"
    if not _BUCKET_NAME.fullmatch(name):
        return "use lowercase letters, digits, dots and hyphens; begin and end with a letter or digit"
    if ".." in name:
        return "must not contain two adjacent dots"
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", name):
        return "must not be formatted as an IP address"
    return None


# --------------------------------------------------------------------------- the checker

_TOP_KEYS = ("data_dir", "logging", "sip", "voice_connectors", "sip_media_applications", "sip_rules", "pstn", "buckets",
             "bots", "speech", "api", "aws_local", "admission")
_AWS_LOCAL_KEYS = ("enabled", "dynamodb", "s3", "polly", "lex_runtime", "access_key_id", "secret_access_key")
_DYNAMODB_KEYS = ("listen", "tables")
_S3_KEYS = ("listen",)
_TABLE_KEYS = ("name", "hash_key", "hash_key_type", "range_key", "range_key_type", "items")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_KEY_TYPES = ("S", "N", "B")
_KEY_PYTHON_TYPES: Final[dict[str, tuple[type, ...]]] = {"S": (str,), "N": (int, float), "B": (str, bytes)}
_ADMISSION_KEYS = ("max_calls_per_second", "burst", "max_concurrent_calls", "per_source", "auth_lockout")
_PER_SOURCE_KEYS = ("rate", "burst")
_AUTH_LOCKOUT_KEYS = ("failures", "window_s", "lockout_s")
_SPEECH_KEYS = ("engine", "polly")
_POLLY_KEYS = ("region", "endpoint_url")
_API_KEYS = ("listen", "region", "account_id", "access_keys")
_ACCESS_KEY_KEYS = ("access_key_id", "secret_access_key")
_ACCESS_KEY_ID = re.compile(r"[A-Za-z0-9_]{1,128}")
MIN_SECRET_LENGTH: Final = 16
_BOTS_KEYS = ("local", "allow_lex", "lex_endpoint_url")
# botId or botId/botAliasId, as in arn:aws:lex:<region>:<account>:bot-alias/<botId>/<botAliasId>
_BOT_KEY = re.compile(r"[0-9A-Za-z_-]{1,100}(/[0-9A-Za-z_-]{1,100})?")
_LEX_BOT_ID = re.compile(r"[0-9A-Za-z]{10}")    # botocore lexv2-runtime BotIdentifier: min = max = 10
_LOGGING_KEYS = ("level", "format")
_SIP_KEYS = ("default_country_code", "unanswered_timeout_s", "no_route_response", "listeners", "rtp", "user_agent")
_LISTENER_KEYS = ("transport", "address", "port", "certificate", "private_key", "ca_list", "verify_client",
                  "verify_server")
_SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")   # Debian's ca-certificates
_RTP_KEYS = ("port_start", "port_count", "stats_interval_s", "timeout_s", "realtime_priority")
_VC_KEYS = ("id", "name", "host_name", "allow_list", "credentials", "phone_numbers", "encryption", "origination")
_ORIGINATION_KEYS = ("disabled", "routes", "credentials", "options_interval_s")
_ROUTE_KEYS = ("host", "port", "protocol", "priority", "weight")
_PSTN_KEYS = ("voice_connector",)
_CREDENTIAL_KEYS = ("username", "password", "realm")
_SMA_KEYS = ("id", "name", "aws_region", "aws_account_id", "handler")
_HANDLER_KEYS = (
    "type",
    "runtime",
    "target",
    "environment",
    "timeout_s",
    "retry_after_s",
    "max_retries",
    "workers",
    "python_path",
    "memory_limit_mb",
    "endpoint_url",
    "headers",
    "code_dir",
)
_RULE_KEYS = ("id", "name", "trigger_type", "trigger_value", "target_applications")
_TARGET_KEYS = ("sip_media_application_id", "priority", "aws_region")


class _Checker:
    """Walks the YAML node tree, builds the dataclasses and records every issue."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.issues: list[ConfigIssue] = []
        self.warnings: list[ConfigIssue] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._ids: dict[str, tuple[str, int | None]] = {}
        self.country = "1"  # sip.default_country_code, once parsed

    # -- helpers

    def error(self, path: str, node: Node | None, message: str) -> None:
        self.issues.append(ConfigIssue(path, _line(node), message))

    def warn(self, path: str, node: Node | None, message: str) -> None:
        """Valid, but likely not what the author meant: kept in ``Config.warnings``."""
        self.warnings.append(ConfigIssue(path, _line(node), message))

    def construct(self, node: ScalarNode) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.YAMLError:
            return node.value

    def resolve(self, value: str) -> Path:
        path = Path(os.path.expanduser(value))
        if not path.is_absolute():
            path = self.base_dir / path
        return Path(os.path.normpath(path))

    def claim_id(self, value: Any, path: str, node: Node | None) -> None:
        """Ids must be unique across connectors, applications and rules."""
        if value is INVALID:
            return
        if value in self._ids:
            other_path, other_line = self._ids[value]
            self.error(path, node, f"duplicate id {value!r} (already used by {other_path} on line {other_line})")
        else:
            self._ids[value] = (path, _line(node))

    # -- sections

    def root(self, node: Node | None, source: str) -> Config | None:
        if node is None or _is_null(node):
            self.issues.append(ConfigIssue("", 1, "the configuration is empty"))
            return None
        fields = _mapping(self, "", node, _TOP_KEYS)
        if fields is None:
            return None
        data_dir = fields.get("data_dir", _path, self.resolve("var"))
        logging_ = fields.get("logging", self.logging_section, LoggingConfig())
        sip = fields.get("sip", self.sip_section, SipConfig())
        if isinstance(sip, SipConfig):
            self.country = sip.default_country_code
        errors_before = len(self.issues)
        connectors = fields.get("voice_connectors", _list(self.voice_connector), ())
        connectors_ok = len(self.issues) == errors_before
        applications = fields.get("sip_media_applications", _list(self.application), ())
        application_ids = self._application_ids(fields.node("sip_media_applications"))
        rules = fields.get("sip_rules", _list(self.rule), ())
        buckets = fields.get("buckets", self.buckets_section, MappingProxyType({}))
        bots = fields.get("bots", self.bots_section, BotsConfig())
        speech = fields.get("speech", self.speech_section, SpeechConfig())
        api = fields.get("api", self.api_section, ApiConfig())
        aws_local = fields.get("aws_local", self.aws_local_section, AwsLocalConfig())
        pstn = fields.get("pstn", self.pstn_section, None)
        admission = fields.get("admission", self.admission_section, AdmissionConfig())

        if sip is not INVALID and connectors is not INVALID:
            self.check_encryption(fields.node("voice_connectors"), connectors, sip)
        self.check_connectors(fields.node("voice_connectors"), connectors)
        if sip is not INVALID and connectors is not INVALID:
            self.check_origination(fields.node("voice_connectors"), connectors, sip)
        self.check_pstn(fields.node("pstn"), pstn, fields.node("voice_connectors"), connectors)
        self.check_rules(fields.node("sip_rules"), connectors, application_ids, connectors_ok)
        if api is INVALID:
            return None

        if not _ok(data_dir, logging_, sip, connectors, applications, rules, buckets, bots, speech, pstn, aws_local,
                   admission):
            return None
        return Config(
            data_dir=data_dir,
            logging=logging_,
            sip=sip,
            voice_connectors=connectors,
            sip_media_applications=applications,
            sip_rules=rules,
            buckets=buckets,
            bots=bots,
            speech=speech,
            api=api,
            aws_local=aws_local,
            source=source,
            pstn=pstn,
            admission=admission,
        )

    def admission_section(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _ADMISSION_KEYS)
        if fields is None:
            return INVALID
        d = AdmissionConfig()
        off = self.off_or(_float(0, exclusive_min=True))
        rate = fields.get("max_calls_per_second", off, d.max_calls_per_second)
        burst = fields.get("burst", _int(1, 1_000_000), d.burst)
        concurrent = fields.get("max_concurrent_calls", self.off_or(_int(1, 1_000_000)), d.max_concurrent_calls)
        per_source = fields.get("per_source", self.per_source_section, (d.per_source_rate, d.per_source_burst))
        lockout = fields.get("auth_lockout", self.off_or(self.auth_lockout_section),
                             (d.auth_failures, d.auth_window_s, d.auth_lockout_s))
        if not _ok(rate, burst, concurrent, per_source, lockout):
            return INVALID
        if lockout is None:                 # auth_lockout: off
            lockout = (None, d.auth_window_s, d.auth_lockout_s)
        return AdmissionConfig(rate, burst, concurrent, per_source[0], per_source[1], *lockout)

    def auth_lockout_section(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _AUTH_LOCKOUT_KEYS)
        if fields is None:
            return INVALID
        d = AdmissionConfig()
        failures = fields.get("failures", _int(1, 1_000_000), d.auth_failures)
        window = fields.get("window_s", _float(0, exclusive_min=True), d.auth_window_s)
        lockout = fields.get("lockout_s", _float(0, exclusive_min=True), d.auth_lockout_s)
        return (failures, window, lockout) if _ok(failures, window, lockout) else INVALID

    def per_source_section(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _PER_SOURCE_KEYS)
        if fields is None:
            return INVALID
        rate = fields.get("rate", _float(0, exclusive_min=True))
        burst = fields.get("burst", _int(1, 1_000_000), AdmissionConfig().per_source_burst)
        return (rate, burst) if _ok(rate, burst) else INVALID

    @staticmethod
    def off_or(convert: Converter) -> Converter:
        """*convert*, or the word ``off`` for None (a limit switched off)."""
        def check(checker: _Checker, path: str, node: Node) -> Any:
            if isinstance(node, ScalarNode) and node.value == "off":
                return None
            return convert(checker, path, node)
        return check

    def logging_section(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _LOGGING_KEYS)
        if fields is None:
            return INVALID
        level = fields.get("level", _choice(LOG_LEVELS), "info")
        format_ = fields.get("format", _choice(LOG_FORMATS), "json")
        return LoggingConfig(level, format_) if _ok(level, format_) else INVALID

    def sip_section(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _SIP_KEYS)
        if fields is None:
            return INVALID
        country = fields.get("default_country_code", self.country_code, "1")
        timeout = fields.get("unanswered_timeout_s", _float(0, exclusive_min=True), 30.0)
        no_route = fields.get("no_route_response", _int(400, 699), 404)
        listeners = fields.get("listeners", _list(self.listener, minimum=1), DEFAULT_LISTENERS)
        rtp = fields.get("rtp", self.rtp_section, RtpConfig())
        user_agent = fields.get("user_agent", _text, "chimevoice")
        if listeners is not INVALID:
            self.check_listeners(fields.node("listeners"), listeners, rtp)
        if not _ok(country, timeout, no_route, listeners, rtp, user_agent):
            return INVALID
        return SipConfig(country, timeout, no_route, listeners, rtp, user_agent)

    def country_code(self, checker: _Checker, path: str, node: Node) -> Any:
        value = _text(self, path, node)
        if value is INVALID:
            return INVALID
        value = value.lstrip("+")
        if not _COUNTRY_CODE.fullmatch(value):
            self.error(path, node, f'expected a 1-3 digit country code such as "1" or "44", got {node.value!r}')
            return INVALID
        return value

    def listener(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _LISTENER_KEYS)
        if fields is None:
            return INVALID
        transport = fields.get("transport", _choice(TRANSPORTS))
        address = fields.get("address", self.ip_address, "0.0.0.0")
        port = fields.get("port", _int(1, 65535), 5061 if transport == "tls" else 5060)
        certificate = fields.get("certificate", _existing_file, None)
        private_key = fields.get("private_key", _existing_file, None)
        ca_list = fields.get("ca_list", _existing_file, None)
        verify_client = fields.get("verify_client", _bool, False)
        # outbound TLS checks the far end's certificate when a CA list is given (or asked for)
        verify_server = fields.get("verify_server", _bool, ca_list is not None)
        valid = True
        if transport == "tls":
            for key in ("certificate", "private_key"):
                if not fields.has(key):
                    self.error(_join(path, key), node, f"a tls listener needs {key} (a PEM file)")
                    valid = False
            if verify_server is True and ca_list is None:
                if _SYSTEM_CA_BUNDLE.is_file():
                    ca_list = _SYSTEM_CA_BUNDLE
                else:
                    self.error(_join(path, "verify_server"), fields.node("verify_server"),
                               f"verify_server needs ca_list (no system CA bundle at {_SYSTEM_CA_BUNDLE})")
                    valid = False
        elif transport is not INVALID:
            for key in ("certificate", "private_key", "ca_list", "verify_client", "verify_server"):
                if fields.has(key):
                    self.error(_join(path, key), fields.node(key), "applies to tls listeners only")
                    valid = False
        if not valid or not _ok(transport, address, port, certificate, private_key, ca_list, verify_client,
                                verify_server):
            return INVALID
        return Listener(transport, address, port, certificate, private_key, ca_list, verify_client,
                        verify_server)

    def ip_address(self, checker: _Checker, path: str, node: Node) -> Any:
        value = _text(self, path, node)
        if value is INVALID:
            return INVALID
        text = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            self.error(path, node, f"{value!r} is not an IPv4 or IPv6 address")
            return INVALID

    def rtp_section(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _RTP_KEYS)
        if fields is None:
            return INVALID
        start = fields.get("port_start", _int(1024, 65534), 20000)
        count = fields.get("port_count", _int(2, 64512), 10000)
        interval = fields.get("stats_interval_s", _float(0.5), 10.0)
        timeout = fields.get("timeout_s", _float(0), 60.0)
        priority = fields.get("realtime_priority", _int(0, 99), 10)
        if _ok(interval, timeout) and 0 < timeout < interval:
            self.error(_join(path, "timeout_s"), fields.node_or_parent("timeout_s"),
                       f"must be 0 (off) or at least stats_interval_s ({interval:g}): "
                       "silence is noticed only when the RTP totals are sampled")
            return INVALID
        if _ok(start, count) and start + count - 1 > 65535:
            self.error(
                _join(path, "port_count"),
                fields.node_or_parent("port_count"),
                f"range {start}-{start + count - 1} goes past port 65535",
            )
            return INVALID
        return (RtpConfig(start, count, interval, timeout, priority)
                if _ok(start, count, interval, timeout, priority) else INVALID)

    def check_listeners(self, node: Node | None, listeners: tuple[Listener, ...], rtp: Any) -> None:
        if not isinstance(node, SequenceNode):
            return
        seen: dict[tuple[str, str, int], int] = {}
        for index, (listener, item) in enumerate(zip(listeners, node.value, strict=False)):
            key = (listener.transport, listener.address, listener.port)
            path = _join("sip.listeners", index)
            if key in seen:
                self.error(path, item, f"same transport, address and port as sip.listeners[{seen[key]}]")
            else:
                seen[key] = index
            if (
                isinstance(rtp, RtpConfig)
                and listener.transport == "udp"
                and rtp.port_start <= listener.port <= rtp.port_end
            ):
                self.error(
                    _join(path, "port"),
                    item,
                    f"udp port {listener.port} is inside the RTP range {rtp.port_start}-{rtp.port_end}",
                )

    def voice_connector(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _VC_KEYS)
        if fields is None:
            return INVALID
        id_ = fields.get("id", _ident)
        self.claim_id(id_, _join(path, "id"), fields.node("id"))
        name = fields.get("name", _text, id_)
        host = fields.get("host_name", self.host_name)
        allow_list = fields.get("allow_list", _list(self.cidr), ())
        credentials = fields.get("credentials", self.credentials, None)
        numbers = fields.get("phone_numbers", _list(self.phone_number), ())
        encryption = fields.get("encryption", _bool, False)
        origination = fields.get("origination", self.origination, None)
        if numbers is not INVALID:
            seen: set[str] = set()
            for index, number in enumerate(numbers):
                if number in seen:
                    item = fields.node("phone_numbers").value[index]  # type: ignore[union-attr]
                    self.error(_join(_join(path, "phone_numbers"), index), item, f"{number} is listed twice")
                    numbers = INVALID
                    break
                seen.add(number)
        if not _ok(id_, name, host, allow_list, credentials, numbers, encryption, origination):
            return INVALID
        return VoiceConnector(id_, name, host, allow_list, credentials, numbers, encryption, origination)

    # -- origination (outbound routes; the rules live in sip_rules.origination)

    def origination(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _ORIGINATION_KEYS)
        if fields is None:
            return INVALID
        disabled = fields.get("disabled", _bool, False)
        routes = fields.get("routes", _list(self.origination_route), ())
        credentials = fields.get("credentials", self.origination_credentials, None)
        interval = fields.get("options_interval_s", _float(0), DEFAULT_OPTIONS_INTERVAL_S)
        if not _ok(disabled, routes, credentials, interval):
            return INVALID
        origination = Origination(routes, credentials, disabled, interval)
        problems = origination_problems(origination)
        for problem in problems:
            where, at = path, node
            for part in problem.field:
                where = _join(where, part)
                at = _child_node(at, part) or at
            self.error(where, at, problem.message)
        return INVALID if problems else origination

    def origination_route(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _ROUTE_KEYS)
        if fields is None:
            return INVALID
        host = fields.get("host", self.route_host)
        protocol = fields.get("protocol", _choice(PROTOCOLS), "udp")
        port = fields.get("port", _int(1, 65535), DEFAULT_PORTS.get(protocol, 5060))
        priority = fields.get("priority", _int(1, MAX_PRIORITY), 1)
        weight = fields.get("weight", _int(1, MAX_WEIGHT), 1)
        if not _ok(host, protocol, port, priority, weight):
            return INVALID
        return OriginationRoute(host, port, protocol, priority, weight)

    def route_host(self, checker: _Checker, path: str, node: Node) -> Any:
        value = _text(self, path, node)
        if value is INVALID:
            return INVALID
        problem = host_problem(value)
        if problem is not None:
            self.error(path, node, problem)
            return INVALID
        return normalize_route_host(value)

    def origination_credentials(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _CREDENTIAL_KEYS)
        if fields is None:
            return INVALID
        username = fields.get("username", _text)
        password = fields.get("password", _text)
        realm = fields.get("realm", _text, None)
        if not _ok(username, password, realm):
            return INVALID
        return OriginationCredentials(username, password, realm)

    def check_origination(self, node: Node | None, connectors: tuple[VoiceConnector, ...], sip: SipConfig) -> None:
        """A tls route needs a tls listener; an encrypted connector sends over tls only."""
        if not isinstance(node, SequenceNode):
            return
        has_tls = any(listener.transport == "tls" for listener in sip.listeners)
        for index, (connector, item) in enumerate(zip(connectors, node.value, strict=False)):
            if connector.origination is None:
                continue
            routes_node = _child_node(_child_node(item, "origination"), "routes")
            for r_index, route in enumerate(connector.origination.routes):
                path = _join(_join(_join(_join("voice_connectors", index), "origination"), "routes"), r_index)
                route_node = _child_node(routes_node, r_index)
                at = _child_node(route_node, "protocol") or route_node
                if route.protocol == "tls" and not has_tls:
                    self.error(_join(path, "protocol"), at,
                               "a tls route needs a tls listener in sip.listeners (outbound TLS uses its transport)")
                elif connector.encryption and route.protocol != "tls":
                    self.error(_join(path, "protocol"), at,
                               f"the connector has encryption: true, so its routes must use tls, got {route.protocol}")

    def pstn_section(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _PSTN_KEYS)
        if fields is None:
            return INVALID
        connector = fields.get("voice_connector", _ident)
        return INVALID if connector is INVALID else PstnGateway(connector)

    def check_pstn(self, node: Node | None, pstn: Any, connectors_node: Node | None, connectors: Any) -> None:
        """``pstn.voice_connector`` names a configured connector that has origination routes."""
        if not isinstance(pstn, PstnGateway):
            return
        at = _child_node(node, "voice_connector")
        ids = self._application_ids(connectors_node)  # the ids of any list of mappings
        if pstn.voice_connector not in ids:
            self.error("pstn.voice_connector", at, f"no voice connector has id {pstn.voice_connector!r}"
                                                   f"{_suggest(pstn.voice_connector, list(ids))}")
            return
        if not isinstance(connectors, tuple):
            return
        index, connector = next(((i, vc) for i, vc in enumerate(connectors) if vc.id == pstn.voice_connector),
                                (0, None))
        if connector is not None and (connector.origination is None or not connector.origination.routes):
            self.error("pstn.voice_connector", at, f"voice connector {connector.id!r} has no origination routes "
                                                   f"(add voice_connectors[{index}].origination.routes)")

    def host_name(self, checker: _Checker, path: str, node: Node) -> Any:
        value = _text(self, path, node)
        if value is INVALID:
            return INVALID
        host = value.lower().rstrip(".")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if not _valid_host_name(host):
            self.error(path, node, f"{value!r} is not a valid host name")
            return INVALID
        return host

    def cidr(self, checker: _Checker, path: str, node: Node) -> Any:
        value = _text(self, path, node)
        if value is INVALID:
            return INVALID
        try:
            return ipaddress.ip_network(value, strict=False)
        except ValueError:
            self.error(path, node, f"{value!r} is not a valid CIDR block (e.g. 10.24.34.0/32)")
            return INVALID

    def phone_number(self, checker: _Checker, path: str, node: Node) -> Any:
        value = _text(self, path, node)
        if value is INVALID:
            return INVALID
        if not is_e164(value):
            self.error(path, node, f"{value!r} is not an E.164 number ('+' then 2 to 15 digits, e.g. +15550100000)")
            return INVALID
        return value

    def credentials(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _CREDENTIAL_KEYS)
        if fields is None:
            return INVALID
        username = fields.get("username", _text)
        password = fields.get("password", _text)
        realm = fields.get("realm", _text, "chimevoice")
        if not _ok(username, password, realm):
            return INVALID
        return Credentials(username, password, realm)

    def check_encryption(self, node: Node | None, connectors: tuple[VoiceConnector, ...], sip: SipConfig) -> None:
        if not isinstance(node, SequenceNode) or any(lst.transport == "tls" for lst in sip.listeners):
            return
        for index, (connector, item) in enumerate(zip(connectors, node.value, strict=False)):
            if connector.encryption:
                key_node = _key_node(item, "encryption")
                self.error(
                    _join(_join("voice_connectors", index), "encryption"),
                    key_node,
                    "encryption needs a tls listener in sip.listeners",
                )

    def check_connectors(self, node: Node | None, connectors: Any) -> None:
        if connectors is INVALID or not isinstance(node, SequenceNode):
            return
        hosts: dict[str, int] = {}
        numbers: dict[str, int] = {}
        for index, (connector, item) in enumerate(zip(connectors, node.value, strict=False)):
            path = _join("voice_connectors", index)
            if connector.host_name in hosts:
                self.error(
                    _join(path, "host_name"),
                    _key_node(item, "host_name"),
                    f"host name already used by voice_connectors[{hosts[connector.host_name]}]",
                )
            hosts.setdefault(connector.host_name, index)
            for number in connector.phone_numbers:
                if number in numbers:
                    self.error(
                        _join(path, "phone_numbers"),
                        _key_node(item, "phone_numbers"),
                        f"{number} already belongs to voice_connectors[{numbers[number]}]",
                    )
                numbers.setdefault(number, index)

    def application(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _SMA_KEYS)
        if fields is None:
            return INVALID
        id_ = fields.get("id", _ident)
        self.claim_id(id_, _join(path, "id"), fields.node("id"))
        name = fields.get("name", _text, id_)
        region = fields.get("aws_region", _ident, "us-east-1")
        account = fields.get("aws_account_id", self.account_id, "111122223333")
        handler = fields.get("handler", self.handler)
        if not _ok(id_, name, region, account, handler):
            return INVALID
        return SipMediaApplication(id_, name, handler, region, account)

    def account_id(self, checker: _Checker, path: str, node: Node) -> Any:
        value = _text(self, path, node)
        if value is not INVALID and not _ACCOUNT_ID.fullmatch(value):
            self.error(path, node, f"expected 12 digits, got {value!r}")
            return INVALID
        return value

    def handler(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _HANDLER_KEYS)
        if fields is None:
            return INVALID
        type_ = self.handler_type(path, fields)
        target = fields.get("target", _text)
        if _ok(type_, target):
            target = self.check_target(_join(path, "target"), fields.node("target"), type_, target)
        environment = fields.get("environment", _string_map(_ENV_NAME, "letters, digits and _"), MappingProxyType({}))
        timeout = fields.get("timeout_s", _float(0, exclusive_min=True), 20.0)
        retry_after = fields.get("retry_after_s", _float(0, exclusive_min=True), 5.0)
        if _ok(timeout, retry_after) and retry_after >= timeout:
            self.error(
                _join(path, "retry_after_s"),
                fields.node_or_parent("retry_after_s"),
                f"must be less than timeout_s ({timeout:g}), got {retry_after:g}",
            )
            retry_after = INVALID
        max_retries = fields.get("max_retries", _int(0, 10), 1)
        workers = fields.get("workers", _int(1, 64), 2)
        python_path = fields.get("python_path", _list(_path), ())
        memory = fields.get("memory_limit_mb", _int(128, 10240), 256)
        endpoint_url = fields.get("endpoint_url", _url, None)
        headers = fields.get("headers", _string_map(_HEADER_NAME, "a header name"), MappingProxyType({}))
        code_dir = fields.get("code_dir", _path, None)
        valid = True
        if type_ is not INVALID:
            for key, wanted in (("python_path", "python"), ("endpoint_url", "lambda"), ("headers", "http"),
                                ("code_dir", "nodejs")):
                if fields.has(key) and type_ != wanted:
                    self.error(_join(path, key), fields.node(key), f"applies to {wanted} handlers only")
                    valid = False
        values = (
            type_,
            target,
            environment,
            timeout,
            retry_after,
            max_retries,
            workers,
            python_path,
            memory,
            endpoint_url,
            headers,
        )
        if not valid or not _ok(*values, code_dir):
            return INVALID
        return HandlerSpec(*values, target_line=_line(fields.node_or_parent("target")), code_dir=code_dir)

    def handler_type(self, path: str, fields: _Fields) -> Any:
        """``type`` (python, nodejs, http, lambda) or Lambda's ``runtime`` spelling (``nodejs20.x``,
        ``python3.12``; also accepted as a type); when both are given they must agree."""
        def convert(checker: _Checker, key_path: str, node: Node) -> Any:
            value = _text(checker, key_path, node)
            if value is INVALID:
                return INVALID
            m = _LAMBDA_RUNTIME.fullmatch(value.lower())
            if m:
                return m.group(1)
            return _choice(HANDLER_TYPES)(checker, key_path, node)

        if not fields.has("runtime"):
            return fields.get("type", convert)
        runtime = fields.get("runtime", convert)
        if fields.has("type"):
            type_ = fields.get("type", convert)
            if _ok(type_, runtime) and type_ != runtime:
                self.error(_join(path, "runtime"), fields.node("runtime"),
                           f"runtime {runtime!r} does not match type {type_!r} (give one of them)")
                return INVALID
        return runtime

    def check_target(self, path: str, node: Node | None, type_: str, target: str) -> Any:
        if type_ == "python" and not _PYTHON_TARGET.fullmatch(target):
            # Lambda's own spelling, as a function's configuration writes it: "index.handler",
            # "src/app.lambda_handler" (file path without .py, then the function).
            module, dot, function = target.replace("/", ".").rpartition(".")
            if ":" not in target and dot and function != "py" and _PYTHON_TARGET.fullmatch(f"{module}:{function}"):
                return f"{module}:{function}"
            self.error(path, node, f"python target must look like 'package.module:function' or Lambda's "
                                   f"'file.function', got {target!r}")
            return INVALID
        if type_ == "nodejs" and ":" not in target and re.search(r"\.(c|m)?(js|ts)\.", target):
            file, _, export = target.partition(".")
            suffix, _, function = export.partition(".")
            self.error(path, node, f"nodejs target names the file without its suffix, as Lambda does: write "
                                   f"{file}.{function} (or {file}.{suffix}:{function})")
            return INVALID
        if type_ == "nodejs" and not _NODE_TARGET.fullmatch(target):
            self.error(path, node, f"nodejs target must look like Lambda's 'file.export' (index.handler, "
                                   f"src/app.handler) or 'file.ts:export', got {target!r}")
            return INVALID
        if type_ == "http":
            parsed = urlparse(target)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                self.error(path, node, f"http target must be an http:// or https:// URL, got {target!r}")
                return INVALID
        if type_ == "lambda" and any(c.isspace() for c in target):
            self.error(path, node, f"lambda target must be a function name or ARN, got {target!r}")
            return INVALID
        return target

    def _application_ids(self, node: Node | None) -> dict[str, Node]:
        """Ids of the configured applications, also of ones with other errors."""
        ids: dict[str, Node] = {}
        if isinstance(node, SequenceNode):
            for item in node.value:
                id_node = _value_node(item, "id")
                if isinstance(id_node, ScalarNode) and id_node.value.strip():
                    ids.setdefault(id_node.value.strip(), id_node)
        return ids

    def rule(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _RULE_KEYS)
        if fields is None:
            return INVALID
        id_ = fields.get("id", _ident)
        self.claim_id(id_, _join(path, "id"), fields.node("id"))
        name = fields.get("name", _text, id_)
        trigger_type = fields.get("trigger_type", _choice(TRIGGER_TYPES))
        trigger_value = fields.get("trigger_value", _text)
        if _ok(trigger_type, trigger_value):
            trigger_value = self.trigger_value(
                _join(path, "trigger_value"), fields.node("trigger_value"), trigger_type, trigger_value
            )
        targets = fields.get("target_applications", _list(self.target, minimum=1, maximum=MAX_TARGETS))
        if targets is not INVALID:
            targets_path = _join(path, "target_applications")
            targets = self.check_targets(targets_path, fields.node("target_applications"), targets)
        if not _ok(id_, name, trigger_type, trigger_value, targets):
            return INVALID
        return SipRule(id_, name, trigger_type, trigger_value, targets)

    def target(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _TARGET_KEYS)
        if fields is None:
            return INVALID
        application_id = fields.get("sip_media_application_id", _ident)
        priority = fields.get("priority", _int(1, None))
        region = fields.get("aws_region", _ident, None)
        if not _ok(application_id, priority, region):
            return INVALID
        return TargetApplication(application_id, priority, region)

    def check_targets(self, path: str, node: Node | None, targets: tuple[TargetApplication, ...]) -> Any:
        if not isinstance(node, SequenceNode):
            return targets
        valid = True
        priorities: dict[int, int] = {}
        applications: dict[str, int] = {}
        for index, (target, item) in enumerate(zip(targets, node.value, strict=False)):
            entry = _join(path, index)
            if target.priority in priorities:
                first = priorities[target.priority]
                self.error(
                    _join(entry, "priority"),
                    _value_node(item, "priority"),
                    f"priority {target.priority} is already used by {_join(path, first)}",
                )
                valid = False
            priorities.setdefault(target.priority, index)
            if target.sip_media_application_id in applications:
                first = applications[target.sip_media_application_id]
                self.error(
                    _join(entry, "sip_media_application_id"),
                    _value_node(item, "sip_media_application_id"),
                    f"application already listed in {_join(path, first)}",
                )
                valid = False
            applications.setdefault(target.sip_media_application_id, index)
        if not valid:
            return INVALID
        return tuple(sorted(targets, key=lambda target: target.priority))

    def trigger_value(self, path: str, node: Node | None, trigger_type: str, value: str) -> Any:
        normalised = _normalise_trigger(trigger_type, value, self.country)
        if normalised is None and trigger_type == TRIGGER_TO_PHONE_NUMBER:
            self.error(path, node, f"{value!r} is not a phone number (E.164, e.g. +15550100000)")
            return INVALID
        if normalised is None:
            self.error(path, node, f"{value!r} is not a valid host name")
            return INVALID
        return normalised

    def check_rules(
        self,
        node: Node | None,
        connectors: Any,
        application_ids: dict[str, Node],
        connectors_ok: bool,
    ) -> None:
        """Cross-checks of rules against connectors and applications. Works on the YAML nodes,
        so that rules with other errors are checked too."""
        if not isinstance(node, SequenceNode):
            return
        connector_list = connectors if isinstance(connectors, tuple) else ()
        hosts = sorted({vc.host_name for vc in connector_list})
        numbers = {number for vc in connector_list for number in vc.phone_numbers}
        triggers: dict[tuple[str, str], int] = {}
        for index, item in enumerate(node.value):
            path = _join("sip_rules", index)
            type_node, value_node = _value_node(item, "trigger_type"), _value_node(item, "trigger_value")
            trigger: tuple[str, str] | None = None
            if isinstance(type_node, ScalarNode) and isinstance(value_node, ScalarNode) and not _is_null(value_node):
                trigger_type = next((t for t in TRIGGER_TYPES if t.lower() == type_node.value.strip().lower()), None)
                value = _normalise_trigger(trigger_type, value_node.value.strip(), self.country)
                if trigger_type is not None and value is not None:
                    trigger = (trigger_type, value)
            if trigger is not None:
                entry = _join(path, "trigger_value")
                if trigger in triggers:
                    self.error(entry, value_node, f"same trigger as sip_rules[{triggers[trigger]}]")
                triggers.setdefault(trigger, index)
                if connectors_ok and trigger[0] == TRIGGER_TO_PHONE_NUMBER and trigger[1] not in numbers:
                    self.error(entry, value_node, f"{trigger[1]} is not in the phone_numbers of any voice connector")
                if connectors_ok and trigger[0] == TRIGGER_REQUEST_URI_HOSTNAME and trigger[1] not in hosts:
                    self.error(
                        entry,
                        value_node,
                        f"{trigger[1]!r} is not the host_name of any voice connector{_suggest(trigger[1], hosts)}",
                    )
            targets_node = _value_node(item, "target_applications")
            if isinstance(targets_node, SequenceNode):
                for t_index, target in enumerate(targets_node.value):
                    id_node = _value_node(target, "sip_media_application_id")
                    if isinstance(id_node, ScalarNode) and id_node.value.strip() not in application_ids:
                        self.error(
                            _join(_join(_join(path, "target_applications"), t_index), "sip_media_application_id"),
                            id_node,
                            f"no sip_media_application has id {id_node.value!r}"
                            f"{_suggest(id_node.value, list(application_ids))}",
                        )

    def buckets_section(self, checker: _Checker, path: str, node: Node) -> Any:
        if not isinstance(node, MappingNode):
            self.error(path, node, "expected a mapping of bucket names to directories")
            return INVALID
        result: dict[str, Path] = {}
        valid = True
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.error(path, key_node, "bucket names must be strings")
                valid = False
                continue
            name = key_node.value
            entry = _join(path, name)
            problem = _bucket_name_problem(name)
            if problem:
                self.error(entry, key_node, f"invalid S3 bucket name {name!r}: {problem}")
                valid = False
            if name in result:
                self.error(entry, key_node, f"duplicate bucket {name!r}")
                valid = False
            if _is_null(value_node):
                self.error(entry, value_node, "needs a directory path")
                valid = False
                continue
            directory = _path(self, entry, value_node)
            if directory is INVALID:
                valid = False
                continue
            result[name] = directory
        return MappingProxyType(result) if valid else INVALID


    def api_section(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _API_KEYS)
        if fields is None:
            return INVALID
        listen = fields.get("listen", self.listen_address, None)
        region = fields.get("region", _ident, "us-east-1")
        account = fields.get("account_id", self.account_id, "111122223333")
        keys = fields.get("access_keys", _list(self.access_key), ())
        if isinstance(keys, tuple):
            seen: dict[str, int] = {}
            for index, key in enumerate(keys):
                if key.access_key_id in seen:
                    item = fields.node("access_keys").value[index]  # type: ignore[union-attr]
                    self.error(_join(_join(_join(path, "access_keys"), index), "access_key_id"),
                               _value_node(item, "access_key_id"),
                               f"duplicate access key id (first in {path}.access_keys[{seen[key.access_key_id]}])")
                    keys = INVALID
                    break
                seen[key.access_key_id] = index
        if listen not in (None, INVALID) and keys == ():
            self.error(_join(path, "access_keys"), fields.node_or_parent("access_keys"),
                       "the API needs at least one access key (requests are SigV4-signed)")
            keys = INVALID
        if not _ok(listen, region, account, keys):
            return INVALID
        return ApiConfig(listen, region, account, keys)

    def aws_local_section(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _AWS_LOCAL_KEYS)
        if fields is None:
            return INVALID
        default = AwsLocalConfig()
        enabled = fields.get("enabled", _bool, True)
        dynamodb = fields.get("dynamodb", self.aws_dynamodb, (default.dynamodb_listen, ()))
        s3 = fields.get("s3", self.aws_s3, default.s3_listen)
        polly = fields.get("polly", self.aws_polly, default.polly_listen)
        lex = fields.get("lex_runtime", self.aws_lex_runtime, default.lex_listen)
        key_id = fields.get("access_key_id", _text, default.access_key_id)
        if key_id is not INVALID and not _ACCESS_KEY_ID.fullmatch(key_id):
            self.error(_join(path, "access_key_id"), fields.node("access_key_id"), "use 1 to 128 letters, digits and _")
            key_id = INVALID
        secret = fields.get("secret_access_key", _text, default.secret_access_key)
        if not _ok(enabled, dynamodb, s3, polly, lex, key_id, secret):
            return INVALID
        seen: dict[tuple[str, int], str] = {}
        for name, address in (("dynamodb", dynamodb[0]), ("s3", s3), ("polly", polly), ("lex_runtime", lex)):
            if address in seen:
                self.error(_join(_join(path, name), "listen"), fields.node_or_parent(name),
                           f"same address and port as {seen[address]}.listen")
                return INVALID
            seen[address] = name
        return AwsLocalConfig(enabled, dynamodb[0], s3, polly, key_id, secret, dynamodb[1], lex_listen=lex)

    def aws_dynamodb(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _DYNAMODB_KEYS)
        if fields is None:
            return INVALID
        listen = fields.get("listen", self.listen_address, AwsLocalConfig().dynamodb_listen)
        tables = fields.get("tables", _list(self.dynamo_table), ())
        if isinstance(tables, tuple):
            seen: dict[str, int] = {}
            for index, table in enumerate(tables):
                if table.name in seen:
                    item = fields.node("tables").value[index]  # type: ignore[union-attr]
                    self.error(_join(_join(_join(path, "tables"), index), "name"), _value_node(item, "name"),
                               f"duplicate table (first in {path}.tables[{seen[table.name]}])")
                    tables = INVALID
                    break
                seen[table.name] = index
        return (listen, tables) if _ok(listen, tables) else INVALID

    def aws_s3(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _S3_KEYS)
        if fields is None:
            return INVALID
        return fields.get("listen", self.listen_address, AwsLocalConfig().s3_listen)

    def aws_polly(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _S3_KEYS)
        if fields is None:
            return INVALID
        return fields.get("listen", self.listen_address, AwsLocalConfig().polly_listen)

    def aws_lex_runtime(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _S3_KEYS)
        if fields is None:
            return INVALID
        return fields.get("listen", self.listen_address, AwsLocalConfig().lex_listen)

    def dynamo_table(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _TABLE_KEYS)
        if fields is None:
            return INVALID
        name = fields.get("name", _text)
        if name is not INVALID and not _TABLE_NAME.fullmatch(name):
            self.error(_join(path, "name"), fields.node("name"),
                       "a DynamoDB table name: 3 to 255 letters, digits, '_', '-' and '.'")
            name = INVALID
        hash_key = fields.get("hash_key", _text)
        hash_type = fields.get("hash_key_type", _choice(_KEY_TYPES), "S")
        range_key = fields.get("range_key", _text, None)
        range_type = fields.get("range_key_type", _choice(_KEY_TYPES), "S")
        if range_key is None and fields.has("range_key_type"):
            self.error(_join(path, "range_key_type"), fields.node("range_key_type"), "has no effect without range_key")
            range_type = INVALID
        if not _ok(name, hash_key, hash_type, range_key, range_type):
            return INVALID
        keys = {hash_key: hash_type, **({range_key: range_type} if range_key else {})}
        items = fields.get("items", _list(self.seed_item(keys)), ())
        if items is INVALID:
            return INVALID
        return DynamoTable(name, hash_key, hash_type, range_key, range_type, items)

    def seed_item(self, keys: Mapping[str, str]) -> Converter:
        """A mapping of attribute names to plain values that holds the table's key attributes."""
        def convert(checker: _Checker, path: str, node: Node) -> Any:
            if not isinstance(node, MappingNode) or not node.value:
                self.error(path, node, "expected a mapping of attribute names to values")
                return INVALID
            item = self._constructor.construct_object(node, deep=True)
            if not isinstance(item, dict) or not all(isinstance(k, str) for k in item):
                self.error(path, node, "attribute names must be strings")
                return INVALID
            for key, key_type in keys.items():
                value = item.get(key)
                wanted = _KEY_PYTHON_TYPES[key_type]
                if value is None or isinstance(value, bool) or not isinstance(value, wanted) or value == "":
                    where = _value_node(node, key)
                    self.error(_join(path, key), where or node,
                               f"the key attribute {key!r} (type {key_type}) is "
                               + ("missing" if where is None else f"not a {'number' if key_type == 'N' else 'string'}"))
                    return INVALID
            return MappingProxyType(item)
        return convert

    def listen_address(self, checker: _Checker, path: str, node: Node) -> Any:
        """``ADDRESS:PORT`` (``[v6]:PORT`` for IPv6), the address an IP address."""
        value = _text(self, path, node)
        if value is INVALID:
            return INVALID
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
            self.error(path, node, f"expected ADDRESS:PORT (e.g. 127.0.0.1:8090, [::1]:8090), got {value!r}")
            return INVALID
        text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        try:
            return (str(ipaddress.ip_address(text)), int(port))
        except ValueError:
            self.error(path, node, f"{host!r} is not an IPv4 or IPv6 address")
            return INVALID

    def access_key(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _ACCESS_KEY_KEYS)
        if fields is None:
            return INVALID
        key_id = fields.get("access_key_id", _text)
        if key_id is not INVALID and not _ACCESS_KEY_ID.fullmatch(key_id):
            self.error(_join(path, "access_key_id"), fields.node("access_key_id"),
                       "use 1 to 128 letters, digits and _")
            key_id = INVALID
        secret = fields.get("secret_access_key", _text)
        if secret is not INVALID and len(secret) < MIN_SECRET_LENGTH:
            self.error(_join(path, "secret_access_key"), fields.node("secret_access_key"),
                       f"too short: at least {MIN_SECRET_LENGTH} characters")
            secret = INVALID
        if not _ok(key_id, secret):
            return INVALID
        return AccessKey(key_id, secret)

    def speech_section(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _SPEECH_KEYS)
        if fields is None:
            return INVALID
        engine = fields.get("engine", _choice(("local", "polly")), "local")
        polly = fields.get("polly", self.polly_section, None)
        if engine == "polly" and polly is None:
            self.error(_join(path, "engine"), fields.node("engine"),
                       "engine polly needs a polly: section with at least region")
            return INVALID
        if not _ok(engine, polly):
            return INVALID
        region, endpoint = polly if polly else (None, None)
        return SpeechConfig(engine, region, endpoint)

    def polly_section(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _POLLY_KEYS)
        if fields is None:
            return INVALID
        region = fields.get("region", _ident, None)
        endpoint = fields.get("endpoint_url", _url, None)
        if region is None:
            self.error(_join(path, "region"), node, "missing: the AWS region of Polly, e.g. us-east-1")
            return INVALID
        if not _ok(region, endpoint):
            return INVALID
        return (region, endpoint)

    def bots_section(self, checker: _Checker, path: str, node: Node) -> Any:
        fields = _mapping(self, path, node, _BOTS_KEYS)
        if fields is None:
            return INVALID
        local = fields.get("local", self.local_bots, MappingProxyType({}))
        allow_lex = fields.get("allow_lex", _bool, False)
        endpoint = fields.get("lex_endpoint_url", _url, None)
        if endpoint not in (None, INVALID) and allow_lex is False:
            self.error(_join(path, "lex_endpoint_url"), fields.node("lex_endpoint_url"),
                       "has no effect without allow_lex: true")
            return INVALID
        if not _ok(local, allow_lex, endpoint):
            return INVALID
        return BotsConfig(local, allow_lex, endpoint)

    def local_bots(self, checker: _Checker, path: str, node: Node) -> Any:
        """botId[/botAliasId] -> local bot YAML file, each checked with load_definition."""
        from chimevoice.bots import BotConfigError, load_definition

        if not isinstance(node, MappingNode):
            self.error(path, node, "expected a mapping of bot ids to bot definition files")
            return INVALID
        result: dict[str, Path] = {}
        valid = True
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str) or not _BOT_KEY.fullmatch(key):
                self.error(path, key_node, f"invalid bot id {key!r}: expected botId or botId/botAliasId "
                                           "(letters, digits, '_' and '-')")
                valid = False
                continue
            entry = _join(path, key)
            bot_id = key.split("/")[0]
            if not _LEX_BOT_ID.fullmatch(bot_id):
                self.warn(entry, key_node, f"{bot_id!r} is not a Lex V2 bot id (10 letters and digits): "
                                           "StartBotConversation reaches this bot, but boto3's Lex V2 runtime "
                                           "client refuses the id before it sends RecognizeText, and no bot "
                                           "on AWS has it")
            if key in result:
                self.error(entry, key_node, f"duplicate bot {key!r}")
                valid = False
                continue
            if _is_null(value_node):
                self.error(entry, value_node, "needs the path of a bot definition file")
                valid = False
                continue
            file = _existing_file(self, entry, value_node)
            if file is INVALID:
                valid = False
                continue
            try:
                load_definition(file)
            except BotConfigError as exc:
                self.error(entry, value_node, f"invalid bot definition: {exc}")
                valid = False
                continue
            result[key] = file
        return MappingProxyType(result) if valid else INVALID


def _normalise_trigger(trigger_type: str | None, value: str, country: str) -> str | None:
    if trigger_type == TRIGGER_TO_PHONE_NUMBER:
        return normalize_e164(value, country)
    if trigger_type == TRIGGER_REQUEST_URI_HOSTNAME:
        host = value.lower().rstrip(".")
        return host if _valid_host_name(host) else None
    return None


def _value_node(node: Node, key: str) -> Node | None:
    if isinstance(node, MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                found: Node = value_node
                return found
    return None


def _child_node(node: Node | None, key: str | int) -> Node | None:
    """The value under mapping key ``key`` or the item at list index ``key``, or None."""
    if isinstance(key, int):
        return node.value[key] if isinstance(node, SequenceNode) and 0 <= key < len(node.value) else None
    return _value_node(node, key) if node is not None else None


def _key_node(node: Node, key: str) -> Node:
    if isinstance(node, MappingNode):
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode) and key_node.value == key:
                return key_node
    return node
