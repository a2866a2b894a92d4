"""The embedded AWS endpoint (docs/aws-local.md) over real SIP calls: a handler written like the
public Chime samples (tests/handlers/aws_callstate/index.py, no endpoint in it) keeps its call state
in DynamoDB and plays a prompt that the test uploaded with boto3; its recording is an S3 object that
boto3 reads back. The same code runs with an old boto3 bundled in the handler's folder and with one
that its requirements.txt brings; seed items from the YAML are readable; tables survive a restart.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import boto3
import numpy as np
import pytest
import yaml
from botocore.exceptions import ClientError

from chimevoice.media.analysis import dominant_frequency
from chimevoice.media.audio import read_pcm
from tests.support.harness import HANDLERS, Daemon, free_port, module_daemon, number_rules, write_tone

pytestmark = pytest.mark.sip

APP_NEW = "a1a1a1a1-0000-4000-8000-000000000001"
APP_BUNDLED = "a2a2a2a2-0000-4000-8000-000000000002"
APP_REQUIREMENTS = "a3a3a3a3-0000-4000-8000-000000000003"
APP_NODE = "a4a4a4a4-0000-4000-8000-000000000004"
NUMBERS = {APP_NEW: "+15550700001", APP_BUNDLED: "+15550700002", APP_REQUIREMENTS: "+15550700003",
           APP_NODE: "+15550700004"}
OLD_BOTO3 = "boto3==1.26.0"            # botocore 1.29: reads no AWS_ENDPOINT_URL_* variable
OLD_BOTOCORE = "1.29."
KEY_ID, SECRET = "testkey", "test-secret-for-aws-local"
TABLE = "CallState"
PROMPT_KEY = "greetings/welcome.wav"
SOURCE = HANDLERS / "aws_callstate"
SOURCE_NODE = HANDLERS / "aws_callstate_node"       # the same flow in Node.js (aws-sdk v2 + @aws-sdk v3)
TTS_TEXT = "Please leave a message after the tone."


def _pip_target(directory: Path, requirement: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--target", str(directory), requirement], check=True, capture_output=True, timeout=600)


def _app(app_id: str, name: str, folder: Path) -> dict:
    return {"id": app_id, "name": name, "handler": {
        "type": "python", "target": "index.lambda_handler", "python_path": [str(folder)],
        "environment": {"CALL_TABLE": TABLE, "PROMPT_BUCKET": "prompts"}}}


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    d = module_daemon(tmp_path_factory, "aws_local")
    bundled = d.workdir / "bundled"           # the handler with an old boto3 in its own folder
    shutil.copytree(SOURCE, bundled)
    _pip_target(bundled, OLD_BOTO3)
    with_requirements = d.workdir / "with-requirements"   # ... and one whose requirements.txt brings it
    shutil.copytree(SOURCE, with_requirements)
    (with_requirements / "requirements.txt").write_text(OLD_BOTO3 + "\n")
    apps = [_app(APP_NEW, "callstate", SOURCE), _app(APP_BUNDLED, "callstate-bundled", bundled),
            _app(APP_REQUIREMENTS, "callstate-requirements", with_requirements),
            {"id": APP_NODE, "name": "callstate-node", "handler": {
                "type": "nodejs", "target": "index.handler", "code_dir": str(SOURCE_NODE),
                "environment": {"CALL_TABLE": TABLE, "PROMPT_BUCKET": "prompts"}}}]
    rules = [rule for app_id, number in NUMBERS.items()
             for rule in number_rules([number], app_id, f"{app_id[:8]}-0000-4000-8001", app_id[:8])]
    path = d.write_config(apps, rules=rules, numbers=list(NUMBERS.values()))
    cfg = yaml.safe_load(path.read_text())
    d.dynamodb_port, d.s3_port, d.polly_port = free_port(), free_port(), free_port()
    cfg["aws_local"] = {
        "access_key_id": KEY_ID, "secret_access_key": SECRET,
        "dynamodb": {"listen": f"127.0.0.1:{d.dynamodb_port}", "tables": [
            {"name": TABLE, "hash_key": "TransactionId",
             "items": [{"TransactionId": "config", "prompt_key": PROMPT_KEY, "calls": 0, "tts_text": TTS_TEXT,
                        "languages": ["en-US", "de-DE"], "limits": {"max_seconds": 1.5}}]}]},
        "s3": {"listen": f"127.0.0.1:{d.s3_port}"}, "polly": {"listen": f"127.0.0.1:{d.polly_port}"},
        "lex_runtime": {"listen": f"127.0.0.1:{free_port()}"}}
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    d.start(timeout=300)                       # the first run installs the requirements.txt
    yield d
    d.stop()


def _client(d: Daemon, service: str):
    port = {"dynamodb": d.dynamodb_port, "s3": d.s3_port, "polly": d.polly_port}[service]
    return boto3.client(service, endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)


def _table(d: Daemon):
    return boto3.resource("dynamodb", endpoint_url=f"http://127.0.0.1:{d.dynamodb_port}", region_name="us-east-1",
                          aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET).Table(TABLE)


def _transactions(d: Daemon) -> dict[str, dict]:
    return {item["TransactionId"]: item for item in _table(d).scan()["Items"] if item["TransactionId"] != "config"}


def _call_and_get_item(d: Daemon, app_id: str, tmp_path: Path) -> tuple[dict, dict, Path]:
    before = set(_transactions(d))
    tone = write_tone(tmp_path / "caller-1000.wav", 1000, 15.0)
    heard = tmp_path / "heard.wav"
    res = d.call(user=NUMBERS[app_id], play=tone, record=heard, max_seconds=20)
    assert res["answered"], res
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        new = {k: v for k, v in _transactions(d).items() if k not in before}
        if new and next(iter(new.values()))["state"] == "ended":
            break
        time.sleep(0.1)
    assert len(new) == 1, new
    return next(iter(new.values())), res, heard


@pytest.fixture(scope="module")
def prompt(aws, tmp_path_factory):
    wav = write_tone(tmp_path_factory.mktemp("prompt") / "welcome.wav", 700, 1.5)
    _client(aws, "s3").upload_file(str(wav), "prompts", PROMPT_KEY)
    return wav


def test_seed_items_from_the_yaml_are_readable(aws):
    item = _client(aws, "dynamodb").get_item(TableName=TABLE, Key={"TransactionId": {"S": "config"}})["Item"]
    assert item["prompt_key"] == {"S": PROMPT_KEY}
    assert item["languages"] == {"L": [{"S": "en-US"}, {"S": "de-DE"}]}
    assert item["limits"] == {"M": {"max_seconds": {"N": "1.5"}}}


def test_an_uploaded_object_is_a_file_of_the_bucket_directory(aws, prompt):
    assert (aws.prompts / PROMPT_KEY).read_bytes() == prompt.read_bytes()
    listed = _client(aws, "s3").list_objects_v2(Bucket="prompts", Prefix="greetings/")
    assert [o["Key"] for o in listed["Contents"]] == [PROMPT_KEY]


def test_handler_keeps_state_in_dynamodb_plays_from_s3_and_records_to_s3(aws, prompt, tmp_path):
    item, _, heard = _call_and_get_item(aws, APP_NEW, tmp_path)
    # DynamoDB: the handler's put_item / update_item (resource and client) over the call
    assert item["state"] == "ended" and item["last_action"] == "RecordAudio"
    assert item["invocations"] == 3                  # NEW_INBOUND_CALL + 2 x ACTION_SUCCESSFUL
    assert not item["botocore"].startswith(OLD_BOTOCORE)
    assert item["voicemails_before"] == 0
    # S3 -> PlayAudio: the caller heard the 700 Hz prompt the test uploaded with boto3
    x, rate = read_pcm(heard)
    assert abs(dominant_frequency(x[int(0.2 * rate):int(1.2 * rate)].astype(float), rate) - 700) < 15
    # Polly -> S3 -> PlayAudio: after the prompt, the caller heard the speech the handler synthesized
    assert item["tts_bytes"] > 8000
    speech = x[int(1.7 * rate):int(1.7 * rate) + int(item["tts_bytes"]) // 2].astype(float)
    assert np.sqrt(np.mean(speech ** 2)) > 300
    assert abs(dominant_frequency(speech, rate) - 700) > 50
    # RecordAudio -> S3: the handler's head_object saw the object at once, boto3 reads it
    body = _client(aws, "s3").get_object(Bucket="prompts", Key=item["recording_key"])["Body"].read()
    assert len(body) == item["recording_bytes"] and item["recording_key"].startswith("voicemail/")
    (tmp_path / "voicemail.wav").write_bytes(body)
    rec, rec_rate = read_pcm(tmp_path / "voicemail.wav")
    assert abs(dominant_frequency(rec[2000:10000].astype(float), rec_rate) - 1000) < 15
    assert (aws.prompts / item["recording_key"]).read_bytes() == body


def test_a_node_handler_keeps_state_in_dynamodb_and_plays_and_records_through_s3(aws, prompt, tmp_path):
    """aws-sdk v2 (which reads no AWS_ENDPOINT_URL_* itself: the Node runtime's preload) and
    @aws-sdk/client-s3 v3 reach dynalite and the bucket folders with no endpoint in the code."""
    item, _, heard = _call_and_get_item(aws, APP_NODE, tmp_path)
    assert item["runtime"] == "nodejs" and item["state"] == "ended"
    assert item["invocations"] == 3 and item["last_action"] == "RecordAudio"
    x, rate = read_pcm(heard)
    assert abs(dominant_frequency(x[int(0.2 * rate):int(1.2 * rate)].astype(float), rate) - 700) < 15
    body = _client(aws, "s3").get_object(Bucket="prompts", Key=item["recording_key"])["Body"].read()
    assert item["recording_key"].startswith("voicemail-node/") and len(body) == item["recording_bytes"]
    (tmp_path / "voicemail.wav").write_bytes(body)
    rec, rec_rate = read_pcm(tmp_path / "voicemail.wav")
    assert abs(dominant_frequency(rec[2000:10000].astype(float), rec_rate) - 1000) < 15


def test_polly_endpoint_speaks_with_the_local_text_to_speech(aws):
    polly = _client(aws, "polly")
    voices = polly.describe_voices(LanguageCode="en-US")["Voices"]
    assert "Joanna" in {v["Id"] for v in voices} and all(v["LanguageCode"] == "en-US" for v in voices)
    out = polly.synthesize_speech(Text="Hello from chimevoice.", OutputFormat="mp3", VoiceId="Joanna")
    assert out["ContentType"] == "audio/mpeg" and out["AudioStream"].read()[:3] == b"ID3"
    pcm = polly.synthesize_speech(Text="Hello.", OutputFormat="pcm", VoiceId="Joanna")["AudioStream"].read()
    assert len(pcm) > 16000 * 2 * 0.3                     # pcm defaults to 16 kHz
    with pytest.raises(ClientError) as bad_rate:
        polly.synthesize_speech(Text="Hello.", OutputFormat="pcm", SampleRate="22050", VoiceId="Joanna")
    assert bad_rate.value.response["Error"]["Code"] == "InvalidSampleRateException"
    wrong_key = boto3.client("polly", endpoint_url=f"http://127.0.0.1:{aws.polly_port}", region_name="eu-west-1",
                             aws_access_key_id=KEY_ID, aws_secret_access_key="not-the-secret-at-all")
    with pytest.raises(ClientError) as denied:
        wrong_key.describe_voices()
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.parametrize("app_id", [APP_BUNDLED, APP_REQUIREMENTS], ids=["bundled", "requirements-txt"])
def test_an_old_boto3_reaches_the_local_endpoints_unchanged(aws, prompt, tmp_path, app_id):
    item, _, heard = _call_and_get_item(aws, app_id, tmp_path)
    assert item["botocore"].startswith(OLD_BOTOCORE), item["botocore"]
    assert item["voicemails_before"] >= 1          # the listing before RecordAudio saw the earlier ones
    assert item["state"] == "ended" and item["recording_key"].startswith("voicemail/")
    x, rate = read_pcm(heard)
    assert abs(dominant_frequency(x[int(0.2 * rate):int(1.2 * rate)].astype(float), rate) - 700) < 15


def test_requirements_are_installed_per_application_once(aws):
    installed = list((aws.data / "packages" / APP_REQUIREMENTS).iterdir())
    assert len(installed) == 1 and (installed[0] / "botocore").is_dir()
    assert not (aws.data / "packages" / APP_BUNDLED).exists()
    assert "installing" in aws.log_path.read_text()


def test_tables_survive_a_restart(aws, prompt):
    before = _transactions(aws)
    calls = _table(aws).get_item(Key={"TransactionId": "config"})["Item"]["calls"]
    assert before and calls >= 1
    aws.stop()
    aws.start(timeout=60)
    assert _transactions(aws) == before
    item = _table(aws).get_item(Key={"TransactionId": "config"})["Item"]
    assert item["calls"] == calls                    # the seed (calls: 0) did not overwrite it
    assert "installing" not in aws.log_path.read_text()       # requirements.txt: same hash, kept
