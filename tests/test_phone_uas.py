"""The test phone's answering mode (``phone.py --listen``): two real phone processes on loopback,
one calling the other, real SIP and RTP (no daemon)."""
from __future__ import annotations

import concurrent.futures

import pytest

from chimevoice.media.analysis import dominant_frequency
from chimevoice.media.audio import read_pcm
from tests.support.harness import ListeningPhone, free_port, phone_call, self_signed_cert, write_tone

pytestmark = pytest.mark.sip


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("uas")
    write_tone(d / "tone1000.wav", 1000, 1.0)
    write_tone(d / "tone400.wav", 400, 1.0)
    write_tone(d / "tone600.wav", 600, 1.0)
    self_signed_cert(d)                                  # media/cert.pem, media/key.pem
    return d


def heard(path, start: float = 0.0, end: float | None = None) -> tuple[float, float]:
    """(seconds, dominant frequency) of a recording, optionally of the part [start, end) s."""
    x, rate = read_pcm(path)
    part = x[int(start * rate):None if end is None else int(end * rate)]
    return len(x) / rate, dominant_frequency(part, rate)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_each_side_hears_the_others_tone(media, tmp_path, transport):
    tls = ["--tls-cert", str(media / "cert.pem"), "--tls-key", str(media / "key.pem")] if transport == "tls" else []
    with ListeningPhone(["--play", str(media / "tone400.wav"), "--record", str(tmp_path / "b.wav"),
                         "--max-seconds", "12", *tls], transport=transport) as b:
        a = phone_call(b.uri(), "--play", str(media / "tone1000.wav"), "--record", str(tmp_path / "a.wav"),
                       "--hangup-after", "2", "--max-seconds", "10", transport=transport)
        rb = b.result()
    assert a["answered"] and a["final_status"] == 200 and a["hangup_by"] == "local", a
    assert rb["answered"] and rb["hangup_by"] == "remote" and rb["played"] and not rb["cancelled"], rb
    assert rb["sent_statuses"] == [200] and rb["calls_received"] == 1
    assert abs(rb["connected_seconds"] - 2.0) < 0.5
    assert f"SIP/2.0/{transport.upper()} " in rb["invite"]
    a_len, a_freq = heard(tmp_path / "a.wav")
    b_len, b_freq = heard(tmp_path / "b.wav")
    assert a_len > 1.5 and abs(a_freq - 400) < 20, (a_len, a_freq)
    assert b_len > 1.5 and abs(b_freq - 1000) < 20, (b_len, b_freq)
    assert rb["recording"] == str(tmp_path / "b.wav")


def test_invite_details_are_reported(tmp_path):
    port = free_port()
    with ListeningPhone(["--max-seconds", "10"]) as b:
        a = phone_call(b.uri("+15550003333"), "--from-user", "+15105550199", "--local-port", str(port),
                       "--header", "X-Test: 1", "--header", "X-Other-Thing: a b;c=d",
                       "--header", "User-to-User: 00fa08;encoding=hex",
                       "--header", "Diversion: <sip:+15550002222@127.0.0.1>;reason=unconditional",
                       "--header", "P-Not-Reported: x", "--hangup-after", "0.5", "--max-seconds", "8")
        rb = b.result()
    assert a["answered"], a
    assert rb["request_uri"] == f"sip:+15550003333@127.0.0.1:{b.port}"
    assert rb["request_user"] == "+15550003333" and rb["to_user"] == "+15550003333"
    assert rb["from_user"] == "+15105550199" and rb["from"].startswith("sip:+15105550199@127.0.0.1;tag=")
    assert rb["to"] == "sip:+15550003333@127.0.0.1"
    assert rb["headers"] == {"X-Test": "1", "X-Other-Thing": "a b;c=d", "User-to-User": "00fa08;encoding=hex",
                             "Diversion": "<sip:+15550002222@127.0.0.1>;reason=unconditional"}
    assert rb["remote_address"] == f"127.0.0.1:{port}"
    assert rb["call_id"] and rb["call_id"] in rb["invite"]


def test_reject_gives_the_caller_that_final_status():
    with ListeningPhone(["--reject", "486", "--max-seconds", "10"]) as b:
        a = phone_call(b.uri(), "--max-seconds", "8")
        rb = b.result()
    assert not a["answered"] and a["final_status"] == 486, a
    assert not rb["answered"] and rb["final_status"] == 486 and rb["hangup_by"] == "local", rb
    assert rb["sent_statuses"] == [486] and not rb["cancelled"]


def test_no_answer_then_caller_cancels():
    with ListeningPhone(["--ring", "--no-answer", "--max-seconds", "10"]) as b:
        a = phone_call(b.uri(), "--max-seconds", "1.5")
        rb = b.result()
    assert not a["answered"] and a["statuses"][:1] == [180] and a["final_status"] == 487, a
    assert rb["cancelled"] is True and not rb["answered"] and rb["hangup_by"] == "remote", rb
    assert rb["sent_statuses"] == [180] and rb["final_status"] == 487


def test_ring_then_answer_after_a_second():
    with ListeningPhone(["--ring", "--answer-after", "1", "--hangup-after", "0.5", "--max-seconds", "10"]) as b:
        a = phone_call(b.uri(), "--max-seconds", "8")
        rb = b.result()
    assert a["statuses"].index(180) < a["statuses"].index(200), a
    assert a["answered"] and 0.9 <= a["setup_seconds"] < 1.6, a
    assert a["hangup_by"] == "remote" and rb["hangup_by"] == "local", (a, rb)
    assert rb["sent_statuses"] == [180, 200] and 0.9 <= rb["answer_seconds"] < 1.3


def test_early_media_is_heard_before_the_answer(media, tmp_path):
    with ListeningPhone(["--early-media", "--play", str(media / "tone400.wav"), "--answer-after", "1.5",
                         "--record", str(tmp_path / "b.wav"), "--max-seconds", "10"]) as b:
        a = phone_call(b.uri(), "--record", str(tmp_path / "a.wav"), "--play", str(media / "tone1000.wav"),
                       "--hangup-after", "1", "--max-seconds", "8")
        rb = b.result()
    assert a["statuses"].index(183) < a["statuses"].index(200) and a["answered"], a
    assert rb["sent_statuses"] == [183, 200] and rb["played"], rb
    a_len, early = heard(tmp_path / "a.wav", 0.1, 1.3)        # A records from the 183 on
    assert a_len > 2.2 and abs(early - 400) < 20, (a_len, early)
    b_len, b_freq = heard(tmp_path / "b.wav")                 # B records from its 200 on
    assert 0.6 < b_len < 1.6 and abs(b_freq - 1000) < 20, (b_len, b_freq)


def test_dtmf_both_ways():
    with ListeningPhone(["--dtmf", "0.4:12", "--hangup-after", "2", "--max-seconds", "10"]) as b:
        a = phone_call(b.uri(), "--dtmf", "0.3:#9", "--max-seconds", "8")
        rb = b.result()
    assert "".join(d for _, d in a["dtmf_received"]) == "12", a
    assert "".join(d for _, d in rb["dtmf_received"]) == "#9", rb
    assert rb["dtmf_sent"][0][1] == "12"


def test_two_concurrent_calls_each_recorded(media, tmp_path):
    tones = {"+15550001001": 1000, "+15550001002": 600}
    with ListeningPhone(["--calls", "2", "--play", str(media / "tone400.wav"), "--record", str(tmp_path / "b.wav"),
                         "--max-seconds", "12"]) as b:
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            futs = {user: ex.submit(phone_call, b.uri(user), "--play", str(media / f"tone{f}.wav"),
                                    "--hangup-after", "2", "--max-seconds", "8")
                    for user, f in tones.items()}
            results = {user: f.result() for user, f in futs.items()}
        rb = b.result()
    assert all(r["answered"] for r in results.values()), results
    assert rb["calls_received"] == 2 and [c["call"] for c in rb["calls"]] == [1, 2]
    assert {c["recording"] for c in rb["calls"]} == {str(tmp_path / "b.wav"), str(tmp_path / "b-2.wav")}
    for c in rb["calls"]:
        assert c["answered"] and c["hangup_by"] == "remote", c
        _, freq = heard(c["recording"])
        assert abs(freq - tones[c["request_user"]]) < 20, (c["request_user"], freq)
