"""chimevoice.sdnotify against a notify socket the test creates (what systemd does for Type=notify),
and the unit file's shape (systemd-analyze verify where the machine has it)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from chimevoice.daemon import _loopback
from chimevoice.metrics import Metrics
from chimevoice.sdnotify import Notifier

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "systemd" / "chimevoice.service"


def received(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines())


@pytest.fixture
def listener(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify"
    sock.bind(str(path))
    sock.settimeout(2)
    yield sock, str(path)
    sock.close()


def test_ready_status_reloading_stopping_and_watchdog_datagrams(listener):
    sock, path = listener
    n = Notifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"})
    assert n.enabled and n.watchdog_interval_s == 15.0
    assert n.ready("0 calls active, accepting calls")
    assert received(sock) == {"READY": "1", "STATUS": "0 calls active, accepting calls"}
    n.reloading()
    msg = received(sock)
    assert msg["RELOADING"] == "1" and int(msg["MONOTONIC_USEC"]) > 0
    n.watchdog()
    assert received(sock) == {"WATCHDOG": "1"}
    n.stopping("stopping")
    assert received(sock) == {"STOPPING": "1", "STATUS": "stopping"}
    n.close()


def test_an_abstract_socket_name_starts_with_at(tmp_path):
    name = f"chimevoice-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        assert Notifier.from_env({"NOTIFY_SOCKET": "@" + name}).ready("x")
        assert received(sock)["READY"] == "1"
    finally:
        sock.close()


def test_without_notify_socket_nothing_is_sent_and_watchdog_for_another_pid_is_ignored():
    n = Notifier.from_env({})
    assert not n.enabled and not n.ready("x") and n.watchdog_interval_s is None
    other = Notifier.from_env({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"})
    assert other.watchdog_usec is None
    assert not other.ready("x")          # a socket that is not there: no exception


def test_drain_is_accepted_from_loopback_only():
    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("127.3.4.5")
    assert not _loopback("192.0.2.10") and not _loopback(None) and not _loopback("garbage")


def test_labelled_histograms_render_one_series_per_label_set():
    m = Metrics()
    m.observe("handler_latency_seconds", 0.003, application="a")
    m.observe("handler_latency_seconds", 0.3, application="b")
    m.observe("rtp_jitter_seconds", 0.0015, direction="rx")
    text = m.render()
    assert 'chimevoice_handler_latency_seconds_bucket{application="a",le="0.005"} 1' in text
    assert 'chimevoice_handler_latency_seconds_count{application="b"} 1' in text
    assert 'chimevoice_rtp_jitter_seconds_bucket{direction="rx",le="0.002"} 1' in text   # finer buckets
    assert sum(m.histogram("handler_latency_seconds")) == 2


def test_the_unit_is_type_notify_hardened_and_reloads_with_sighup():
    text = UNIT.read_text()
    settings = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), value.strip())
    assert settings["Type"] == "notify" and settings["NotifyAccess"] == "main"
    assert settings["WatchdogSec"] and settings["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert settings["ProtectSystem"] == "strict" and settings["NoNewPrivileges"] == "yes"
    assert settings["ReadWritePaths"] == "/var/lib/chimevoice" and settings["User"] == "chimevoice"
    assert "CAP_NET_BIND_SERVICE" not in settings.get("AmbientCapabilities", "")   # only for ports < 1024
    assert settings["CapabilityBoundingSet"] == ""
    # the conference clock's SCHED_RR, allowed by the limit up to the default priority only
    assert int(settings["LimitRTPRIO"]) >= 10 and "RestrictRealtime" not in settings


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_unit(tmp_path):
    """The unit as systemd parses it, with its paths pointed at this checkout."""
    exe = tmp_path / "chimevoice"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    unit = tmp_path / "chimevoice.service"
    unit.write_text(UNIT.read_text().replace("/opt/chimevoice/.venv/bin/chimevoice", str(exe)))
    res = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                         timeout=60)
    problems = [ln for ln in (res.stdout + res.stderr).splitlines()
                if "chimevoice.service" in ln and "Failed to" not in ln and "not found" not in ln.lower()]
    assert not problems, res.stdout + res.stderr


def test_from_the_process_environment_the_variables_are_removed(monkeypatch, listener):
    _sock, path = listener
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    n = Notifier.from_env()
    assert n.address == path and n.watchdog_interval_s == 1.0
    assert "NOTIFY_SOCKET" not in os.environ and "WATCHDOG_USEC" not in os.environ
