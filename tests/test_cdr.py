import asyncio
import datetime as dt
import json
import os
import stat
import threading

import pytest

from chimevoice import cdr
from chimevoice.cdr import CdrWriter, billable_seconds, build_record, record_relative_path

T0 = 1_700_000_000.250  # 2023-11-14T22:13:20.250Z


def base(**over):
    kw = dict(
        aws_account_id="111122223333",
        transaction_id="9a5c3f2e-1b7d-4c1e-8f3a-2d6e5b4c3a21",
        call_id="c70f341a-adde-4406-9dea-1e01d34d033d",
        voice_connector_id="vc-demo",
        start_time=T0,
        answer_time=T0 + 1.5,
        end_time=T0 + 1.5 + 12.001,
        source_phone_number="+15105550101",
        source_phone_number_name="North Campus Reception",
        destination_phone_number="+15550100000",
        destination_phone_number_name="South Campus Reception",
        direction="Inbound",
        region="us-east-1",
        sip_rule_id="rule-1",
        sip_application_id="4e6b0d2e-7f5a-4d36-9a3c-1f0c2f8f9a10",
        call_leg_trigger_type="ToPhoneNumber",
        sip_response_code=200,
        sip_call_id="a84b4c76e66710@pc33.atlanta.example.com",
        transport="udp",
        source_address="127.0.0.1:5062",
        hangup_source="caller",
    )
    kw.update(over)
    return kw


SPEC_STRING_FIELDS = [
    "AwsAccountId",
    "TransactionId",
    "CallId",
    "VoiceConnectorId",
    "Status",
    "BillableDurationSeconds",
    "SchemaVersion",
    "SourcePhoneNumber",
    "SourcePhoneNumberName",
    "DestinationPhoneNumber",
    "DestinationPhoneNumberName",
    "UsageType",
    "ServiceCode",
    "Direction",
    "TimeStampEpochSeconds",
    "Region",
    "SipRuleId",
    "SipApplicationId",
    "CallLegTriggerType",
    "BillableVoiceFocusSeconds",
]


def test_record_fields_and_types():
    r = build_record(**base())
    assert list(r)[:20] == SPEC_STRING_FIELDS
    for field in SPEC_STRING_FIELDS:
        assert isinstance(r[field], str), field
    assert r == {
        "AwsAccountId": "111122223333",
        "TransactionId": "9a5c3f2e-1b7d-4c1e-8f3a-2d6e5b4c3a21",
        "CallId": "c70f341a-adde-4406-9dea-1e01d34d033d",
        "VoiceConnectorId": "vc-demo",
        "Status": "Completed",
        "BillableDurationSeconds": "13",  # 12.001 s answered -> ceil
        "SchemaVersion": "2.0",
        "SourcePhoneNumber": "+15105550101",
        "SourcePhoneNumberName": "North Campus Reception",
        "DestinationPhoneNumber": "+15550100000",
        "DestinationPhoneNumberName": "South Campus Reception",
        "UsageType": "USE1-PSTNAudio-inbound-minutes",
        "ServiceCode": "AmazonChimeVoiceConnector",
        "Direction": "Inbound",
        "TimeStampEpochSeconds": "1700000000",
        "Region": "us-east-1",
        "SipRuleId": "rule-1",
        "SipApplicationId": "4e6b0d2e-7f5a-4d36-9a3c-1f0c2f8f9a10",
        "CallLegTriggerType": "ToPhoneNumber",
        "BillableVoiceFocusSeconds": "0",
        "StartTimeEpochMilliseconds": 1_700_000_000_250,
        "AnswerTimeEpochMilliseconds": 1_700_000_001_750,
        "EndTimeEpochMilliseconds": 1_700_000_013_751,
        "SipResponseCode": 200,
        "SipCallId": "a84b4c76e66710@pc33.atlanta.example.com",
        "Transport": "UDP",
        "SourceAddress": "127.0.0.1:5062",
        "HangupSource": "caller",
    }
    assert set(r) == set(cdr.SPEC_FIELDS) | set(cdr.EXTENSION_FIELDS)


@pytest.mark.parametrize(
    "answered_s,expected",
    [(0.0, "0"), (0.001, "1"), (0.999, "1"), (1.0, "1"), (1.001, "2"), (59.5, "60"), (3600.0, "3600")],
)
def test_billable_duration_rounds_up(answered_s, expected):
    r = build_record(**base(answer_time=T0, end_time=T0 + answered_s))
    assert r["BillableDurationSeconds"] == expected


def test_billable_seconds_helper_exact_integers():
    assert billable_seconds(None, 10_000) == 0
    assert billable_seconds(1000, 1000) == 0
    assert billable_seconds(1000, 2000) == 1
    assert billable_seconds(1000, 2001) == 2


def test_unanswered_leg_is_failed_with_null_answer_time():
    r = build_record(**base(answer_time=None, end_time=T0 + 30, sip_response_code=480, hangup_source="system"))
    assert r["Status"] == "Failed"
    assert r["BillableDurationSeconds"] == "0"
    assert r["AnswerTimeEpochMilliseconds"] is None
    assert r["SipResponseCode"] == 480
    assert json.loads(json.dumps(r))["AnswerTimeEpochMilliseconds"] is None


def test_explicit_status_overrides_default():
    r = build_record(**base(status="Failed", sip_response_code=500))
    assert r["Status"] == "Failed"


def test_outbound_and_other_values():
    r = build_record(
        **base(
            direction="Outbound",
            region="eu-west-2",
            call_leg_trigger_type="CreateSipMediaApplicationCall",
            voice_focus_seconds=4.2,
            hangup_source="application",
            usage_type=None,
            sip_rule_id=None,
            source_phone_number="15105550101",  # bare digits -> E.164 with '+'
            destination_phone_number="sip:alice@example.com",  # not a number: unchanged
        )
    )
    assert r["Direction"] == "Outbound"
    assert r["UsageType"] == "EUW2-PSTNAudio-outbound-minutes"
    assert r["CallLegTriggerType"] == "CreateSipMediaApplicationCall"
    assert r["BillableVoiceFocusSeconds"] == "5"
    assert r["HangupSource"] == "application"
    assert r["SipRuleId"] == ""
    assert r["SourcePhoneNumber"] == "+15105550101"
    assert r["DestinationPhoneNumber"] == "sip:alice@example.com"
    assert build_record(**base(usage_type="custom"))["UsageType"] == "custom"


def test_datetime_inputs():
    start = dt.datetime(2024, 2, 29, 23, 59, 59, 500000, tzinfo=dt.timezone.utc)
    r = build_record(**base(start_time=start, answer_time=start, end_time=start + dt.timedelta(seconds=2)))
    assert r["StartTimeEpochMilliseconds"] == int(start.timestamp() * 1000)
    assert r["BillableDurationSeconds"] == "2"
    with pytest.raises(ValueError):
        build_record(**base(start_time=dt.datetime(2024, 1, 1), answer_time=None, end_time=T0))


@pytest.mark.parametrize(
    "over",
    [
        dict(status="Done"),
        dict(direction="inbound"),
        dict(hangup_source="callee"),
        dict(end_time=T0 - 1, answer_time=None),
        dict(answer_time=T0 - 1),
        dict(sip_response_code="200"),
        dict(sip_response_code=99),
        dict(sip_response_code=700),
        dict(start_ms=1, start_time=T0),
        dict(start_time=None),
        dict(end_ms=1.5, end_time=None),
        dict(sip_response_code=True),
        dict(transaction_id=""),
        dict(call_id=""),
        dict(call_leg_trigger_type=""),
        dict(voice_focus_seconds=-1),
    ],
)
def test_invalid_inputs_rejected(over):
    with pytest.raises((ValueError, TypeError)):
        build_record(**base(**over))


def test_millisecond_inputs_and_answered_flag():
    kw = base()
    for name in ("start_time", "answer_time", "end_time"):
        del kw[name]
    r = build_record(**kw, start_ms=1_700_000_000_250, answer_ms=1_700_000_001_000, end_ms=1_700_000_003_001)
    assert r == build_record(**base(start_time=T0, answer_time=T0 + 0.75, end_time=T0 + 2.751))
    assert r["BillableDurationSeconds"] == "3"
    r = build_record(**kw, start_ms=1_700_000_000_000, answer_ms=None, end_ms=1_700_000_004_000, answered=False)
    assert (r["Status"], r["BillableDurationSeconds"], r["AnswerTimeEpochMilliseconds"]) == ("Failed", "0", None)


def test_unknown_final_code_is_zero():
    assert build_record(**base(sip_response_code=0))["SipResponseCode"] == 0


def test_build_record_is_pure():
    assert build_record(**base()) == build_record(**base())


# -- writer ----------------------------------------------------------------------------


def test_write_path_and_content(tmp_path):
    rec = build_record(**base())
    path = CdrWriter(tmp_path).write(rec)
    assert path == (
        tmp_path / "Amazon-Chime-SMADRs" / "2023" / "11" / "14"
        / "9a5c3f2e-1b7d-4c1e-8f3a-2d6e5b4c3a21_c70f341a-adde-4406-9dea-1e01d34d033d.json"
    )
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n") and text.count("\n") == 1  # one JSON object
    assert json.loads(text) == rec
    assert list(json.loads(text)) == list(rec)  # field order kept
    assert sorted(os.listdir(path.parent)) == [path.name]  # no temp files left


def test_date_folder_is_utc_of_start(tmp_path):
    # 2024-03-01T00:30Z is still Feb 29 in New York: the folder must follow UTC.
    start = dt.datetime(2024, 3, 1, 0, 30, tzinfo=dt.timezone.utc).timestamp()
    rec = build_record(**base(start_time=start, answer_time=None, end_time=start + 5))
    assert record_relative_path(rec).parts[1:4] == ("2024", "03", "01")


def test_overwrite_same_leg(tmp_path):
    w = CdrWriter(tmp_path)
    p1 = w.write(build_record(**base(hangup_source="caller")))
    p2 = w.write(build_record(**base(hangup_source="application")))
    assert p1 == p2
    assert json.loads(p2.read_text())["HangupSource"] == "application"
    assert sorted(os.listdir(p2.parent)) == [p2.name]


def test_ids_cannot_escape_directory(tmp_path):
    rec = build_record(**base(transaction_id="../../evil", call_id="a/b"))
    path = CdrWriter(tmp_path / "cdrs").write(rec)
    assert path.parent == tmp_path / "cdrs" / "Amazon-Chime-SMADRs" / "2023" / "11" / "14"
    assert path.name == ".._.._evil_a_b.json"
    assert json.loads(path.read_text())["TransactionId"] == "../../evil"


def test_unicode_names_written_as_utf8(tmp_path):
    rec = build_record(**base(source_phone_number_name="Zürich Empfang"))
    path = CdrWriter(tmp_path).write(rec)
    assert "Zürich Empfang" in path.read_text(encoding="utf-8")


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    rec = build_record(**base())
    w = CdrWriter(tmp_path)

    def boom(src, dst):
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        w.write(rec)
    monkeypatch.undo()
    day = tmp_path / "Amazon-Chime-SMADRs" / "2023" / "11" / "14"
    assert os.listdir(day) == []  # temp file cleaned up, no partial record


def test_write_uses_fsync(tmp_path, monkeypatch):
    kinds = []
    real_fsync = os.fsync

    def spy(fd):
        kinds.append("file" if stat.S_ISREG(os.fstat(fd).st_mode) else "dir")
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    CdrWriter(tmp_path).write(build_record(**base()))
    assert kinds.count("file") == 1  # the record, before the rename
    assert kinds[-1] == "dir"  # the directory, after the rename


def test_record_not_json_serialisable_is_refused(tmp_path):
    rec = build_record(**base())
    rec["Bad"] = float("nan")
    with pytest.raises(ValueError):
        CdrWriter(tmp_path).write(rec)
    assert not list((tmp_path).rglob("*.json"))


def test_concurrent_writes(tmp_path):
    w = CdrWriter(tmp_path)
    paths = []

    def work(i):
        paths.append(w.write(build_record(**base(call_id=f"call-{i}"))))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    day = tmp_path / "Amazon-Chime-SMADRs" / "2023" / "11" / "14"
    names = sorted(os.listdir(day))
    assert len(names) == 20 and all(n.endswith(".json") and not n.startswith(".") for n in names)
    for p in paths:
        json.loads(p.read_text())


def test_write_async(tmp_path):
    rec = build_record(**base())
    path = asyncio.run(CdrWriter(tmp_path).write_async(rec))
    assert json.loads(path.read_text()) == rec


def test_write_batch_group_commit(tmp_path, monkeypatch):
    calls = []
    real = cdr._syncfs
    assert real is not None, "syncfs is expected on Linux"
    monkeypatch.setattr(cdr, "_syncfs", lambda fd: calls.append(fd) or real(fd))
    w = CdrWriter(tmp_path)
    recs = [build_record(**base(call_id=f"call-{i}")) for i in range(5)]
    bad = dict(recs[0])
    bad.pop("StartTimeEpochMilliseconds", None)
    bad.pop("TimeStampEpochSeconds", None)
    out = w.write_batch([*recs[:2], bad, *recs[2:]])
    assert len(calls) == 1                              # one flush for the whole batch
    assert isinstance(out[2], ValueError)
    paths = [p for p in out if not isinstance(p, Exception)]
    assert len(paths) == 5
    for rec, path in zip(recs, paths):
        assert json.loads(path.read_text()) == json.loads(json.dumps(rec))
    # nothing but the five records in the day folder: no temp files left behind
    assert sorted(os.listdir(paths[0].parent)) == sorted(p.name for p in paths)
