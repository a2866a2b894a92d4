"""Running the daemon in production: admission control under a flood (503 + Retry-After, a log
line, a metric), the systemd notify protocol (READY, STATUS, WATCHDOG, RELOADING, STOPPING) on a
socket the test creates, ``chimevoice drain`` / ``status``, RTP statistics in /metrics, and SIGHUP
reloading the configuration while a call is in progress. One real daemon, real SIP over loopback."""
from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from chimevoice.media.analysis import goertzel_power
from chimevoice.media.audio import read_pcm
from tests.support.bare_uac import flood
from tests.support.harness import (
    APP_A,
    APP_B,
    ROOT,
    free_port,
    handler_app,
    handler_events,
    metric,
    metrics,
    module_daemon,
    number_rules,
    read_events,
    write_tone,
)

pytestmark = pytest.mark.sip
LONG = "+15550100008"          # scripted.py: a 1000 Hz tone, 30 x 1 s; the caller hangs up
TONE_THEN_HANGUP = "+15550100005"  # scripted.py: a tone, then the handler hangs up
NO_RULE = "+15550100099"       # on the trunk, no SIP rule: 404 once admitted
WATCHDOG_USEC = 600_000


# -- the daemon ---------------------------------------------------------------------------------

class NotifyListener:
    """The systemd side of sd_notify: a unix datagram socket, every message kept with its time."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while not self.closed:
            try:
                data = self.sock.recv(4096).decode()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
            self.messages.append((time.monotonic(), fields))

    def wait(self, key: str, value: str | None = None, *, after: int = 0, timeout: float = 10.0) -> int:
        """Index of the first message from *after* on that has *key* (= *value*)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, (_, m) in enumerate(self.messages[after:], after):
                if key in m and (value is None or m[key] == value):
                    return i
            time.sleep(0.02)
        raise AssertionError(f"no {key}={value} after #{after}: {self.messages[after:]}")


def apps(d, env_a: dict | None = None) -> list[dict]:
    return [handler_app(APP_A, "scripted", "scripted:handler", {"EVENTS_DIR": str(d.events / "a"), **(env_a or {})}),
            handler_app(APP_B, "scripted", "scripted:handler", {"EVENTS_DIR": str(d.events / "b")})]


def rules(app_for_long: str) -> list[dict]:
    return [*number_rules([LONG], app_for_long, "cccccccc-0000-4000-8000", "long"),
            *number_rules([TONE_THEN_HANGUP], APP_A, "dddddddd-0000-4000-8000", "tone")]


ADMISSION = {"max_calls_per_second": 5, "burst": 5, "max_concurrent_calls": 1,
             "per_source": {"rate": 1, "burst": 3}}


def write(d, app_for_long: str = APP_A, env_a: dict | None = None, allow: list[str] | None = None) -> None:
    path = d.write_config(apps(d, env_a), rules=rules(app_for_long), numbers=[LONG, TONE_THEN_HANGUP, NO_RULE],
                          extra={"admission": ADMISSION}, allow=allow)
    data = yaml.safe_load(path.read_text())
    data["sip"]["rtp"]["stats_interval_s"] = 1      # live calls' RTP totals reach /metrics each second
    path.write_text(yaml.safe_dump(data, sort_keys=False))


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = module_daemon(tmp_path_factory, "operations")
    for sub in ("a", "b"):
        (d.events / sub).mkdir()
    d.http_port = free_port()
    d.notify = NotifyListener(d.workdir / "notify.sock")
    d.env = {"NOTIFY_SOCKET": str(d.workdir / "notify.sock"), "WATCHDOG_USEC": str(WATCHDOG_USEC)}
    write(d)
    write_tone(d.prompts / "tone1000.wav", 1000, 1.0)
    write_tone(d.prompts / "tone400.wav", 400, 0.5)
    d.start()
    yield d
    before = len(d.notify.messages)
    try:                                   # the end: drain --exit, the daemon leaves once idle
        out = cli(d, "drain", "--exit", "--wait")
        assert out.returncode == 0 and "exits when they have ended" in out.stdout, out
        assert d.proc.wait(15) == 0, d.log_path.read_text()[-3000:]
        d.wait_log("drained")
        d.notify.wait("STOPPING", "1", after=before, timeout=1)
    finally:
        d.stop()
        d.notify.closed = True


def wait_new_log(d, mark: int, event: str, timeout: float = 10.0, **match) -> dict:
    """The first log event *event* (with *match*) among the lines after the first *mark* ones."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in d.logs()[mark:]:
            if e.get("event") == event and all(e.get(k) == v for k, v in match.items()):
                return e
        time.sleep(0.05)
    raise AssertionError(f"no new log event {event} {match}; log tail:\n" + d.log_path.read_text()[-3000:])


def cli(d, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chimevoice", *args, "--url", f"http://127.0.0.1:{d.http_port}"],
                          capture_output=True, text=True, timeout=20, cwd=ROOT)


# -- the tests ----------------------------------------------------------------------------------

def test_ready_status_and_watchdog_are_sent_to_the_notify_socket(daemon):
    n = daemon.notify
    ready = n.wait("READY", "1")
    assert "calls active" in n.messages[ready][1]["STATUS"]
    first = n.wait("WATCHDOG", "1", after=ready)
    third = n.wait("WATCHDOG", "1", after=n.wait("WATCHDOG", "1", after=first + 1) + 1)
    gap = (n.messages[third][0] - n.messages[first][0]) / 2
    assert 0.15 <= gap <= 0.6, gap              # half of WATCHDOG_USEC (0.3 s), under load


def test_a_flood_from_one_source_is_refused_with_503_and_retry_after(daemon):
    time.sleep(1.2)                                 # the buckets are full again
    answers = flood(daemon.port, NO_RULE, ["127.0.0.3"] * 8)
    codes = [status for status, _ in answers]
    assert codes.count(403) == 3, codes             # the source's burst passed admission (then the allow list)
    assert codes.count(503) == 5, codes
    assert all(int(h["retry-after"]) >= 1 for status, h in answers if status == 503)
    assert [s for s, _ in flood(daemon.port, NO_RULE, ["127.0.0.4"])] == [403]    # other sources are served
    daemon.wait_log("call_refused", cause="source_rate", stage="sip_gate")    # before pjsua made a call
    assert metric(metrics(daemon), "admission_refusals_total", cause="source_rate") >= 5


def test_a_forged_hairpin_header_does_not_pass_the_gate(daemon):
    """The signed header of a bridge to ourselves passes the C gate only from our own address;
    from a caller's, forged, it is counted like any INVITE: the 503s come from the gate, before
    pjsua makes a call (only the burst's INVITEs reach the manager)."""
    time.sleep(1.2)                                 # the buckets are full, a refusal is logged again
    mark = len(daemon.logs())
    forged = "X-Chimevoice-Hairpin: 6f1c;sma=;sig=0123456789abcdef0123456789abcdef\r\n"
    codes = [status for status, _ in flood(daemon.port, NO_RULE, ["127.0.0.6"] * 8, extra=forged)]
    assert codes.count(403) == 3 and codes.count(503) == 5, codes
    refused = wait_new_log(daemon, mark, "call_refused", cause="source_rate")
    assert refused["stage"] == "sip_gate", refused


def test_above_the_daemon_wide_rate_new_invites_get_503(daemon):
    time.sleep(1.2)
    answers = flood(daemon.port, NO_RULE, [f"127.0.1.{i}" for i in range(1, 13)])   # 12 sources, 1 each
    codes = [status for status, _ in answers]
    assert codes.count(403) == 5 and codes.count(503) == 7, codes     # burst 5, then the rate's 503s
    daemon.wait_log("call_refused", cause="rate", stage="sip_gate")
    assert metric(metrics(daemon), "admission_refusals_total", cause="rate") >= 7
    assert all(int(h["retry-after"]) >= 1 and h.get("user-agent") for status, h in answers if status == 503)


def test_at_the_concurrency_cap_new_calls_are_refused_and_the_live_one_keeps_its_audio(daemon, tmp_path):
    time.sleep(1.2)
    rec = tmp_path / "live.wav"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        live = pool.submit(daemon.call, user=LONG, hangup_after=4, record=rec, max_seconds=15)
        daemon.wait_log("call_routed", called=LONG)
        time.sleep(1.0)
        refused = daemon.call(user=TONE_THEN_HANGUP, max_seconds=5)
        res = live.result()
    assert refused["final_status"] == 503 and not refused["answered"], refused
    assert res["answered"] and res["hangup_by"] == "local" and res["connected_seconds"] >= 3.5, res
    heard, rate = read_pcm(rec)
    tail = heard[-rate:].astype(np.float64)                      # the last second: still the tone
    assert goertzel_power(tail, rate, 1000) > 100 * goertzel_power(tail, rate, 400) and np.abs(tail).max() > 2000
    daemon.wait_log("call_refused", cause="concurrency")
    assert metric(metrics(daemon), "admission_refusals_total", cause="concurrency") >= 1


def test_metrics_show_what_the_process_holds(daemon):
    """The gauges a memory hunt starts from: Python's small-object blocks, asyncio tasks, glibc's
    bytes in use and held, recordings waiting for their close (none when idle)."""
    text = metrics(daemon)
    assert metric(text, "python_allocated_blocks") > 10_000
    assert metric(text, "asyncio_tasks") >= 1
    used, held = metric(text, "malloc_in_use_bytes"), metric(text, "malloc_held_bytes")
    assert 1e6 < used <= held, (used, held)
    assert "chimevoice_recordings_closing 0" in text.splitlines()
    # the cyclic collector's counters (counted from start-up on: an idle daemon may show none)
    names = {line.split(" ")[0] for line in text.splitlines() if line.startswith("chimevoice_python_gc_")}
    assert {f"chimevoice_python_gc_{n}" for n in ("collections_gen2", "collected_objects_gen2",
                                                  "pause_max_seconds")} <= names, names
    assert "chimevoice_media_queue_audio_batches 0" in text.splitlines()
    assert "chimevoice_sip_tap_dropped_bytes 0" in text.splitlines()      # no tap overflowed
    # the pjsua2 thread's own counts: the bridge has at least its master port, and once the
    # last test's calls are gone no leg or player is left (the counts are taken every 0.5 s)
    assert metric(text, "sip_conference_ports") >= 1
    deadline = time.monotonic() + 10
    while not {"chimevoice_sip_legs 0", "chimevoice_sip_players 0"} <= set(text.splitlines()):
        assert time.monotonic() < deadline, [x for x in text.splitlines() if "_sip_" in x]
        time.sleep(0.2)
        text = metrics(daemon)


def test_the_conference_clock_thread_is_real_time_where_the_daemon_may_make_it(daemon):
    """pjmedia's clock thread (named cv-clock) runs SCHED_RR at sip.rtp.realtime_priority
    (10) when the daemon has CAP_SYS_NICE or RLIMIT_RTPRIO; otherwise it says why and runs on."""
    tids = [int(t) for t in os.listdir(f"/proc/{daemon.proc.pid}/task")
            if Path(f"/proc/{daemon.proc.pid}/task/{t}/comm").read_text().strip() == "cv-clock"]
    assert len(tids) == 1, tids
    from chimevoice.osthread import set_realtime
    # allowed for the daemon exactly when it is for this process (same user, same limits)
    allowed = set_realtime(threading.get_native_id(), 10) is None
    if allowed:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    if not allowed:
        assert daemon.wait_log("media_clock_not_realtime")["hint"].startswith("allow SCHED_RR")
        assert os.sched_getscheduler(tids[0]) == os.SCHED_OTHER
        return
    assert os.sched_getscheduler(tids[0]) == os.SCHED_RR
    assert os.sched_getparam(tids[0]).sched_priority == 10
    assert daemon.wait_log("media_clock_realtime")["priority"] == 10
    assert metric(metrics(daemon), "sip_clock_realtime_priority") == 10


def test_rtp_statistics_per_direction_are_on_metrics(daemon):
    time.sleep(1.2)
    before = metrics(daemon)
    lines = len(daemon.logs())
    caller_ends = daemon.call(user=LONG, hangup_after=1.5, max_seconds=10)       # the caller's BYE
    we_end = daemon.call(user=TONE_THEN_HANGUP, max_seconds=10)                # the handler hangs up: ours
    assert caller_ends["hangup_by"] == "local" and we_end["hangup_by"] == "remote", (caller_ends, we_end)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        stats = [e for e in daemon.logs()[lines:] if e.get("event") == "rtp_stats"]
        if len(stats) >= 2:
            break
        time.sleep(0.05)
    assert len(stats) == 2, stats
    assert all(e["rx_packets"] > 20 and e["tx_packets"] > 20 and e["rx_lost"] == 0 for e in stats), stats
    after = metrics(daemon)
    for direction in ("rx", "tx"):
        assert (metric(after, "rtp_packets_total", direction=direction)
                - metric(before, "rtp_packets_total", direction=direction)) > 20
        assert f'chimevoice_rtp_packets_lost_total{{direction="{direction}"}}' in after
        assert metric(after, "rtp_jitter_seconds_count", direction=direction) >= 1
    assert metric(after, "handler_latency_seconds_count", application=APP_A) >= 2
    assert re.search(r'chimevoice_actions_total\{result="successful",type="[A-Za-z]+"\}', after), after


def test_a_live_calls_rtp_packets_reach_metrics_before_it_ends(daemon):
    time.sleep(1.2)
    before = metrics(daemon)
    result: dict = {}
    caller = threading.Thread(target=lambda: result.update(daemon.call(user=LONG, hangup_after=5, max_seconds=10)))
    caller.start()
    try:
        # while the call is up (it lasts 5 s from its answer), its packets appear on /metrics
        deadline = time.monotonic() + 8
        while True:
            during = metrics(daemon)
            counted = min(metric(during, "rtp_packets_total", direction=d)
                          - metric(before, "rtp_packets_total", direction=d) for d in ("rx", "tx"))
            if counted >= 50 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert metric(during, "calls_active") == 1          # taken mid-call
    finally:
        caller.join(20)
    assert result.get("answered"), result
    after = metrics(daemon)
    for direction in ("rx", "tx"):
        live = (metric(during, "rtp_packets_total", direction=direction)
                - metric(before, "rtp_packets_total", direction=direction))
        total = (metric(after, "rtp_packets_total", direction=direction)
                 - metric(before, "rtp_packets_total", direction=direction))
        assert live >= 50, (direction, live)           # at least 1 s of 20 ms packets, counted mid-call
        assert total >= live + 20, (direction, live, total)   # the rest at the end, none twice
        assert total <= 5.6 * 50, (direction, total)


def test_drain_refuses_new_calls_and_status_shows_it(daemon):
    time.sleep(1.2)
    out = cli(daemon, "drain")
    assert out.returncode == 0 and "draining" in out.stdout, out
    assert [s for s, _ in flood(daemon.port, NO_RULE, ["127.0.0.1"])] == [503]
    st = cli(daemon, "status")
    assert st.returncode == 0 and "DRAINING" in st.stdout and "application scripted" in st.stdout, st
    assert not re.search(r"(?<!\d)1 refused", st.stdout), st.stdout     # every refusal so far is counted
    assert cli(daemon, "drain", "--resume").returncode == 0
    time.sleep(1.2)
    assert [s for s, _ in flood(daemon.port, NO_RULE, ["127.0.0.1"])] == [404]
    assert metric(metrics(daemon), "admission_refusals_total", cause="draining") == 1
    st = cli(daemon, "status")
    assert "accepting calls" in st.stdout, st.stdout


def test_sighup_reloads_rules_and_handlers_for_new_calls_only(daemon, tmp_path):
    time.sleep(1.2)
    n = daemon.notify
    assert [s for s, _ in flood(daemon.port, NO_RULE, ["127.0.0.9"])] == [403]     # not on the allow list
    rec = tmp_path / "live.wav"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        lines = len(daemon.logs())
        live = pool.submit(daemon.call, user=LONG, hangup_after=6, record=rec, max_seconds=20)
        routed = wait_new_log(daemon, lines, "call_routed", called=LONG, sip_media_application=APP_A)
        time.sleep(0.5)
        # LONG now routes to APP_B; APP_A's handler changes too (a new worker pool), the trunk
        # allows one more address, and the concurrency cap goes up so that the second call is admitted
        write(daemon, app_for_long=APP_B, env_a={"VERSION": "2"}, allow=["127.0.0.1/32", "127.0.0.9/32"])
        cfg = yaml.safe_load(daemon.config_path.read_text())
        cfg["admission"]["max_concurrent_calls"] = 10
        daemon.config_path.write_text(yaml.safe_dump(cfg))
        mark = len(n.messages)
        daemon.proc.send_signal(signal.SIGHUP)
        reloaded = wait_new_log(daemon, lines, "config_reloaded", generation=1)
        assert reloaded["active_calls"] == 1 and reloaded["restart_needed"] == [], reloaded
        n.wait("READY", "1", after=n.wait("RELOADING", "1", after=mark))
        second = daemon.call(user=LONG, hangup_after=1.5, max_seconds=10)
        assert wait_new_log(daemon, lines, "call_routed", called=LONG, sip_media_application=APP_B)
        res = live.result()
    assert second["answered"], second
    assert [s for s, _ in flood(daemon.port, NO_RULE, ["127.0.0.9"])] == [404]     # the new allow list
    assert [e["InvocationEventType"] for e in handler_events(daemon.events / "b" / "scripted.jsonl", LONG)][:1] \
        == ["NEW_INBOUND_CALL"]
    # the call in progress kept its application, its handler's worker pool and its audio
    assert res["answered"] and res["hangup_by"] == "local" and res["connected_seconds"] >= 5.5, res
    heard, rate = read_pcm(rec)
    tail = heard[-rate:].astype(np.float64)
    assert goertzel_power(tail, rate, 1000) > 100 * goertzel_power(tail, rate, 400) and np.abs(tail).max() > 2000
    mine = [e for e in read_events(daemon.events / "a" / "scripted.jsonl")
            if e["CallDetails"]["TransactionId"] == routed["TransactionId"]]
    assert [e["InvocationEventType"] for e in mine][-1] == "HANGUP"
    wait_new_log(daemon, lines, "handler_pool_retired")     # the old pool is closed once its last call ended


def test_an_invalid_config_on_sighup_is_refused_and_the_old_one_serves(daemon):
    time.sleep(1.2)
    good = daemon.config_path.read_text()
    cfg = yaml.safe_load(good)
    cfg["sip_rules"][0]["target_applications"][0]["sip_media_application_id"] = "no-such-app"
    daemon.config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    try:
        daemon.proc.send_signal(signal.SIGHUP)
        refused = daemon.wait_log("config_reload_refused")
    finally:
        daemon.config_path.write_text(good)
    assert any(re.match(rf"{re.escape(str(daemon.config_path))}:\d+: sip_rules\[0\]", e) for e in refused["errors"]), \
        refused
    n = len(handler_events(daemon.events / "b" / "scripted.jsonl", LONG))
    res = daemon.call(user=LONG, hangup_after=1.0, max_seconds=10)
    assert res["answered"], res                            # still routed by the reloaded (good) config
    daemon.wait_log("transaction_finished")
    assert len(handler_events(daemon.events / "b" / "scripted.jsonl", LONG)) > n
    assert metric(metrics(daemon), "config_reloads_total", result="refused") == 1
