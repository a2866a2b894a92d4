"""``chimevoice init --handler``: a configuration for a Lambda from its folder, checked and called."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from chimevoice.init_cmd import Candidate, scan_handler
from chimevoice.media.analysis import dominant_frequency, rms_dbfs
from chimevoice.media.audio import read_pcm
from tests.support.harness import PHONE, ROOT, free_port, write_tone

SAMPLE_INDEX = '''\
"""Welcome IVR, as in the Amazon Chime SDK PSTN audio samples."""
import logging
import os

logger = logging.getLogger()
logger.setLevel(logging.INFO)


def handler(event, context):
    event_type = event["InvocationEventType"]
    logger.info("RECV %s", event_type)
    call_id = event["CallDetails"]["Participants"][0]["CallId"]
    if event_type == "NEW_INBOUND_CALL":
        actions = [{
            "Type": "PlayAudio",
            "Parameters": {
                "CallId": call_id,
                "AudioSource": {
                    "Type": "S3",
                    "BucketName": os.environ['WELCOME_BUCKET'],
                    "Key": os.getenv('GREETING_KEY', 'welcome.wav'),
                },
            },
        }]
    elif event_type in ("ACTION_SUCCESSFUL", "ACTION_FAILED"):
        actions = [{"Type": "Hangup", "Parameters": {"CallId": call_id, "SipResponseCode": "0"}}]
    else:
        actions = []
    return {"SchemaVersion": "1.0", "Actions": actions}
'''

SAMPLE_TEMPLATE = '''\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  WelcomeFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: index.handler
      Runtime: python3.11
      Environment:
        Variables:
          WELCOME_BUCKET: !Ref PromptBucket
  PromptBucket:
    Type: AWS::S3::Bucket
'''


def sample_lambda(folder: Path) -> Path:
    """A Chime SMA sample repository: index.py, template.yaml, prompts/welcome.wav."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.py").write_text(SAMPLE_INDEX)
    (folder / "template.yaml").write_text(SAMPLE_TEMPLATE)
    (folder / "prompts").mkdir(exist_ok=True)
    write_tone(folder / "prompts" / "welcome.wav", 440.0, 2.0)
    return folder


SAMPLE_NODE_INDEX = """\
// Welcome IVR in Node.js, as in the Amazon Chime SDK PSTN audio samples.
exports.handler = async (event, context) => {
  const eventType = event.InvocationEventType;
  console.log('RECV', eventType);
  const callId = event.CallDetails.Participants[0].CallId;
  let actions = [];
  if (eventType === 'NEW_INBOUND_CALL') {
    actions = [{
      Type: 'PlayAudio',
      Parameters: {
        CallId: callId,
        AudioSource: {
          Type: 'S3', BucketName: process.env.WELCOME_BUCKET, Key: process.env.GREETING_KEY || 'welcome.wav',
        },
      },
    }];
  } else if (eventType === 'ACTION_SUCCESSFUL' || eventType === 'ACTION_FAILED') {
    actions = [{ Type: 'Hangup', Parameters: { CallId: callId, SipResponseCode: '0' } }];
  }
  return { SchemaVersion: '1.0', Actions: actions };
};
"""


def sample_node_lambda(folder: Path) -> Path:
    """The same sample for the Node.js runtime: index.js, template.yaml (Runtime: nodejs20.x), prompts/."""
    sample_lambda(folder)
    (folder / "index.py").unlink()
    (folder / "index.js").write_text(SAMPLE_NODE_INDEX)
    (folder / "template.yaml").write_text(SAMPLE_TEMPLATE.replace("python3.11", "nodejs20.x"))
    return folder


def chimevoice(*args: str, cwd: Path, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    # PYTHONPATH: the chimevoice of this checkout, whatever cwd is
    return subprocess.run([sys.executable, "-m", "chimevoice", *args], capture_output=True, text=True,
                          input=stdin, timeout=timeout, cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_init_yes_writes_a_config_that_check_config_accepts(tmp_path):
    sample_lambda(tmp_path / "welcome-ivr")
    res = chimevoice("init", "--handler", "welcome-ivr", "--yes", "--output", "cv.yaml", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert "Handler: welcome-ivr/index.py, function handler (Handler: index.handler in template.yaml)" in out
    assert "target:      index:handler   (Lambda's index.handler, written module:function)" in out
    # the environment variables, with where they are read and their defaults
    assert "WELCOME_BUCKET" in out and "GREETING_KEY" in out and "default 'welcome.wav'" in out
    assert "welcome-ivr/prompts/welcome.wav -> var/buckets/welcome-bucket/welcome.wav" in out
    assert "cv.yaml: OK (1 voice connectors, 1 SIP media applications, 1 SIP rules, 1 listeners)" in out
    assert "chimevoice run -c cv.yaml" in out and "sip:+15550100000@127.0.0.1:5060" in out

    cfg = yaml.safe_load((tmp_path / "cv.yaml").read_text())
    app = cfg["sip_media_applications"][0]
    assert app["handler"]["target"] == "index:handler"
    assert app["handler"]["python_path"] == ["welcome-ivr"]
    assert app["handler"]["environment"] == {"WELCOME_BUCKET": "welcome-bucket", "GREETING_KEY": "welcome.wav"}
    assert cfg["buckets"] == {"welcome-bucket": "var/buckets/welcome-bucket"}
    assert cfg["sip"]["listeners"] == [{"transport": "udp", "address": "127.0.0.1", "port": 5060}]
    assert cfg["voice_connectors"][0]["allow_list"] == ["127.0.0.1/32"]
    assert cfg["voice_connectors"][0]["phone_numbers"] == ["+15550100000"]
    assert cfg["sip_rules"][0]["target_applications"][0]["sip_media_application_id"] == app["id"]
    copied = tmp_path / "var" / "buckets" / "welcome-bucket" / "welcome.wav"
    assert copied.read_bytes() == (tmp_path / "welcome-ivr" / "prompts" / "welcome.wav").read_bytes()

    res = chimevoice("check-config", "cv.yaml", cwd=tmp_path)
    assert res.returncode == 0 and "OK" in res.stdout, res.stderr


def test_init_a_handler_file_with_options(tmp_path):
    sample_lambda(tmp_path / "ivr")
    res = chimevoice("init", "--handler", str(tmp_path / "ivr" / "index.py"), "--yes", "-o", "conf/c.yaml",
                     "--number", "+442071838750", "--port", "5999", "--env", "WELCOME_BUCKET=ivr-prompts-123",
                     "--env", "EXTRA=1", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    cfg = yaml.safe_load((tmp_path / "conf" / "c.yaml").read_text())
    env = cfg["sip_media_applications"][0]["handler"]["environment"]
    assert env == {"WELCOME_BUCKET": "ivr-prompts-123", "GREETING_KEY": "welcome.wav", "EXTRA": "1"}
    assert cfg["buckets"] == {"ivr-prompts-123": "var/buckets/ivr-prompts-123"}
    assert (tmp_path / "conf" / "var" / "buckets" / "ivr-prompts-123" / "welcome.wav").is_file()
    assert cfg["sip"]["listeners"][0]["port"] == 5999
    assert cfg["sip_rules"][0]["trigger_value"] == "+442071838750"
    assert "sip:+442071838750@127.0.0.1:5999" in res.stdout


def test_node_handler_gets_a_nodejs_application(tmp_path):
    sample_node_lambda(tmp_path / "node-ivr")
    res = chimevoice("init", "--handler", "node-ivr", "--yes", "-o", "cv.yaml", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Handler: node-ivr/index.js, export handler" in res.stdout
    cfg = yaml.safe_load((tmp_path / "cv.yaml").read_text())
    handler = cfg["sip_media_applications"][0]["handler"]
    assert handler["type"] == "nodejs" and handler["target"] == "index.handler"
    assert (tmp_path / handler["code_dir"]).resolve() == (tmp_path / "node-ivr").resolve()
    assert handler["environment"]["GREETING_KEY"] == "welcome.wav"          # the code's default
    bucket = handler["environment"]["WELCOME_BUCKET"]
    assert cfg["buckets"] == {bucket: f"var/buckets/{bucket}"}
    assert (tmp_path / "var" / "buckets" / bucket / "welcome.wav").is_file()
    assert "OK (1 voice connectors, 1 SIP media applications" in res.stdout + res.stderr    # checked: it loads


def test_existing_output_is_refused_without_force(tmp_path):
    sample_lambda(tmp_path / "ivr")
    (tmp_path / "cv.yaml").write_text("# mine\n")
    res = chimevoice("init", "--handler", "ivr", "--yes", "-o", "cv.yaml", cwd=tmp_path)
    assert res.returncode == 1 and "cv.yaml exists; use --force" in res.stderr
    assert (tmp_path / "cv.yaml").read_text() == "# mine\n"
    res = chimevoice("init", "--handler", "ivr", "--yes", "-o", "cv.yaml", "--force", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "index:handler" in (tmp_path / "cv.yaml").read_text()


def test_interactive_answers_land_in_the_config(tmp_path):
    sample_lambda(tmp_path / "ivr")
    res = chimevoice("init", "--handler", "ivr", "-o", "cv.yaml", cwd=tmp_path, stdin="my-prompts\nhello.wav\n")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "WELCOME_BUCKET (S3 bucket name) [welcome-bucket]: my-prompts" in res.stdout
    assert "GREETING_KEY [welcome.wav]: hello.wav" in res.stdout
    assert "no file was found for: hello.wav" in res.stdout
    cfg = yaml.safe_load((tmp_path / "cv.yaml").read_text())
    env = cfg["sip_media_applications"][0]["handler"]["environment"]
    assert env == {"WELCOME_BUCKET": "my-prompts", "GREETING_KEY": "hello.wav"}
    assert cfg["buckets"] == {"my-prompts": "var/buckets/my-prompts"}
    assert (tmp_path / "var" / "buckets" / "my-prompts" / "welcome.wav").is_file()


def test_interactive_bad_bucket_name_is_asked_again(tmp_path):
    sample_lambda(tmp_path / "ivr")
    res = chimevoice("init", "--handler", "ivr", "-o", "cv.yaml", cwd=tmp_path, stdin="Bad_Name\nok-name\n\n")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "not a valid S3 bucket name" in res.stdout
    env = yaml.safe_load((tmp_path / "cv.yaml").read_text())["sip_media_applications"][0]["handler"]["environment"]
    assert env["WELCOME_BUCKET"] == "ok-name" and env["GREETING_KEY"] == "welcome.wav"


def test_several_candidates_are_listed_and_chosen(tmp_path):
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    (repo / "lambda_function.py").write_text("def lambda_handler(event, context):\n    return {}\n")
    (repo / "tools" / "replay.py").write_text("async def handler(event, context):\n    return {}\n")
    res = chimevoice("init", "--handler", "repo", "--yes", "-o", "a.yaml", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Several functions look like a handler" in res.stdout and "tools/replay.py: handler" in res.stdout
    assert "--yes: taking the most likely one, 1. repo/lambda_function.py: lambda_handler" in res.stdout
    assert "target: lambda_function:lambda_handler" in (tmp_path / "a.yaml").read_text()
    res = chimevoice("init", "--handler", "repo", "-o", "b.yaml", cwd=tmp_path, stdin="2\n")
    assert res.returncode == 0, res.stdout + res.stderr
    cfg = yaml.safe_load((tmp_path / "b.yaml").read_text())
    assert cfg["sip_media_applications"][0]["handler"]["target"] == "replay:handler"
    assert cfg["sip_media_applications"][0]["handler"]["python_path"] == ["repo/tools"]
    assert cfg["buckets"] == {}


def test_packages_installed_next_to_the_handler_are_not_candidates(tmp_path):
    repo = tmp_path / "repo"
    (repo / "somepkg").mkdir(parents=True)
    (repo / "somepkg-1.0.dist-info").mkdir()
    (repo / "somepkg-1.0.dist-info" / "RECORD").write_text("somepkg/__init__.py,,\nsomepkg/handler.py,,\n")
    (repo / "somepkg" / "__init__.py").write_text("")
    (repo / "somepkg" / "handler.py").write_text("def handler(event, context):\n    return {}\n")
    (repo / "index.py").write_text("import somepkg\n\ndef handler(event, context):\n    return {}\n")
    res = chimevoice("init", "--handler", "repo", "--yes", "-o", "cv.yaml", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Several" not in res.stdout and "Handler: repo/index.py, function handler" in res.stdout


def test_import_time_variable_without_default_is_set_empty_with_a_warning(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "app.py").write_text('import os\nTABLE = os.environ["TABLE_NAME"]\nREGION = os.environ["AWS_REGION"]\n\n'
                                 'def handler(event, context):\n    return {"SchemaVersion": "1.0", "Actions": []}\n')
    res = chimevoice("init", "--handler", "repo", "--yes", "-o", "cv.yaml", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "TABLE_NAME" in res.stdout and "at import" in res.stdout
    assert 'warning: TABLE_NAME has no default: set to ""' in res.stdout
    assert "set by chimevoice as by Lambda, or inherited: AWS_REGION" in res.stdout
    env = yaml.safe_load((tmp_path / "cv.yaml").read_text())["sip_media_applications"][0]["handler"]["environment"]
    assert env == {"TABLE_NAME": ""}


def test_a_handler_that_does_not_load_is_reported_by_the_check(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "index.py").write_text("import not_installed_anywhere\n\ndef handler(event, context):\n    return {}\n")
    res = chimevoice("init", "--handler", "repo", "--yes", "-o", "cv.yaml", cwd=tmp_path)
    assert res.returncode == 2
    assert "Runtime.ImportModuleError" in res.stderr and "not_installed_anywhere" in res.stderr
    assert "does not pass the check" in res.stdout and (tmp_path / "cv.yaml").exists()


def test_no_handler_found(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "util.py").write_text("def helper(x):\n    return x\n")
    res = chimevoice("init", "--handler", "empty", "--yes", cwd=tmp_path)
    assert res.returncode == 1 and "no Python handler found" in res.stderr and "FILE.py:FUNCTION" in res.stderr
    res = chimevoice("init", "--handler", "empty/util.py:helper", "--yes", cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "target: util:helper" in (tmp_path / "chimevoice.yaml").read_text()


def test_scan_finds_buckets_keys_and_variables_in_imported_modules(tmp_path):
    (tmp_path / "index.py").write_text(textwrap.dedent('''\
        import os
        from os import environ, getenv
        import boto3
        from prompts import play

        RECORDINGS = environ.get("RECORDING_BUCKET_NAME")
        s3 = boto3.client("s3")

        def handler(event, context):
            s3.get_object(Bucket="archive-bucket-1", Key="x.json")
            return {"Actions": [play("menu/main.wav"),
                                {"Type": "RecordAudio", "Parameters": {"RecordingDestination": {
                                    "Type": "S3", "BucketName": RECORDINGS, "Prefix": "calls/"}}},
                                {"Type": "StartCallRecording", "Parameters": {"Destination": {
                                    "Type": "S3", "Location": "call-recordings-99/prefix"}}}],
                    "Debug": getenv("DEBUG", False)}
        '''))
    (tmp_path / "prompts.py").write_text(textwrap.dedent('''\
        import os
        PROMPTS = os.environ.setdefault("AUDIO_SOURCE", "ivr-prompts")

        def play(key):
            return {"Type": "PlayAudio", "Parameters": {"AudioSource": {
                "Type": "S3", "BucketName": PROMPTS, "Key": key}}}
        '''))
    scan = scan_handler(Candidate(tmp_path / "index.py", "handler", "index", tmp_path, 100, ""))
    assert [f.name for f in scan.files] == ["index.py", "prompts.py"]
    assert {n: (r.default, r.required, r.at_import) for n, r in scan.env.items()} == {
        "RECORDING_BUCKET_NAME": (None, False, True), "DEBUG": ("false", False, False),
        "AUDIO_SOURCE": ("ivr-prompts", False, True)}
    assert scan.bucket_vars == {"RECORDING_BUCKET_NAME": "recording", "AUDIO_SOURCE": "audio"}
    assert scan.bucket_literals == {"archive-bucket-1": "", "call-recordings-99": "recording"}
    assert scan.wav_keys == ["menu/main.wav"]


@pytest.mark.sip
@pytest.mark.parametrize("make_sample", [sample_lambda, sample_node_lambda], ids=["python", "nodejs"])
def test_generated_config_answers_a_call_and_plays_the_prompt(tmp_path, make_sample):
    make_sample(tmp_path / "welcome-ivr")
    port = free_port()
    res = chimevoice("init", "--handler", "welcome-ivr", "--yes", "--port", str(port), cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    log = tmp_path / "daemon.log"
    with open(log, "w") as err:
        daemon = subprocess.Popen([sys.executable, "-m", "chimevoice", "run", "-c", "chimevoice.yaml",
                                   "--drain-seconds", "1", "--log-format", "json"],
                                  cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 20
        while '"chimevoice_ready"' not in log.read_text():
            assert daemon.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        heard = tmp_path / "heard.wav"
        phone = subprocess.run([sys.executable, str(PHONE), "--uri", f"sip:+15550100000@127.0.0.1:{port}",
                                "--record", str(heard), "--max-seconds", "15"],
                               capture_output=True, text=True, timeout=40, cwd=ROOT)
        lines = [ln for ln in phone.stdout.splitlines() if ln.startswith("{")]
        assert lines, phone.stdout[-2000:] + phone.stderr[-2000:]
        result = json.loads(lines[-1])
        assert result["answered"] and result["hangup_by"] == "remote", result
        samples, rate = read_pcm(heard)
        assert rms_dbfs(samples) > -30, rms_dbfs(samples)
        assert abs(dominant_frequency(samples, rate) - 440.0) < 15
        deadline = time.monotonic() + 10
        while not list((tmp_path / "var" / "Amazon-Chime-SMADRs").rglob("*.json")):
            assert time.monotonic() < deadline, "no CDR"
            time.sleep(0.1)
        logs = [json.loads(ln) for ln in log.read_text().splitlines() if ln.startswith("{")]
        said = [e["line"] for e in logs if e.get("event") == "handler_output"]
        assert any("RECV NEW_INBOUND_CALL" in line for line in said), said
    finally:
        daemon.send_signal(signal.SIGINT)
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
