"""Speak through Amazon Polly (speech.engine: polly) on a real call: the daemon's boto3
client talks to a local Polly look-alike (tests/speech/fake_polly.py), the phone hears it."""
from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
import yaml
from aiohttp import web

from chimevoice.media.audio import read_pcm
from tests.speech.fake_polly import ACCESS_KEY, MS_PER_CHAR, SECRET_KEY, FakePolly
from tests.support.harness import Daemon, free_port, handler_app, wait_handler_events

pytestmark = pytest.mark.sip

APP = "77777777-0000-4000-8000-000000000001"
NUMBER = "+15550100010"          # scripted.py: Speak "Hello from chimevoice." as Joanna, then hang up
TEXT = "Hello from chimevoice."


@pytest.fixture
def polly_server():
    polly = FakePolly(region="us-east-1")
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    box: dict = {}

    async def start():
        runner = web.AppRunner(polly.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        box["runner"] = runner
        box["url"] = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield polly, box["url"]
    asyncio.run_coroutine_threadsafe(box["runner"].cleanup(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_speak_through_polly(tmp_path, polly_server, monkeypatch):
    polly, url = polly_server
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    events = tmp_path / "events"
    events.mkdir()
    d = Daemon(tmp_path, free_port())
    rules = [{"id": "88888888-0000-4000-8000-000000000001", "name": "speak", "trigger_type": "ToPhoneNumber",
              "trigger_value": NUMBER, "target_applications": [{"sip_media_application_id": APP, "priority": 1}]}]
    path = d.write_config([handler_app(APP, "scripted", "scripted:handler", {"EVENTS_DIR": str(events)})],
                          rules=rules, numbers=[NUMBER])
    cfg = yaml.safe_load(path.read_text())
    cfg["speech"] = {"engine": "polly", "polly": {"region": "us-east-1", "endpoint_url": url}}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    d.start()
    try:
        heard = tmp_path / "heard.wav"
        res = d.call(user=NUMBER, record=heard, max_seconds=15)
        assert res["answered"] and res["hangup_by"] == "remote", res
        evs = wait_handler_events(events / "scripted.jsonl", NUMBER)
        assert [e["InvocationEventType"] for e in evs] == ["NEW_INBOUND_CALL", "HANGUP"]
    finally:
        assert d.stop() == 0
    # The daemon asked Polly (signed with the configured credentials) for exactly this speech.
    bodies = [r["body"] for r in polly.requests]
    assert any(b.get("Text") == TEXT and b.get("VoiceId") == "Joanna" for b in bodies), bodies
    # The phone heard Polly's audio: about 60 ms per character of loud "voice".
    x, rate = read_pcm(heard)
    frames = x[: len(x) // 160 * 160].reshape(-1, 160).astype(float)
    loud = np.sqrt(np.mean(frames ** 2, axis=1)) > 500
    voiced_s = loud.sum() * 0.02
    expected = len(TEXT) * MS_PER_CHAR / 1000
    assert 0.6 * expected <= voiced_s <= 1.3 * expected, (voiced_s, expected)
