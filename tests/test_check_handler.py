"""``chimevoice check-handler``: load, AWS SDK scan (boto3, AWS SDK for JavaScript v2/v3), variables."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from chimevoice.check_handler import scan_node_text, served
from chimevoice.cli import main

PY_HANDLER = '''\
import os

import boto3

TABLE = os.environ["TABLE_NAME"]
ddb = boto3.client("dynamodb")
s3 = boto3.resource("s3")
voice = boto3.Session(region_name="us-east-1").client("chime-sdk-voice")
GREETING = os.environ.get("GREETING_KEY", "welcome.wav")


def remember(call_id, digits):
    ddb.put_item(TableName=TABLE, Item={"id": {"S": call_id}, "digits": {"S": digits}})


def handler(event, context):
    call_id = event["CallDetails"]["TransactionAttributes"]["CallId"] if "CallDetails" in event else "x"
    item = ddb.get_item(TableName=TABLE, Key={"id": {"S": call_id}})
    obj = s3.Object(os.environ["PROMPT_BUCKET"], "menu.txt")
    text = obj.get()["Body"].read()
    voice.update_sip_media_application_call(SipMediaApplicationId="a", TransactionId="t", Arguments={})
    region = os.environ["AWS_REGION"]
    return {"SchemaVersion": "1.0", "Actions": [], "x": [item, text, region]}
'''


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(["check-handler", *argv])
    return status, capsys.readouterr().out


def test_python_handler_services_and_variables(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "index.py", PY_HANDLER)
    status, out = _run([str(tmp_path), "--env", "TABLE_NAME=calls", "--json"], capsys)
    assert status == 0, out
    report = json.loads(out)
    assert report["loaded"] is True and report["handler"]["target"] == "index:handler"
    rows = {(r["service"], r["operation"]): r for r in report["aws"]}
    assert set(rows) == {("dynamodb", "GetItem"), ("dynamodb", "PutItem"), ("s3", "GetObject"),
                         ("chime-sdk-voice", "UpdateSipMediaApplicationCall")}
    assert rows[("dynamodb", "PutItem")]["where"] == ["index.py:13"]
    assert rows[("dynamodb", "GetItem")]["where"] == ["index.py:18"]
    assert rows[("s3", "GetObject")]["where"] == ["index.py:20"]
    assert rows[("chime-sdk-voice", "UpdateSipMediaApplicationCall")]["served"] is True
    assert "endpoint_url" in rows[("chime-sdk-voice", "UpdateSipMediaApplicationCall")]["note"]
    assert rows[("dynamodb", "GetItem")]["served"] and rows[("s3", "GetObject")]["served"]     # aws_local
    assert "AWS_ENDPOINT_URL_DYNAMODB" in rows[("dynamodb", "GetItem")]["note"]
    env = {e["name"]: e for e in report["environment"]}
    assert set(env) == {"TABLE_NAME", "GREETING_KEY", "PROMPT_BUCKET", "AWS_REGION"}
    assert env["TABLE_NAME"]["required"] and env["TABLE_NAME"]["at_import"]
    assert env["GREETING_KEY"]["default"] == "welcome.wav"
    assert env["AWS_REGION"]["set_by"] == "chimevoice" and env["PROMPT_BUCKET"]["set_by"] == ""

    status, text = _run([str(tmp_path / "index.py"), "--env", "TABLE_NAME=calls"], capsys)
    assert status == 0
    assert "Load: OK" in text
    assert "chime-sdk-voice  UpdateSipMediaApplicationCall" in text and "yes, via the API*" in text
    assert "operations not served by chimevoice" not in text
    assert "AWS_REGION" in text and "set by chimevoice, as by Lambda" in text


def test_missing_variable_at_import_fails_the_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "index.py", PY_HANDLER)
    status, out = _run([str(tmp_path)], capsys)
    assert status == 1
    assert "Load: FAILED" in out and "KeyError" in out and "index.py:5" in out
    assert "TABLE_NAME (give them with --env NAME=VALUE)" in out


def test_handler_that_does_not_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "app.py", """\
        import os
        import no_such_module_xyz

        def lambda_handler(event, context):
            return {"SchemaVersion": "1.0", "Actions": []}
        """)
    status, out = _run([str(tmp_path / "app.py"), "--json"], capsys)
    assert status == 1
    report = json.loads(out)
    assert report["loaded"] is False
    assert "No module named 'no_such_module_xyz'" in report["load_error"]
    assert "app.py:2" in report["load_error"]


def test_no_handler_and_bad_arguments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "util.py", "def helper(x):\n    return x\n")
    status, out = _run([str(tmp_path)], capsys)
    assert status == 1 and "no handler found" in out
    status, out = _run([str(tmp_path / "nope.py")], capsys)
    assert status == 1 and "no such file or directory" in out
    with pytest.raises(SystemExit) as exc:
        main(["check-handler", str(tmp_path), "--env", "not-a-pair"])
    assert exc.value.code == 2


def test_node_handler_v2_and_v3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path, "index.js", """\
        const AWS = require("aws-sdk");
        const { S3Client, GetObjectCommand } = require("@aws-sdk/client-s3");
        const db = new AWS.DynamoDB.DocumentClient();
        const s3 = new S3Client({});
        const helper = require("./lib/speech");

        exports.handler = async (event) => {
          const row = await db.get({ TableName: process.env.TABLE_NAME, Key: { id: "1" } }).promise();
          const obj = await s3.send(new GetObjectCommand({ Bucket: process.env["PROMPTS"], Key: "a.wav" }));
          return { SchemaVersion: "1.0", Actions: [helper.speak(row, obj)] };
        };
        """)
    (tmp_path / "lib").mkdir()
    _write(tmp_path / "lib", "speech.js", """\
        const { PollyClient, SynthesizeSpeechCommand } = require("@aws-sdk/client-polly");
        const { VOICE } = process.env;
        exports.speak = function speak(row, obj) { return new SynthesizeSpeechCommand({ VoiceId: VOICE }); };
        """)
    status, out = _run([str(tmp_path), "--json"], capsys)
    assert status == 0, out
    report = json.loads(out)
    assert report["language"] == "node" and report["loaded"] is True    # loaded in a Node worker, not invoked
    assert report["handler"]["target"] == "index.handler"
    rows = {(r["service"], r["operation"]): r for r in report["aws"]}
    assert set(rows) == {("dynamodb", "GetItem"), ("s3", "GetObject"), ("polly", "SynthesizeSpeech")}
    assert rows[("dynamodb", "GetItem")]["where"] == ["index.js:8"]
    assert rows[("s3", "GetObject")]["where"] == ["index.js:9"]
    assert all(r["served"] for r in report["aws"])                      # by aws_local
    assert "AWS_ENDPOINT_URL_POLLY" in rows[("polly", "SynthesizeSpeech")]["note"]
    assert {e["name"] for e in report["environment"]} == {"TABLE_NAME", "PROMPTS", "VOICE"}
    status, text = _run([str(tmp_path / "index.js")], capsys)
    assert status == 0
    assert "Load: OK" in text and "dynamodb  GetItem" in text
    assert "type: nodejs, target: index.handler" in text
    # a Node handler that does not load is a failure, as a Python one is
    _write(tmp_path, "index.js", "const missing = require('./nowhere');\nexports.handler = async () => ({});\n")
    status, text = _run([str(tmp_path / "index.js")], capsys)
    assert status == 1 and "Load: FAILED: Runtime.ImportModuleError: Error: Cannot find module './nowhere'" in text
    assert "raised at" in text and "index.js:1" in text


def test_v2_clients_and_served_table() -> None:
    calls = scan_node_text("const AWS = require('aws-sdk');\nconst s3 = new AWS.S3();\n"
                           "const when = new Date();\ns3.putObject({Bucket: 'b'}).promise();\n", "x.js")
    assert [(c.service, c.operation, c.where) for c in calls] == [("s3", "PutObject", "x.js:4")]
    assert served("chime-sdk-voice", "CreateSipMediaApplicationCall")[0]
    assert served("chime-sdk-voice", "ListSipMediaApplications")[0]
    assert not served("chime-sdk-voice", "CreateSipMediaApplication")[0]
    assert not served("chime", "UpdateSipMediaApplicationCall")[0]
    assert served("lexv2-runtime", "RecognizeText")[0]                  # aws_local's Lex runtime
    assert not served("lexv2-runtime", "StartConversation")[0]
    assert not served("lex-runtime", "PostText")[0]


def test_legacy_session_and_paginator(tmp_path: Path) -> None:
    from chimevoice.check_handler import scan_boto3
    path = _write(tmp_path, "h.py", """\
        import boto3
        session = boto3.session.Session()
        chime = session.client("chime")
        table = boto3.resource("dynamodb").Table("t")

        def handler(event, context):
            chime.update_sip_media_application_call(SipMediaApplicationId="a", TransactionId="t", Arguments={})
            table.query(KeyConditionExpression="x")
            for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket="b"):
                pass
        """)
    got = {(c.service, c.operation, c.where) for c in scan_boto3([path])}
    assert got == {("chime", "UpdateSipMediaApplicationCall", "h.py:7"), ("dynamodb", "Query", "h.py:8"),
                   ("s3", "ListObjectsV2", "h.py:9")}
