"""Start the real daemon on loopback ports and place real calls at it (pjsua2 phone, sipp)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PHONE = Path(__file__).with_name("phone.py")
SIPP_DIR = ROOT / "tests" / "sipp"
HANDLERS = ROOT / "tests" / "handlers"

APP_A = "aaaaaaaa-0000-4000-8000-000000000001"
APP_B = "bbbbbbbb-0000-4000-8000-000000000002"
RULE = "cccccccc-0000-4000-8000-000000000003"
NUMBER = "+15550100000"


def rtp_start(sip_port: int) -> int:
    """The first of 100 RTP ports for a daemon on *sip_port*: spread by the port, and never a
    range that holds the SIP port itself (the config refuses that: a flake when it happened)."""
    start = 30000 + (sip_port % 300) * 100
    return start + 100 if start <= sip_port < start + 100 else start


def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port")


def handler_app(app_id: str, name: str, target: str, env: dict | None = None, **handler) -> dict:
    return {"id": app_id, "name": name, "handler": {
        "type": "python", "target": target, "python_path": [str(HANDLERS)],
        "environment": env or {}, **handler}}


def number_rules(numbers: list[str], app_id: str, id_prefix: str, name: str) -> list[dict]:
    """One ToPhoneNumber SIP rule per number, all to *app_id* (ids ``<id_prefix>-<12 digits>``)."""
    return [{"id": f"{id_prefix}-{i:012d}", "name": f"{name}-{i}", "trigger_type": "ToPhoneNumber",
             "trigger_value": number, "target_applications": [{"sip_media_application_id": app_id, "priority": 1}]}
            for i, number in enumerate(numbers)]


def module_daemon(tmp_path_factory, name: str) -> "Daemon":
    """A Daemon in a fresh work directory with an ``events`` folder for handlers to write to
    (``d.events``); sipp must be installed."""
    if shutil.which("sipp") is None:
        pytest.fail("sipp (Debian package sip-tester) is required; run scripts/bootstrap")
    work = tmp_path_factory.mktemp(name)
    d = Daemon(work, free_port())
    d.events = work / "events"
    d.events.mkdir()
    return d


@dataclass
class Daemon:
    workdir: Path
    port: int
    proc: subprocess.Popen | None = None
    config_path: Path | None = None
    extra_listeners: list[dict] = field(default_factory=list)
    http_port: int | None = None             # serve /metrics and /health there (--http)
    env: dict[str, str] = field(default_factory=dict)   # added to the daemon's environment

    @property
    def prompts(self) -> Path:
        return self.workdir / "prompts"

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    def write_config(self, apps: list[dict], *, rules: list[dict] | None = None,
                     allow: list[str] | None = None, unanswered_timeout_s: float = 30,
                     credentials: dict | None = None, numbers: list[str] | None = None,
                     extra: dict | None = None) -> Path:
        """The daemon's configuration file; *extra* holds more top-level sections (e.g. ``admission``)."""
        vc = {"id": "vc-test", "name": "test trunk", "host_name": "vc-test.voiceconnector.chimevoice.local",
              "allow_list": allow or ["127.0.0.1/32"], "phone_numbers": numbers or [NUMBER, "+15550100009"]}
        if credentials:
            vc["credentials"] = credentials
        cfg = {
            "data_dir": str(self.data),
            "logging": {"level": "info", "format": "json"},
            "sip": {"unanswered_timeout_s": unanswered_timeout_s,
                    "listeners": [{"transport": "udp", "address": "127.0.0.1", "port": self.port},
                                  {"transport": "tcp", "address": "127.0.0.1", "port": self.port},
                                  *self.extra_listeners],
                    "rtp": {"port_start": rtp_start(self.port), "port_count": 100}},
            "voice_connectors": [vc],
            "sip_media_applications": apps,
            "sip_rules": rules if rules is not None else [{
                "id": RULE, "name": "test", "trigger_type": "ToPhoneNumber", "trigger_value": NUMBER,
                "target_applications": [{"sip_media_application_id": apps[0]["id"], "priority": 1}]}],
            "buckets": {"prompts": str(self.prompts)},
            **(extra or {}),
        }
        self.prompts.mkdir(parents=True, exist_ok=True)
        self.config_path = self.workdir / "chimevoice.yaml"
        self.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return self.config_path

    def start(self, timeout: float = 20.0) -> None:
        assert self.config_path is not None
        self.log_path = self.workdir / "daemon.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chimevoice", "run", "-c", str(self.config_path), "--drain-seconds", "1",
             *(["--http", f"127.0.0.1:{self.http_port}"] if self.http_port else [])],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(self.log_path, "w"),
            env={**os.environ, **self.env} if self.env else None)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(e.get("event") == "chimevoice_ready" for e in self.logs()):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited {self.proc.returncode}:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        raise RuntimeError("daemon did not become ready:\n" + self.log_path.read_text()[-3000:])

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def logs(self) -> list[dict]:
        out = []
        try:
            text = self.log_path.read_text()
        except (OSError, AttributeError):
            return out
        for line in text.splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
        return out

    def wait_log(self, event: str, timeout: float = 10.0, **match) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.logs():
                if e.get("event") == event and all(e.get(k) == v for k, v in match.items()):
                    return e
            time.sleep(0.05)
        raise AssertionError(f"no log event {event} {match}; log tail:\n" + self.log_path.read_text()[-3000:])

    def cdrs(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in sorted(self.data.rglob("Amazon-Chime-SMADRs/**/*.json"))]

    def call(self, *, user: str = NUMBER, transport: str = "udp", record: Path | None = None,
             hangup_after: float = 0.0, max_seconds: float = 20.0, dtmf: list[str] = (),
             headers: list[str] = (), port: int | None = None, host: str = "127.0.0.1",
             timeout: float = 40.0, srtp: bool = False, dtmf_method: str = "rfc4733",
             play: Path | None = None, no_telephone_event: bool = False) -> dict:
        uri = f"sip:{user}@{host}:{port or self.port}"
        cmd = [sys.executable, str(PHONE), "--uri", uri, "--transport", transport,
               "--max-seconds", str(max_seconds), "--hangup-after", str(hangup_after)]
        if record:
            cmd += ["--record", str(record)]
        for d in dtmf:
            cmd += ["--dtmf", d]
        if dtmf_method != "rfc4733":
            cmd += ["--dtmf-method", dtmf_method]
        if play:
            cmd += ["--play", str(play)]
        if no_telephone_event:
            cmd.append("--no-telephone-event")
        for h in headers:
            cmd += ["--header", h]
        if srtp:
            cmd.append("--srtp")
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
        lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
        assert lines, f"phone printed no result (rc={res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
        return json.loads(lines[-1])


def sipp(scenario: str | Path, target: str, *, service: str = NUMBER, extra: list[str] = (),
         calls: int = 1, timeout: float = 30.0, bind: str = "127.0.0.1",
         transport: str = "u1", cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run sipp with a scenario file (or a built-in name like ``uac``); returns the process."""
    args = ["sipp", target, "-s", service, "-m", str(calls), "-l", str(calls), "-i", bind, "-p", "0",
            "-t", transport, "-nostdin", "-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_err"]
    if str(scenario).endswith(".xml"):
        args += ["-sf", str(scenario)]
    else:
        args += ["-sn", str(scenario)]
    args += list(extra)
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout + 15, cwd=cwd)


def expect_status_scenario(path: Path, status: int, *, headers: str = "") -> Path:
    """A sipp UAC scenario: INVITE with SDP, optional 100/180, then exactly *status*, ACK."""
    path.write_text(f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="expect {status}">
  <send retrans="500">
    <![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:+15105550101@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
{headers}Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="{status}"/>
  <send>
    <![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:+15105550101@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Content-Length: 0

]]>
  </send>
</scenario>
""")
    return path


def self_signed_cert(directory: Path, *, cn: str = "localhost", san: str | None = None) -> tuple[Path, Path]:
    """(certificate, private key) of a fresh self-signed certificate for CN=*cn* (and a
    subjectAltName such as ``IP:127.0.0.1`` when given), made by openssl in *directory* (for
    TLS listeners of the daemon and the test phone)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    extra = ["-addext", f"subjectAltName={san}"] if san else []
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    f"/CN={cn}", *extra, "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def write_tone(path: Path, freq: float, seconds: float, rate: int = 8000) -> Path:
    from chimevoice.media.analysis import write_tone_wav
    write_tone_wav(path, freq, seconds, rate=rate)
    return path


def metrics(d: "Daemon") -> str:
    """The daemon's /metrics text (it runs with ``http_port``)."""
    return urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}/metrics", timeout=5).read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of ``chimevoice_<name>{labels}`` in /metrics *text* (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"chimevoice_{name}{{{want}}} " if want else f"chimevoice_{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def read_events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def handler_events(path: Path, number: str) -> list[dict]:
    """The events a test handler wrote to *path* (one JSON per line) for calls to *number*."""
    return [e for e in read_events(path) if e["CallDetails"]["Participants"][0]["To"] == number]


def wait_handler_events(path: Path, number: str, last: str = "HANGUP", timeout: float = 10.0) -> list[dict]:
    """Poll :func:`handler_events` until the latest event is *last*; AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        evs = handler_events(path, number)
        if evs and evs[-1]["InvocationEventType"] == last:
            return evs
        time.sleep(0.05)
    raise AssertionError(f"{path.stem} events for {number}: "
                         f"{[e['InvocationEventType'] for e in handler_events(path, number)]}")


os.environ.setdefault("PYTHONUNBUFFERED", "1")


def phone_call(uri: str, *args: str, transport: str = "udp", timeout: float = 30.0) -> dict:
    """Run tests/support/phone.py in calling mode at *uri* (extra phone.py options in *args*); its JSON result."""
    cmd = [sys.executable, str(PHONE), "--uri", uri, "--transport", transport, *args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"phone printed no result (rc={res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    return json.loads(lines[-1])


class ListeningPhone:
    """tests/support/phone.py in answering mode (``--listen``) as a running process.

    ``ListeningPhone(["--ring", "--answer-after", "1"], transport="tcp")`` starts it on a free
    port and waits for its ``{"listening": ...}`` line; ``.port`` / ``.uri(user)`` say where to
    call; ``.result()`` waits for the process and returns its JSON result. Use as a context
    manager (or call ``.close()``) so that a failing test does not leave it running.
    """

    def __init__(self, args: list[str] | tuple[str, ...] = (), *, transport: str = "udp", address: str = "127.0.0.1",
                 timeout: float = 15.0, port: int = 0):
        import threading
        self.transport = transport
        self.address = address
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, str(PHONE), "--listen", f"{address}:{port}", "--transport", transport, *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        self.port = 0
        while time.monotonic() < deadline:
            for ln in list(self.lines):
                if ln.startswith('{"listening"'):
                    self.port = json.loads(ln)["port"]
                    return
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        self.close()
        raise RuntimeError("listening phone did not come up:\n" + "".join(self.lines)[-3000:])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for ln in self.proc.stdout:
            self.lines.append(ln)

    def uri(self, user: str = NUMBER) -> str:
        return f"sip:{user}@{self.address}:{self.port}"

    def result(self, timeout: float = 30.0) -> dict:
        self.proc.wait(timeout)
        self._reader.join(5)
        out = [ln for ln in self.lines if ln.startswith("{") and not ln.startswith('{"listening"')]
        assert out, f"listening phone printed no result (rc={self.proc.returncode}):\n{''.join(self.lines)[-3000:]}"
        assert self.proc.returncode == 0, ''.join(self.lines)[-3000:]
        return json.loads(out[-1])

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> "ListeningPhone":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
