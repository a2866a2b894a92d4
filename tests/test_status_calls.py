"""The live view on a real daemon with live calls: GET /status and /status/history,
``chimevoice top`` in tmux (the screen read back), and the status page at ``/`` in Debian's
headless Chromium (its DOM checked, a screenshot kept). Two calls play a long tone
(PlayAudio), a third is bridged to a carrier phone, so its LEG-B is listed too.
The handler is tests/handlers/status_view.py."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.support.harness import (
    ROOT,
    Daemon,
    ListeningPhone,
    free_port,
    handler_app,
    module_daemon,
    number_rules,
    write_tone,
)

pytestmark = pytest.mark.sip

APP = "77777777-0000-4000-8000-000000000001"
NUMBERS = ["+15550107001", "+15550107002", "+15550107003"]     # ...3: bridged to the carrier
CARRIER = "+15550199001"
CALLER = "+15105550101"
SCREENSHOT_COPY = Path("/tmp/chimevoice-status.png")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = module_daemon(tmp_path_factory, "status")
    d.http_port = free_port()
    d.carrier_port = free_port()
    cfg = d.write_config([handler_app(APP, "status-view", "status_view:handler", workers=2)],
                         rules=number_rules(NUMBERS, APP, "88888888-0000-4000-8000", "status"), numbers=NUMBERS)
    data = yaml.safe_load(cfg.read_text())
    data["voice_connectors"].append(
        {"id": "vc-carrier", "name": "carrier", "host_name": "carrier.chimevoice.local",
         "allow_list": ["127.0.0.1/32"],
         "origination": {"routes": [{"host": "127.0.0.1", "port": d.carrier_port, "protocol": "udp"}]}})
    data["pstn"] = {"voice_connector": "vc-carrier"}
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    write_tone(d.prompts / "tone1000.wav", 1000, 1.0)
    d.start()
    yield d
    code = d.stop()
    assert code == 0, d.log_path.read_text()[-3000:]


def get(d: Daemon, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{d.http_port}{path}", timeout=5) as resp:
        return json.loads(resp.read())


def wait_status(d: Daemon, ok: Callable[[dict], bool], timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    snap: dict = {}
    while time.monotonic() < deadline:
        snap = get(d, "/status")
        if ok(snap):
            return snap
        time.sleep(0.1)
    raise AssertionError(f"/status never matched: {json.dumps(snap, indent=1)[-3000:]}")


def _all_up(snap: dict) -> bool:
    calls = {c["legs"][0]["to"]: c for c in snap["calls"] if c["legs"]}
    if set(calls) != set(NUMBERS):
        return False
    bridged = calls[NUMBERS[2]]
    # LEG-B answers before the handler has seen ACTION_SUCCESSFUL for the bridge: wait for both
    return (all(calls[n]["action"] == "PlayAudio" for n in NUMBERS[:2])
            and [(leg["tag"], leg["status"]) for leg in bridged["legs"]] == [("LEG-A", "Connected"),
                                                                              ("LEG-B", "Connected")]
            and bridged["invocations"] == 2 and bridged["last_event"] == "ACTION_SUCCESSFUL")


@contextmanager
def live_calls(d: Daemon, seconds: float) -> Iterator[dict]:
    """Three calls held for *seconds* after their answer; yields the /status that lists them all."""
    carrier = ListeningPhone(["--answer-after", "0.2", "--max-seconds", str(seconds + 20)], port=d.carrier_port)
    pool = ThreadPoolExecutor(len(NUMBERS))
    futures = [pool.submit(d.call, user=n, hangup_after=seconds, max_seconds=seconds + 15,
                           timeout=seconds + 40) for n in NUMBERS]
    try:
        yield wait_status(d, _all_up)
    finally:
        results = [f.result(timeout=seconds + 60) for f in futures]
        try:
            carrier.result(timeout=20)
        finally:
            carrier.close()
            pool.shutdown()
    assert all(r["answered"] for r in results), results
    wait_status(d, lambda s: not s["calls"])            # gone from the registry when they end


def test_status_lists_live_transactions_with_their_legs(daemon):
    d = daemon
    before = get(d, "/status")["totals"]["calls_total"]
    with live_calls(d, 5) as snap:
        calls = {c["legs"][0]["to"]: c for c in snap["calls"]}
        for n in NUMBERS[:2]:
            c = calls[n]
            assert c["sip_media_application_id"] == APP and c["sip_media_application"] == "status-view"
            assert c["action"] == "PlayAudio" and c["last_event"] == "NEW_INBOUND_CALL", c
            assert c["last_handler_latency_ms"] > 0 and c["invocations"] == 1 and c["elapsed_s"] >= 0
            assert [(leg["tag"], leg["direction"], leg["from"], leg["to"], leg["status"]) for leg in c["legs"]] == [
                ("LEG-A", "Inbound", CALLER, n, "Connected")]
        bridged = calls[NUMBERS[2]]
        a, b = bridged["legs"]
        assert (b["tag"], b["direction"], b["to"], b["from"]) == ("LEG-B", "Outbound", CARRIER, CALLER), bridged
        assert a["call_id"] != b["call_id"]
        assert bridged["last_event"] == "ACTION_SUCCESSFUL" and bridged["invocations"] == 2, bridged
        assert [c["elapsed_s"] for c in snap["calls"]] == sorted((c["elapsed_s"] for c in snap["calls"]),
                                                                 reverse=True)
        totals = snap["totals"]
        assert totals["calls_active"] == 3 and totals["calls_total"] == before + 3, totals
        assert totals["handler_invocations_total"] >= 4
        assert snap["accepting"] is True and snap["uptime_s"] > 0
        assert {(x["transport"], x["port"]) for x in snap["listeners"]} >= {("udp", d.port), ("tcp", d.port)}
        assert snap["workers"] == [{"sip_media_application": APP, "name": "status-view", "type": "python",
                                    "workers": 2}]
        minutes = get(d, "/status/history")["minutes"]
        assert 1 <= len(minutes) <= 60 and sum(m["calls"] for m in minutes) >= 3
        assert minutes[-1]["t"] % 60 == 0 and abs(minutes[-1]["t"] - time.time()) < 120
        assert any(m["handler_p50_ms"] is not None for m in minutes), minutes


# -- chimevoice top in tmux ------------------------------------------------------------------
def _tmux(sock: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    # os.environ, not the process's C environment, where an ncurses setupterm may have put LINES/COLUMNS
    return subprocess.run(["tmux", "-L", sock, *args], capture_output=True, text=True, check=check, timeout=10,
                          env=dict(os.environ))


def _screen_until(sock: str, ok: Callable[[str], bool], timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux(sock, "capture-pane", "-p", "-t", "top").stdout
        if ok(screen):
            return screen
        time.sleep(0.2)
    raise AssertionError("tmux screen never matched:\n" + screen)


def test_top_in_tmux_shows_the_calls_sorts_and_quits(daemon):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (Debian package tmux; scripts/bootstrap installs it)")
    d = daemon
    sock = f"chimevoice-test-{os.getpid()}"
    cmd = (f"{sys.executable} -m chimevoice top --url http://127.0.0.1:{d.http_port}; "
           "echo \"top exited $?\"; sleep 60")
    try:
        with live_calls(d, 10) as snap:
            ids = [c["transaction_id"] for c in snap["calls"]]
            _tmux(sock, "new-session", "-d", "-s", "top", "-x", "160", "-y", "40", "-c", str(ROOT), cmd)
            screen = _screen_until(sock, lambda s: all(i in s for i in ids) and "active 3" in s)
            lines = screen.splitlines()
            assert lines[0].startswith("chimevoice  accepting") and "sort: elapsed v" in lines[0], screen
            assert f"udp 127.0.0.1:{d.port}" in lines[1] and "status-view pythonx2" in lines[1], screen
            rows = [ln for ln in lines if ln[:36] in ids]
            assert [r[:36] for r in rows] == ids, screen      # longest first, as /status sorts
            assert sum("PlayAudio" in r for r in rows) == 2 and all("status-view" in r for r in rows)
            assert sum("LEG-A" in ln for ln in lines) == 3 and sum("LEG-B" in ln for ln in lines) == 1, screen
            assert any("LEG-B" in ln and CARRIER in ln for ln in lines), screen
            assert "s: sort column" in lines[-1] or "s: sort column" in screen
            _tmux(sock, "send-keys", "-t", "top", "s")
            _screen_until(sock, lambda s: "sort: app ^" in s)
            _tmux(sock, "send-keys", "-t", "top", "r")
            _screen_until(sock, lambda s: "sort: app v" in s)
            _tmux(sock, "send-keys", "-t", "top", "q")
            screen = _screen_until(sock, lambda s: "top exited" in s)
            assert "top exited 0" in screen, screen
    finally:
        _tmux(sock, "kill-server", check=False)


def test_top_once_prints_plain_lines(daemon):
    d = daemon
    with live_calls(d, 5) as snap:
        res = subprocess.run([sys.executable, "-m", "chimevoice", "top", "--once", "--url",
                              f"http://127.0.0.1:{d.http_port}"], capture_output=True, text=True, timeout=20,
                             cwd=ROOT)
        assert res.returncode == 0, res.stderr
        lines = res.stdout.splitlines()
        print(res.stdout)
        assert len(lines) == 4 and "active 3" in lines[0], res.stdout
        assert {ln[:36] for ln in lines[1:]} == {c["transaction_id"] for c in snap["calls"]}
        assert any("LEG-B" in ln for ln in lines[1:])


# -- the status page in headless Chromium ----------------------------------------------------------
def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium is required for the status page test (Debian package chromium; "
                    "scripts/bootstrap installs it)")
    return path


def _headless(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--virtual-time-budget=4000", *args],
        capture_output=True, text=True, timeout=90)


def test_status_page_in_headless_chromium(daemon, tmp_path):
    browser = _chromium()
    d = daemon
    url = f"http://127.0.0.1:{d.http_port}/"
    shot = tmp_path / "chimevoice-status.png"
    with live_calls(d, 20) as snap:
        res = _headless(browser, tmp_path / "profile", "--dump-dom", url)
        dom = res.stdout
        assert "<table" in dom, f"chromium printed no DOM (rc={res.returncode}):\n{res.stderr[-3000:]}"
        rows = re.findall(r'<tr class="transaction" data-transaction-id="([^"]+)"', dom)
        assert sorted(rows) == sorted(c["transaction_id"] for c in snap["calls"]), dom[-3000:]
        legs = re.findall(r'<tr class="leg" data-call-id="([^"]+)" data-leg-of="([^"]+)"', dom)
        want = {(leg["call_id"], c["transaction_id"]) for c in snap["calls"] for leg in c["legs"]}
        assert set(legs) == want and len(legs) == 4, legs
        (tmp_path / "dom.html").write_text(dom)
        assert dom.count(">PlayAudio<") == 2 and ">LEG-B <" in dom and f"{CALLER} → {CARRIER}" in dom
        assert re.search(r'<table id="workers">.*>status-view</td><td>python</td><td class="num">2<', dom, re.S)
        assert re.search(rf'<table id="listeners">.*<td>udp</td><td>127.0.0.1</td><td class="num">{d.port}<',
                         dom, re.S)
        assert re.search(r'id="calls_active">3<', dom), "totals not rendered"
        assert "accepting calls" in dom
        assert re.search(r'<svg id="chart-calls"[^>]*>.*?<rect', dom, re.S), "no bar in the calls chart"
        assert re.search(r'<svg id="chart-latency"[^>]*>.*?<circle', dom, re.S), "no point in the latency chart"
        res = _headless(browser, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,800",
                        "--hide-scrollbars", url)
        assert shot.exists(), f"no screenshot (rc={res.returncode}):\n{res.stderr[-3000:]}"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    shutil.copyfile(shot, SCREENSHOT_COPY)
