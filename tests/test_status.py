"""StatusService (/status, /status/history) on a fake call registry with a fake clock, the
aiohttp routes, and ``chimevoice top``'s plain output and sorting (docs/status.md)."""
from __future__ import annotations

import io
import json
from types import SimpleNamespace

import pytest

from chimevoice.calls.legs import LegRecord
from chimevoice.cli import main as cli_main
from chimevoice.engine.events import Participant
from chimevoice.metrics import Metrics
from chimevoice.status import StatusService, add_routes, histogram_quantile
from chimevoice.top import View, fetch, plain_lines, run, screen_lines, status_url

APP1, APP2 = "app-1", "app-2"


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:   # 1700000000 is 20 s into a minute
        self.t = t

    def __call__(self) -> float:
        return self.t


def driver(tx_id: str, app: str, started_at: float, *, action: str | None = "PlayAudio",
           latency: float | None = 0.004, bridged: str | None = None, dialing: str | None = None):
    a = Participant(f"{tx_id}-a", "LEG-A", "+15550100008", "+15105550101", "Inbound", 0)
    legs = {a.call_id: LegRecord(a.call_id, "Inbound", a.from_, a.to, 0, answer_ms=1)}
    participants = [a]
    if bridged:
        b = Participant(bridged, "LEG-B", "+15550199001", "+15105550101", "Outbound", 0)
        participants.append(b)
        legs[b.call_id] = LegRecord(b.call_id, "Outbound", b.from_, b.to, 0, answer_ms=2)
    if dialing:
        legs[dialing] = LegRecord(dialing, "Outbound", "+15105550101", "+15550199002", 0)
    tx = SimpleNamespace(transaction_id=tx_id, leg_a=a.call_id, invocations=2,
                         info=SimpleNamespace(sip_media_application_id=app, participants=participants),
                         current=SimpleNamespace(type_name=action) if action else None)
    return SimpleNamespace(tx=tx, legs=legs, started_at=started_at, last_handler_latency_s=latency,
                           last_event_type="NEW_INBOUND_CALL", finished=False)


def app(app_id: str, name: str, workers: int, type_: str = "python"):
    return SimpleNamespace(id=app_id, name=name, handler=SimpleNamespace(type=type_, workers=workers))


class PoolInvoker:
    def pool_stats(self) -> dict:
        return {"live": 3, "busy": 1}


@pytest.fixture
def setup():
    wall, mono = Clock(), Clock(500.0)
    metrics = Metrics()
    manager = SimpleNamespace(
        calls=[], accepting=True, metrics=metrics,
        cfg=SimpleNamespace(sip_media_applications=[app(APP1, "ivr", 4), app(APP2, "bridge", 2, "http")]),
        services=SimpleNamespace(invokers={APP1: PoolInvoker(), APP2: object()}))
    svc = StatusService(manager, listeners=[("udp", "127.0.0.1", 5060), ("tcp", "127.0.0.1", 5060)],
                        clock=wall, monotonic=mono)
    return svc, manager, wall, mono


def test_snapshot_lists_calls_legs_totals_listeners_and_workers(setup):
    svc, manager, wall, mono = setup
    manager.calls += [driver("tx-old", APP1, 400.0), driver("tx-new", APP2, 480.0, action=None, latency=None,
                                                           bridged="b-leg", dialing="c-leg")]
    m = manager.metrics
    m.inc("calls_total", 7)
    m.inc("calls_rejected_total", code="503")
    m.inc("admission_refusals_total", cause="rate")
    m.inc("calls_rejected_total", 2, code="404")
    m.inc("handler_invocations_total", 5, outcome="ok")
    m.inc("handler_invocations_total", outcome="timeout")
    mono.t = 530.0
    snap = svc.snapshot()
    json.dumps(snap)                                        # JSON all the way down
    assert snap["time"] == wall.t and snap["uptime_s"] == 30.0 and snap["accepting"] is True
    assert snap["totals"] == {"calls_active": 2, "calls_total": 7, "calls_rejected_total": 3,
                              "handler_invocations_total": 6, "admission_refusals_total": 1}
    assert snap["listeners"] == [{"transport": "udp", "address": "127.0.0.1", "port": 5060},
                                 {"transport": "tcp", "address": "127.0.0.1", "port": 5060}]
    assert snap["workers"] == [
        {"sip_media_application": APP1, "name": "ivr", "type": "python", "workers": 4, "live": 3, "busy": 1},
        {"sip_media_application": APP2, "name": "bridge", "type": "http", "workers": 2}]
    old, new = snap["calls"]                                # longest first
    assert old == {"transaction_id": "tx-old", "sip_media_application_id": APP1, "sip_media_application": "ivr",
                   "elapsed_s": 130.0, "action": "PlayAudio", "last_event": "NEW_INBOUND_CALL",
                   "last_handler_latency_ms": 4.0, "invocations": 2,
                   "legs": [{"call_id": "tx-old-a", "tag": "LEG-A", "direction": "Inbound",
                             "from": "+15105550101", "to": "+15550100008", "status": "Connected"}]}
    assert new["action"] is None and new["last_handler_latency_ms"] is None and new["elapsed_s"] == 50.0
    assert [(leg["call_id"], leg["tag"], leg["status"]) for leg in new["legs"]] == [
        ("tx-new-a", "LEG-A", "Connected"), ("b-leg", "LEG-B", "Connected"), ("c-leg", "LEG-B", "Dialing")]
    manager.accepting = False
    manager.calls.clear()
    snap = svc.snapshot()
    assert snap["accepting"] is False and snap["calls"] == [] and snap["totals"]["calls_active"] == 0


def test_history_per_minute_from_the_metrics(setup):
    svc, manager, wall, _ = setup
    m = manager.metrics
    minute0 = 1_699_999_980                                 # the minute the service started in
    m.inc("calls_total", 3)
    for v in (0.002, 0.003, 0.004, 0.030):
        m.observe("handler_latency_seconds", v)
    h = svc.history()["minutes"]
    assert len(h) == 1 and h[0]["t"] == minute0 and h[0]["calls"] == 3 and h[0]["handler_invocations"] == 4
    wall.t = minute0 + 61                                   # the next minute
    svc.tick()
    m.inc("calls_total")
    m.observe("handler_latency_seconds", 0.2)
    h = svc.history()["minutes"]
    assert [e["t"] for e in h] == [minute0, minute0 + 60]
    first, second = h
    assert first["calls"] == 3 and second["calls"] == 1
    assert 0 < first["handler_p50_ms"] <= 5.0               # three of four in the 0-5 ms bucket
    assert 25.0 < first["handler_p95_ms"] <= 50.0           # the slow one in 25-50 ms
    assert 100.0 < second["handler_p50_ms"] <= 250.0
    wall.t = minute0 + 60 * 4 + 5                           # two minutes without a tick
    h = svc.history()["minutes"]
    assert [e["t"] for e in h] == [minute0 + 60 * k for k in range(5)]
    assert [e["calls"] for e in h] == [3, 1, 0, 0, 0]
    assert h[2]["handler_p50_ms"] is None
    wall.t = minute0 + 60 * 200                             # hours later: the last 60 minutes only
    h = svc.history()["minutes"]
    assert len(h) == 60 and h[-1]["t"] == minute0 + 60 * 200
    assert all(e["calls"] == 0 for e in h)


def test_histogram_quantile():
    bounds = (1.0, 2.0, 4.0)
    assert histogram_quantile(0.5, [0, 0, 0, 0], bounds) is None
    assert histogram_quantile(0.5, [2, 2, 0, 0], bounds) == 1.0
    assert histogram_quantile(0.75, [2, 2, 0, 0], bounds) == 1.5
    assert histogram_quantile(0.95, [0, 0, 0, 5], bounds) == 4.0   # +Inf: the highest bound


async def test_routes_serve_status_history_and_the_page(setup):
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    svc, manager, _, _ = setup
    manager.calls.append(driver("tx-1", APP1, 400.0))
    web_app = web.Application()
    assert add_routes(web_app, svc) == ["/", "/status", "/status/history"]
    async with TestClient(TestServer(web_app)) as client:
        r = await client.get("/status")
        assert r.status == 200 and (await r.json())["calls"][0]["transaction_id"] == "tx-1"
        r = await client.get("/status/history")
        assert len((await r.json())["minutes"]) == 1
        r = await client.get("/")
        text = await r.text()
        assert r.content_type == "text/html" and "data-transaction-id" in text and 'fetch("status"' in text
    assert svc._task is None                                # the ticker stopped with the application


def _snap() -> dict:
    def call(tx, app, action, elapsed, latency):
        return {"transaction_id": tx, "sip_media_application_id": app, "sip_media_application": app,
                "elapsed_s": elapsed, "action": action, "last_event": "NEW_INBOUND_CALL",
                "last_handler_latency_ms": latency, "invocations": 1,
                "legs": [{"call_id": tx + "-a", "tag": "LEG-A", "direction": "Inbound", "from": "+1510",
                          "to": "+1555", "status": "Connected"}]}
    return {"time": 1_700_000_000, "uptime_s": 3725, "accepting": True,
            "totals": {"calls_active": 3, "calls_total": 9, "calls_rejected_total": 1,
                       "handler_invocations_total": 12},
            "listeners": [{"transport": "udp", "address": "127.0.0.1", "port": 5060}],
            "workers": [{"sip_media_application": "a", "name": "ivr", "type": "python", "workers": 4}],
            "calls": [call("t-mid", "beta", "Pause", 20, 9.0), call("t-long", "gamma", "PlayAudio", 90, 1.0),
                      call("t-short", "alpha", None, 5, None)]}


def test_top_sorting_and_lines():
    snap = _snap()
    view = View()
    order = lambda: [c["transaction_id"] for c in view.ordered(snap["calls"])]  # noqa: E731
    assert order() == ["t-long", "t-mid", "t-short"]        # elapsed, longest first
    view.reverse = True
    assert order() == ["t-short", "t-mid", "t-long"]
    view.cycle()
    assert view.sort == "app" and not view.reverse and order() == ["t-short", "t-mid", "t-long"]
    view.cycle()
    assert view.sort == "action" and order() == ["t-mid", "t-long", "t-short"]   # no action last
    view.cycle()
    assert view.sort == "latency" and order() == ["t-mid", "t-long", "t-short"]
    view.cycle()
    assert view.sort == "elapsed"
    lines = plain_lines(snap, View())
    assert len(lines) == 4
    assert "active 3" in lines[0] and "total 9" in lines[0] and "up 1:02:05" in lines[0]
    assert "udp 127.0.0.1:5060" in lines[0] and "ivr pythonx4" in lines[0]
    assert lines[1].startswith("t-long") and "PlayAudio" in lines[1] and "1:30" in lines[1]
    assert "LEG-A +1510->+1555 Connected" in lines[1]
    screen = screen_lines(snap, View(), "boom")
    assert [s for _, s in screen[:3]] == ["header", "", "error"]
    assert [t.split()[0] for t, s in screen if s == "call"] == ["t-long", "t-mid", "t-short"]
    assert sum(1 for _, s in screen if s == "leg") == 3


def test_status_url():
    assert status_url("127.0.0.1:8080") == "http://127.0.0.1:8080/status"
    assert status_url("http://h:1/") == "http://h:1/status"
    assert status_url("http://h:1/status") == "http://h:1/status"


def test_top_once_against_a_server_and_unreachable(setup):
    import threading

    from aiohttp import web

    from tests.support.harness import free_port

    svc, manager, _, _ = setup
    manager.calls.append(driver("tx-1", APP1, 400.0, bridged="b-1"))
    port = free_port()
    started = threading.Event()
    stop = threading.Event()

    def serve() -> None:
        import asyncio

        async def main() -> None:
            web_app = web.Application()
            add_routes(web_app, svc)
            runner = web.AppRunner(web_app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            started.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
            await runner.cleanup()
        asyncio.run(main())

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    assert started.wait(5)
    try:
        out, err = io.StringIO(), io.StringIO()
        assert run(f"http://127.0.0.1:{port}", once=True, out=out, err=err) == 0
        lines = out.getvalue().splitlines()
        assert len(lines) == 2 and lines[1].startswith("tx-1") and "LEG-B" in lines[1], lines
        assert fetch(f"127.0.0.1:{port}")["totals"]["calls_active"] == 1
    finally:
        stop.set()
        t.join(5)
    err = io.StringIO()
    assert run(f"http://127.0.0.1:{port}", once=True, out=io.StringIO(), err=err) == 1
    assert "cannot reach the daemon" in err.getvalue()


def test_top_command_line(capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["top", "--interval", "0"])
    assert exc.value.code == 2
    from tests.support.harness import free_port
    assert cli_main(["top", "--once", "--url", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "chimevoice top: cannot reach the daemon" in capsys.readouterr().err
