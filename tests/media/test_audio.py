import os
import shutil
import struct
import subprocess
import threading

import numpy as np
import pytest

from chimevoice.media.analysis import dominant_frequency, goertzel_power
from chimevoice.media.audio import (
    INVALID_AUDIO_SOURCE,
    MAX_AUDIO_BYTES,
    MSG_CANNOT_ACCESS,
    MSG_INVALID_AUDIO_SOURCE,
    AudioCache,
    AudioSourceError,
    audio_source_error_for,
    parse_audio_source,
    read_pcm,
)
from chimevoice.media.storage import BucketStore, ObjectAccessError

from .wavutil import _GUID_TAIL, parse_header, tone, wav_bytes, write_wav

FREQ = 697.0  # not a divisor of any test rate, so resampling errors would show


@pytest.fixture
def cache(tmp_path):
    return AudioCache(tmp_path / "cache", rate=8000)


def assert_8k_mono_s16(path, expected_seconds, tol_s=0.003):
    h = parse_header(path)
    fields = (h["tag"], h["channels"], h["rate"], h["bits"], h["block_align"], h["byte_rate"])
    assert fields == (1, 1, 8000, 16, 2, 16000)
    assert h["data_size"] == len(h["data"]) == h["file_size"] - 44
    assert h["riff_size"] == h["file_size"] - 8
    samples = np.frombuffer(h["data"], dtype="<i2")
    assert abs(samples.size / 8000 - expected_seconds) <= tol_s
    return samples


FORMATS = [
    # (sample_format, rate, extensible)
    ("u8", 8000, False),
    ("s16", 16000, False),
    ("s16", 8000, False),
    ("s24", 48000, False),
    ("s32", 22050, False),
    ("f32", 44100, False),
    ("f64", 11025, False),
    ("s16", 96000, False),
    ("s24", 32000, True),
    ("f32", 96000, True),
    ("s16", 8000, True),
]


@pytest.mark.parametrize("sample_format,rate,extensible", FORMATS)
def test_prepare_mono_formats(cache, tmp_path, sample_format, rate, extensible):
    src = write_wav(tmp_path / "in.wav", tone(FREQ, 1.25, rate, 0.5), rate, sample_format, extensible=extensible)
    pa = cache.prepare(src)
    assert pa.rate == 8000
    assert pa.source == src
    assert pa.path.parent == tmp_path / "cache"
    assert abs(pa.duration_s - 1.25) <= 0.003
    samples = assert_8k_mono_s16(pa.path, 1.25)
    assert pa.frames == samples.size
    assert abs(dominant_frequency(samples, 8000) - FREQ) < 1.0
    # level preserved (0.5 full scale sine -> RMS 0.354), no scaling/offset mistakes
    core = samples[400:-400].astype(np.float64) / 32768.0
    assert abs(np.sqrt(np.mean(core**2)) - 0.5 / np.sqrt(2)) < 0.01
    assert abs(core.mean()) < 0.005
    assert goertzel_power(core, 8000, FREQ) / np.mean(core**2) > 0.98


@pytest.mark.parametrize(
    "sample_format,rate,extensible", [("s16", 44100, False), ("f32", 96000, True), ("s24", 48000, True)]
)
def test_prepare_stereo_downmixes_both_channels(cache, tmp_path, sample_format, rate, extensible):
    left = tone(697.0, 1.0, rate, 0.5)
    right = tone(1209.0, 1.0, rate, 0.5)
    src = write_wav(tmp_path / "st.wav", np.stack([left, right], axis=1), rate, sample_format, extensible=extensible)
    pa = cache.prepare(src)
    samples = assert_8k_mono_s16(pa.path, 1.0)
    x = samples[400:-400].astype(np.float64) / 32768.0
    # mean of the channels: each tone at amplitude 0.25 -> power 0.25**2/2
    for f in (697.0, 1209.0):
        assert goertzel_power(x, 8000, f) == pytest.approx(0.25**2 / 2, rel=0.05)


def test_prepare_full_scale_stereo_does_not_clip(cache, tmp_path):
    x = tone(440.0, 0.5, 44100, 1.0)
    src = write_wav(tmp_path / "st.wav", np.stack([x, x], axis=1), 44100, "s16")
    samples = assert_8k_mono_s16(cache.prepare(src).path, 0.5)
    assert np.abs(samples.astype(np.int32)).max() < 32767 * 1.02
    assert np.abs(samples.astype(np.int32)).max() > 32767 * 0.95


def test_prepare_six_channels(cache, tmp_path):
    x = tone(FREQ, 0.5, 48000, 0.5)
    src = write_wav(tmp_path / "six.wav", np.stack([x] * 6, axis=1), 48000, "s16")
    samples = assert_8k_mono_s16(cache.prepare(src).path, 0.5)
    assert abs(dominant_frequency(samples, 8000) - FREQ) < 1.0


needs_sox = pytest.mark.skipif(shutil.which("sox") is None, reason="sox not installed")


@needs_sox
@pytest.mark.parametrize(
    "args,rate,expect_tag",
    [
        (["-r", "44100", "-c", "2", "-b", "16"], 44100, 1),
        (["-r", "96000", "-c", "1", "-b", "24"], 96000, 0xFFFE),  # sox writes EXTENSIBLE here
        (["-r", "8000", "-c", "1", "-b", "8", "-e", "unsigned-integer"], 8000, 1),
        (["-r", "22050", "-c", "2", "-b", "32", "-e", "floating-point"], 22050, None),
    ],
)
def test_prepare_sox_generated_files(cache, tmp_path, args, rate, expect_tag):
    src = tmp_path / "sox.wav"
    subprocess.run(["sox", "-n", *args, str(src), "synth", "0.8", "sine", "1000", "gain", "-6"], check=True)
    if expect_tag is not None:
        assert struct.unpack("<H", src.read_bytes()[20:22])[0] == expect_tag
    samples = assert_8k_mono_s16(cache.prepare(src).path, 0.8)
    assert abs(dominant_frequency(samples, 8000) - 1000.0) < 1.0


def test_prepare_at_16k(tmp_path):
    cache16 = AudioCache(tmp_path / "c16", rate=16000)
    src = write_wav(tmp_path / "in.wav", tone(FREQ, 1.0, 44100), 44100, "s16")
    pa = cache16.prepare(src)
    h = parse_header(pa.path)
    assert (h["rate"], h["channels"], h["bits"]) == (16000, 1, 16)
    assert pa.frames == 16000 and pa.duration_s == 1.0


def test_streaming_wav_with_unset_sizes(cache, tmp_path):
    raw = bytearray(wav_bytes(tone(FREQ, 0.5, 8000), 8000, "s16"))
    struct.pack_into("<I", raw, 4, 0xFFFFFFFF)
    struct.pack_into("<I", raw, 40, 0xFFFFFFFF)
    src = tmp_path / "stream.wav"
    src.write_bytes(bytes(raw))
    samples = assert_8k_mono_s16(cache.prepare(src).path, 0.5)
    assert abs(dominant_frequency(samples, 8000) - FREQ) < 1.0


def test_extra_chunks_before_data(cache, tmp_path):
    info = b"LIST" + struct.pack("<I", 11) + b"INFOabcdefg" + b"\0"
    src = write_wav(tmp_path / "list.wav", tone(FREQ, 0.5, 16000), 16000, "s16", extra_chunks=info)
    assert_8k_mono_s16(cache.prepare(src).path, 0.5)


def test_read_pcm(tmp_path):
    x = tone(FREQ, 0.25, 8000)
    src = write_wav(tmp_path / "m.wav", x, 8000, "s16")
    samples, rate = read_pcm(src)
    assert rate == 8000 and samples.dtype == np.int16
    assert np.array_equal(samples, np.round(x * 32767).astype(np.int16))
    # non-s16 files are decoded (at their own rate, downmixed)
    st = write_wav(tmp_path / "s.wav", np.stack([x, x], axis=1), 8000, "f32")
    samples, rate = read_pcm(st)
    assert rate == 8000 and samples.size == x.size
    assert np.max(np.abs(samples.astype(np.int32) - np.round(x * 32767).astype(np.int32))) <= 2


# -- invalid files ---------------------------------------------------------------------


def assert_invalid(exc_info, reason):
    err = exc_info.value
    assert err.error_type == INVALID_AUDIO_SOURCE == "InvalidAudioSource"
    assert err.message == MSG_INVALID_AUDIO_SOURCE == "Audio Source parameter value is invalid."
    assert err.reason == reason
    assert err.as_action_data() == {
        "ErrorType": "InvalidAudioSource", "ErrorMessage": "Audio Source parameter value is invalid."
    }


def test_text_file_named_wav(cache, tmp_path):
    src = tmp_path / "notes.wav"
    src.write_text("this is not audio\n" * 50)
    with pytest.raises(AudioSourceError) as ei:
        cache.prepare(src)
    assert_invalid(ei, "not_wav")


def test_mp3_file_named_wav(cache, tmp_path):
    src = tmp_path / "song.wav"
    src.write_bytes(b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + b"\x00" * 4000)
    with pytest.raises(AudioSourceError) as ei:
        cache.prepare(src)
    assert_invalid(ei, "not_wav")


def test_mp3_in_wav_container(cache, tmp_path):
    src = write_wav(tmp_path / "mp3.wav", tone(FREQ, 0.2, 8000), 8000, "s16", format_tag=0x0055)
    with pytest.raises(AudioSourceError) as ei:
        cache.prepare(src)
    assert_invalid(ei, "compressed")


@needs_sox
@pytest.mark.parametrize("encoding", ["a-law", "u-law", "gsm-full-rate", "ima-adpcm"])
def test_compressed_wav_from_sox(cache, tmp_path, encoding):
    src = tmp_path / f"{encoding}.wav"
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", "1", "-e", encoding, str(src), "synth", "1", "sine", "440"], check=True
    )
    with pytest.raises(AudioSourceError) as ei:
        cache.prepare(src)
    assert_invalid(ei, "compressed")


def test_extensible_with_compressed_subformat(cache, tmp_path):
    raw = bytearray(wav_bytes(tone(FREQ, 0.2, 8000), 8000, "s16", extensible=True))
    sub_at = 12 + 8 + 24
    raw[sub_at : sub_at + 16] = struct.pack("<H", 0x0055) + _GUID_TAIL
    src = tmp_path / "ext-mp3.wav"
    src.write_bytes(bytes(raw))
    with pytest.raises(AudioSourceError) as ei:
        cache.prepare(src)
    assert_invalid(ei, "compressed")
    raw[sub_at : sub_at + 16] = bytes(range(16))  # unknown GUID
    src.write_bytes(bytes(raw))
    with pytest.raises(AudioSourceError) as ei:
        cache.prepare(src)
    assert_invalid(ei, "compressed")


def test_empty_data_chunk(cache, tmp_path):
    src = write_wav(tmp_path / "empty.wav", np.zeros(0), 8000, "s16")
    assert parse_header(src)["data_size"] == 0
    with pytest.raises(AudioSourceError) as ei:
        cache.prepare(src)
    assert_invalid(ei, "empty")
    assert list((tmp_path / "cache").iterdir()) == []  # no temp or half files left


def test_partial_frame_only_is_empty(cache, tmp_path):
    # one byte of a 16-bit stereo frame: there is no complete audio frame
    src = write_wav(tmp_path / "one.wav", np.zeros((0, 2)), 8000, "s16", data=b"\x01")
    with pytest.raises(AudioSourceError) as ei:
        cache.prepare(src)
    assert ei.value.message == MSG_INVALID_AUDIO_SOURCE


@pytest.mark.parametrize(
    "mutate,reason",
    [
        (lambda raw: raw[:12], "not_wav"),  # RIFF header only
        (lambda raw: b"RIFX" + raw[4:], "not_wav"),
        (lambda raw: raw[:4] + raw[4:8] + b"AVI " + raw[12:], "not_wav"),
        (lambda raw: raw[:36], "not_wav"),  # fmt but no data chunk
        (lambda raw: raw[:22] + struct.pack("<H", 0) + raw[24:], "bad_format"),  # 0 channels
        (lambda raw: raw[:24] + struct.pack("<I", 2000) + raw[28:], "bad_format"),  # 2 kHz
        (lambda raw: raw[:34] + struct.pack("<H", 12) + raw[36:], "bad_format"),  # 12-bit PCM
    ],
)
def test_broken_headers(cache, tmp_path, mutate, reason):
    raw = wav_bytes(tone(FREQ, 0.2, 8000), 8000, "s16")
    src = tmp_path / "broken.wav"
    src.write_bytes(mutate(raw))
    with pytest.raises(AudioSourceError) as ei:
        cache.prepare(src)
    assert_invalid(ei, reason)


def test_float16_is_rejected(cache, tmp_path):
    raw = bytearray(wav_bytes(tone(FREQ, 0.2, 8000), 8000, "s16"))
    struct.pack_into("<H", raw, 20, 3)  # IEEE float with 16 bits per sample
    src = tmp_path / "f16.wav"
    src.write_bytes(bytes(raw))
    with pytest.raises(AudioSourceError) as ei:
        cache.prepare(src)
    assert_invalid(ei, "bad_format")


def _sparse_wav(path, total_size, rate=16000):
    """A valid 16-bit mono WAV header followed by (sparse) silence, total_size bytes long."""
    hdr = bytearray(wav_bytes(np.zeros(0), rate, "s16"))
    data_size = total_size - len(hdr)
    struct.pack_into("<I", hdr, 4, len(hdr) - 8 + data_size)
    struct.pack_into("<I", hdr, len(hdr) - 4, data_size)
    with open(path, "wb") as fh:
        fh.write(hdr)
        fh.truncate(total_size)
    return path


def test_file_over_50mb_rejected(cache, tmp_path):
    src = _sparse_wav(tmp_path / "big.wav", MAX_AUDIO_BYTES + 1)
    assert MAX_AUDIO_BYTES == 52_428_800
    with pytest.raises(AudioSourceError) as ei:
        cache.prepare(src)
    assert_invalid(ei, "too_large")


def test_file_of_exactly_50mb_accepted(cache, tmp_path):
    src = _sparse_wav(tmp_path / "edge.wav", MAX_AUDIO_BYTES)
    pa = cache.prepare(src)
    assert pa.duration_s == pytest.approx((MAX_AUDIO_BYTES - 44) / 2 / 16000, abs=0.01)


# -- access errors ---------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    write_wav(bucket / "ok.wav", tone(FREQ, 0.3, 8000), 8000, "s16")
    (tmp_path / "outside.wav").write_bytes((bucket / "ok.wav").read_bytes())
    return BucketStore({"prompts": bucket})


def test_prepare_object_ok(cache, store):
    pa = cache.prepare_object(store, "prompts", "ok.wav")
    assert abs(pa.duration_s - 0.3) < 0.003


@pytest.mark.parametrize(
    "bucket,key",
    [
        ("prompts", "missing.wav"),
        ("other-bucket", "ok.wav"),
        ("prompts", "../outside.wav"),
        ("prompts", "/etc/hostname"),
    ],
)
def test_prepare_object_access_errors(cache, store, bucket, key):
    with pytest.raises(AudioSourceError) as ei:
        cache.prepare_object(store, bucket, key)
    assert ei.value.error_type == "InvalidAudioSource"
    assert ei.value.message == MSG_CANNOT_ACCESS == "Cannot access S3 bucket or audio file."


def test_prepare_object_invalid_file_in_bucket(cache, store, tmp_path):
    (tmp_path / "bucket" / "bad.wav").write_text("hello")
    with pytest.raises(AudioSourceError) as ei:
        cache.prepare_object(store, "prompts", "bad.wav")
    assert ei.value.message == MSG_INVALID_AUDIO_SOURCE


async def test_prepare_object_async(cache, store):
    pa = await cache.prepare_object_async(store, "prompts", "ok.wav")
    assert pa.frames == 2400
    with pytest.raises(AudioSourceError) as ei:
        await cache.prepare_object_async(store, "prompts", "nope.wav")
    assert ei.value.message == MSG_CANNOT_ACCESS


def test_prepare_missing_path(cache, tmp_path):
    with pytest.raises(AudioSourceError) as ei:
        cache.prepare(tmp_path / "nope.wav")
    assert ei.value.message == MSG_CANNOT_ACCESS


def test_audio_source_error_for_mapping():
    e = audio_source_error_for(ObjectAccessError("b", "k", "no_such_key"))
    assert (e.error_type, e.message) == ("InvalidAudioSource", "Cannot access S3 bucket or audio file.")
    e = audio_source_error_for(PermissionError(13, "denied"))
    assert e.message == "Cannot access S3 bucket or audio file."
    e = audio_source_error_for(ValueError("weird"))
    assert (e.error_type, e.message) == ("InvalidAudioSource", "Audio Source parameter value is invalid.")
    original = AudioSourceError.invalid("empty")
    assert audio_source_error_for(original) is original


def test_parse_audio_source():
    assert parse_audio_source({"Type": "S3", "BucketName": "b", "Key": "k.wav"}) == ("b", "k.wav")
    for bad in (
        None,
        "s3://b/k",
        {"Type": "HTTP", "BucketName": "b", "Key": "k"},
        {"BucketName": "b", "Key": "k"},
        {"Type": "S3", "BucketName": "", "Key": "k"},
        {"Type": "S3", "Key": "k"},
        {"Type": "S3", "BucketName": "b", "Key": ""},
        {"Type": "S3", "BucketName": "b", "Key": None},
    ):
        with pytest.raises(AudioSourceError) as ei:
            parse_audio_source(bad)
        assert (ei.value.error_type, ei.value.message) == (
            "InvalidAudioSource", "Audio Source parameter value is invalid."
        )


# -- caching ---------------------------------------------------------------------------


def test_cache_reuse_does_not_rewrite(cache, tmp_path):
    src = write_wav(tmp_path / "in.wav", tone(FREQ, 0.5, 44100), 44100, "s24")
    first = cache.prepare(src)
    st1 = os.stat(first.path)
    second = cache.prepare(src)
    st2 = os.stat(second.path)
    assert second == first
    assert cache.conversions == 1
    assert (st1.st_ino, st1.st_mtime_ns) == (st2.st_ino, st2.st_mtime_ns)
    # A fresh cache object on the same directory reuses the file too.
    other = AudioCache(tmp_path / "cache")
    assert other.prepare(src).path == first.path and other.conversions == 0


def test_cache_invalidated_by_source_change(cache, tmp_path):
    src = write_wav(tmp_path / "in.wav", tone(FREQ, 0.5, 8000), 8000, "s16")
    first = cache.prepare(src)
    write_wav(src, tone(1209.0, 0.75, 8000), 8000, "s16")
    os.utime(src, ns=(1, os.stat(first.path).st_mtime_ns + 10**9))
    second = cache.prepare(src)
    assert second.path != first.path
    assert cache.conversions == 2
    samples, _ = read_pcm(second.path)
    assert abs(dominant_frequency(samples, 8000) - 1209.0) < 1.0
    assert abs(second.duration_s - 0.75) < 0.003


def test_cache_key_depends_on_rate(tmp_path):
    src = write_wav(tmp_path / "in.wav", tone(FREQ, 0.5, 8000), 8000, "s16")
    a = AudioCache(tmp_path / "cache", rate=8000).prepare(src)
    b = AudioCache(tmp_path / "cache", rate=16000).prepare(src)
    assert a.path != b.path and parse_header(b.path)["rate"] == 16000


def test_cache_rebuilds_damaged_entry(cache, tmp_path):
    src = write_wav(tmp_path / "in.wav", tone(FREQ, 0.5, 8000), 8000, "s16")
    first = cache.prepare(src)
    first.path.write_bytes(b"junk")
    again = cache.prepare(src)
    assert again.path == first.path and cache.conversions == 2
    assert_8k_mono_s16(again.path, 0.5)


def test_concurrent_prepare_converts_once(cache, tmp_path):
    src = write_wav(tmp_path / "in.wav", tone(FREQ, 3.0, 48000), 48000, "f32")
    results, errors = [], []
    barrier = threading.Barrier(8)

    def work():
        try:
            barrier.wait()
            results.append(cache.prepare(src))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r.path for r in results}) == 1
    assert cache.conversions == 1
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [results[0].path.name]
    assert_8k_mono_s16(results[0].path, 3.0)


def test_concurrent_prepare_of_different_files(cache, tmp_path):
    srcs = [write_wav(tmp_path / f"in{i}.wav", tone(400.0 + 100 * i, 1.0, 44100), 44100, "s16") for i in range(6)]
    out = {}

    def work(i):
        out[i] = cache.prepare(srcs[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.conversions == 6
    for i in range(6):
        samples, _ = read_pcm(out[i].path)
        assert abs(dominant_frequency(samples, 8000) - (400.0 + 100 * i)) < 1.0
    assert not [p for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".wav") or p.name.startswith(".")]
