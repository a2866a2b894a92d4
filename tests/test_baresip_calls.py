"""baresip (Debian's baresip-core, a softphone a PBX admin would use) calls an encrypted Voice
Connector over TLS with mandatory SDES-SRTP: it hears the handler's tone, and the handler's
RecordAudio hears baresip's voice — the audio checked at both ends. baresip runs headless: its
voice is a WAV (aufile), what it hears is dumped to a WAV (sndfile), `-e /dial` places the call."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from chimevoice.media.analysis import dominant_frequency, write_tone_wav
from chimevoice.media.audio import read_pcm
from tests.support.harness import Daemon, free_port, handler_app, read_events, self_signed_cert, write_tone

pytestmark = pytest.mark.sip

TONE_APP = "bbbbbbbb-0000-4000-8000-000000000001"
RECORD_APP = "bbbbbbbb-0000-4000-8000-000000000002"
TONE = "+15550100405"        # scripted.py: tone1000.wav, then hang up
RECORD = "+15550100507"      # media.py "07": RecordAudio 3 s, then hang up


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    if shutil.which("baresip") is None:
        pytest.fail("baresip (Debian package baresip-core) is required; run scripts/bootstrap")
    work = tmp_path_factory.mktemp("baresip")
    events = work / "events"
    events.mkdir()
    cert, key = self_signed_cert(work)
    d = Daemon(work, free_port())
    d.tls_port = free_port()
    d.extra_listeners = [{"transport": "tls", "address": "127.0.0.1", "port": d.tls_port,
                          "certificate": str(cert), "private_key": str(key)}]
    d.events = events
    env = {"EVENTS_DIR": str(events), "PROMPT_BUCKET": "prompts"}
    apps = [handler_app(TONE_APP, "scripted", "scripted:handler", env),
            handler_app(RECORD_APP, "media", "media:handler", env)]
    rules = [{"id": f"bbbbbbbb-0000-4000-8000-00000000010{i}", "name": f"r{i}", "trigger_type": "ToPhoneNumber",
              "trigger_value": n, "target_applications": [{"sip_media_application_id": app, "priority": 1}]}
             for i, (n, app) in enumerate(((TONE, TONE_APP), (RECORD, RECORD_APP)))]
    cfg = d.write_config(apps, rules=rules, numbers=[TONE, RECORD])
    data = yaml.safe_load(cfg.read_text())
    data["voice_connectors"][0]["encryption"] = True          # TLS and SRTP, or no call
    cfg.write_text(yaml.safe_dump(data, sort_keys=False))
    write_tone(d.prompts / "tone1000.wav", 1000, 1.0)
    d.start()
    yield d
    assert d.stop() == 0, d.log_path.read_text()[-3000:]


def baresip_call(d: Daemon, work: Path, number: str, seconds: int) -> tuple[str, Path | None]:
    """baresip dials *number* over TLS with mandatory SRTP, speaking a 700 Hz tone; returns its
    output and the WAV of what it heard."""
    work.mkdir(exist_ok=True)
    dump = work / "dump"
    dump.mkdir(exist_ok=True)
    voice = work / "voice700.wav"
    write_tone_wav(voice, 700, seconds + 5, rate=8000)
    (work / "config").write_text("\n".join([
        "poll_method epoll", f"sip_listen 127.0.0.1:{free_port()}",
        f"audio_source aufile,{voice}", "audio_player aubridge,heard",
        "module_path /usr/lib/baresip/modules",
        *(f"module {m}.so" for m in ("g711", "aufile", "aubridge", "sndfile", "srtp", "menu", "account")),
        f"snd_path {dump}", ""]))
    (work / "accounts").write_text(
        "<sip:+15105550101@127.0.0.1;transport=tls>;regint=0;mediaenc=srtp-mand;audio_codecs=PCMU\n")
    res = subprocess.run(["baresip", "-f", str(work), "-t", str(seconds),
                          "-e", f"/dial sip:{number}@127.0.0.1:{d.tls_port};transport=tls"],
                         capture_output=True, text=True, timeout=seconds + 20)
    heard = sorted(dump.glob("*-dec.wav"))
    return res.stdout + res.stderr, heard[0] if heard else None


def test_baresip_hears_the_handler_over_tls_and_srtp(daemon, tmp_path):
    out, heard = baresip_call(daemon, tmp_path / "bs", TONE, 6)
    assert "SRTP is Enabled" in out and "Call established" in out, out[-3000:]
    assert heard is not None, out[-3000:]
    pcm, rate = read_pcm(heard)
    assert len(pcm) > rate, out[-2000:]
    assert abs(dominant_frequency(pcm[int(rate * 0.3):int(rate * 0.9)], rate) - 1000) < 25
    evs = [e for e in read_events(daemon.events / "scripted.jsonl")
           if e["CallDetails"]["Participants"][0]["To"] == TONE]
    assert evs and evs[0]["InvocationEventType"] == "NEW_INBOUND_CALL"


def test_the_handler_records_baresips_voice_over_tls_and_srtp(daemon, tmp_path):
    before = set(daemon.prompts.rglob("*.wav"))
    out, _ = baresip_call(daemon, tmp_path / "bs", RECORD, 7)
    assert "SRTP is Enabled" in out and "Call established" in out, out[-3000:]
    new = [p for p in daemon.prompts.rglob("*.wav") if p not in before]
    assert len(new) == 1, (new, out[-2000:])
    pcm, rate = read_pcm(new[0])
    assert len(pcm) >= 2 * rate
    assert abs(dominant_frequency(pcm[int(rate * 0.5):int(rate * 2.0)], rate) - 700) < 25
