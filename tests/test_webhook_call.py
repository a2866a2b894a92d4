"""A real call driven by an HTTP webhook handler (handler.type: http)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from chimevoice.media.analysis import dominant_frequency
from chimevoice.media.audio import read_pcm
from tests.support.harness import APP_A, NUMBER, RULE, Daemon, free_port, write_tone

pytestmark = pytest.mark.sip


class Webhook(BaseHTTPRequestHandler):
    events: list[dict] = []

    def do_POST(self):  # noqa: N802 - http.server API
        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Webhook.events.append(event)
        cid = event["CallDetails"]["Participants"][0]["CallId"]
        if event["InvocationEventType"] == "NEW_INBOUND_CALL":
            actions = [{"Type": "Pause", "Parameters": {"DurationInMilliseconds": 700}},
                       {"Type": "PlayAudio", "Parameters": {"CallId": cid, "AudioSource": {
                           "Type": "S3", "BucketName": "prompts", "Key": "tone.wav"}}},
                       {"Type": "Pause", "Parameters": {"DurationInMilliseconds": 700}},
                       {"Type": "Hangup", "Parameters": {"SipResponseCode": "0"}}]
        else:
            actions = []
        body = json.dumps({"SchemaVersion": "1.0", "Actions": actions}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_call_driven_by_http_webhook(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Webhook.events = []
    d = Daemon(tmp_path, free_port())
    d.write_config([{"id": APP_A, "name": "webhook", "handler": {
        "type": "http", "target": f"http://127.0.0.1:{server.server_address[1]}/chime"}}],
        rules=[{"id": RULE, "name": "r", "trigger_type": "ToPhoneNumber", "trigger_value": NUMBER,
                "target_applications": [{"sip_media_application_id": APP_A, "priority": 1}]}])
    write_tone(d.prompts / "tone.wav", 700, 1.0)
    d.start()
    try:
        res = d.call(record=tmp_path / "heard.wav")
    finally:
        assert d.stop() == 0
        server.shutdown()
    assert res["answered"] and res["hangup_by"] == "remote", res
    heard, rate = read_pcm(tmp_path / "heard.wav")
    loud = np.nonzero(np.abs(heard) > 1000)[0]
    assert (loud[-1] - loud[0]) / rate == pytest.approx(1.0, abs=0.05)
    assert dominant_frequency(heard.astype(np.float64), rate) == pytest.approx(700, abs=15)
    assert [e["InvocationEventType"] for e in Webhook.events] == ["NEW_INBOUND_CALL", "HANGUP"]
