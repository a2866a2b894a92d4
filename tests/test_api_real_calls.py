"""The call-control API on a running daemon: boto3 places real outbound calls that a test
phone answers over SIP, and updates a call in progress."""
from __future__ import annotations

import time

import boto3
import numpy as np
import pytest
import yaml
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from chimevoice.media.analysis import dominant_frequency
from chimevoice.media.audio import read_pcm
from tests.support.harness import ListeningPhone, free_port, handler_app, module_daemon, read_events, write_tone

pytestmark = pytest.mark.sip

SMA = "ffffffff-0000-4000-8000-000000000001"
OUR = "+15550100300"
KEY_ID, SECRET = "AKIDCHIMEVOICETEST1", "chimevoice-test-secret-key-0123456789"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = module_daemon(tmp_path_factory, "api")
    carrier_port, api_port = free_port(), free_port()
    apps = [handler_app(SMA, "outbound", "outbound:handler", {"EVENTS_DIR": str(d.events)})]
    cfg = d.write_config(apps, rules=[], numbers=[OUR])
    data = yaml.safe_load(cfg.read_text())
    data["voice_connectors"].append(
        {"id": "vc-carrier", "name": "carrier", "host_name": "carrier.chimevoice.local",
         "allow_list": ["127.0.0.1/32"],
         "origination": {"routes": [{"host": "127.0.0.1", "port": carrier_port, "protocol": "udp"}]}})
    data["pstn"] = {"voice_connector": "vc-carrier"}
    data["api"] = {"listen": f"127.0.0.1:{api_port}", "region": "us-east-1",
                   "access_keys": [{"access_key_id": KEY_ID, "secret_access_key": SECRET}]}
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    write_tone(d.prompts / "tone1000.wav", 1000, 1.0)
    write_tone(d.prompts / "tone400.wav", 400, 1.0)
    d.carrier_port, d.api_port = carrier_port, api_port
    d.start()
    yield d
    d.stop()


def client(d, secret: str = SECRET):
    return boto3.client("chime-sdk-voice", endpoint_url=f"http://127.0.0.1:{d.api_port}", region_name="us-east-1",
                        aws_access_key_id=KEY_ID, aws_secret_access_key=secret,
                        config=BotoConfig(retries={"max_attempts": 1}))


def events(d, transaction_id: str) -> list[dict]:
    return [e for e in read_events(d.events / "outbound.jsonl")
            if e["CallDetails"]["TransactionId"] == transaction_id]


def wait_kinds(d, tx: str, last: str, timeout: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kinds = [e["InvocationEventType"] for e in events(d, tx)]
        if kinds and kinds[-1] == last:
            return kinds
        time.sleep(0.1)
    raise AssertionError([e["InvocationEventType"] for e in events(d, tx)])


def test_boto3_places_a_call_that_a_phone_answers_and_hears_speech(setup, tmp_path):
    d = setup
    heard = tmp_path / "heard.wav"
    with ListeningPhone(["--ring", "--answer-after", "0.3", "--record", str(heard), "--max-seconds", "20"],
                        port=d.carrier_port) as phone:
        out = client(d).create_sip_media_application_call(
            SipMediaApplicationId=SMA, FromPhoneNumber=OUR, ToPhoneNumber="+15557650001",
            SipHeaders={"X-Campaign": "c-7"}, ArgumentsMap={"Reason": "reminder"})
        tx = out["SipMediaApplicationCall"]["TransactionId"]
        far = phone.result()
    assert far["answered"] and far["hangup_by"] == "remote", far
    assert far["request_user"] == "+15557650001" and far["from_user"] == OUR, far
    assert far["headers"].get("X-Campaign") == "c-7", far
    kinds = wait_kinds(d, tx, "HANGUP")
    assert kinds[:3] == ["NEW_OUTBOUND_CALL", "RINGING", "CALL_ANSWERED"], kinds
    first = events(d, tx)[0]
    assert first["ActionData"] == {"Type": "CallCreateRequest", "Parameters": {"Arguments": {"Reason": "reminder"}}}
    pcm, rate = read_pcm(heard)
    speech = pcm[int(rate * 0.7):]
    assert len(speech) > rate and float(np.sqrt(np.mean(speech.astype(np.float64) ** 2))) > 300   # audible speech
    d.wait_log("transaction_finished", TransactionId=tx)
    deadline = time.monotonic() + 5
    while not (cdr := [c for c in d.cdrs() if c["TransactionId"] == tx]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [(c["Direction"], c["CallLegTriggerType"]) for c in cdr] == [
        ("Outbound", "CreateSipMediaApplicationCall")], cdr


def test_update_during_play_audio_interrupts_it(setup, tmp_path):
    d = setup
    heard = tmp_path / "heard.wav"
    with ListeningPhone(["--record", str(heard), "--max-seconds", "25"], port=d.carrier_port) as phone:
        api = client(d)
        tx = api.create_sip_media_application_call(
            SipMediaApplicationId=SMA, FromPhoneNumber=OUR,
            ToPhoneNumber="+15557650002")["SipMediaApplicationCall"]["TransactionId"]
        wait_kinds(d, tx, "CALL_ANSWERED")
        time.sleep(2.0)                                   # hold music (1 kHz) is playing
        out = api.update_sip_media_application_call(SipMediaApplicationId=SMA, TransactionId=tx,
                                                    Arguments={"Prompt": "tone400.wav"})
        assert out["SipMediaApplicationCall"]["TransactionId"] == tx
        far = phone.result()
    kinds = wait_kinds(d, tx, "HANGUP")
    assert kinds[kinds.index("CALL_ANSWERED") + 1:] == ["CALL_UPDATE_REQUESTED", "ACTION_INTERRUPTED", "HANGUP"]
    interrupted = [e for e in events(d, tx) if e["InvocationEventType"] == "ACTION_INTERRUPTED"][0]
    assert interrupted["ActionData"]["Type"] == "PlayAudio"
    assert far["answered"] and far["hangup_by"] == "remote", far
    pcm, rate = read_pcm(heard)
    assert abs(dominant_frequency(pcm[int(rate * 0.5):int(rate * 1.5)], rate) - 1000) < 25
    tail = pcm[-int(rate * 1.5):-int(rate * 0.3)]
    assert abs(dominant_frequency(tail, rate) - 400) < 25     # the update's prompt, not the hold music


def test_wrong_secret_and_unknown_transaction_get_the_aws_errors(setup):
    d = setup
    with pytest.raises(ClientError) as bad:
        client(d, secret="not-the-secret-key-0123456789").create_sip_media_application_call(
            SipMediaApplicationId=SMA, FromPhoneNumber=OUR, ToPhoneNumber="+15557650003")
    assert bad.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError) as missing:
        client(d).update_sip_media_application_call(
            SipMediaApplicationId=SMA, TransactionId="00000000-0000-4000-8000-000000000000", Arguments={})
    assert missing.value.response["Error"]["Code"] == "NotFoundException"
    with pytest.raises(ClientError) as not_ours:
        client(d).create_sip_media_application_call(
            SipMediaApplicationId=SMA, FromPhoneNumber="+15559999999", ToPhoneNumber="+15557650003")
    assert not_ours.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
