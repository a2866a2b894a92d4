#!/usr/bin/env python3
"""DTMF detector benchmark: detection and rejection rates, talk-off, CPU cost.

Printed figures (no asserts):
  * detection rate over a grid inside the ITU-T Q.24 accept limits: 16 digits x
    frequency offsets (-1.5/0/+1.5 % on each tone) x twist (-8..+4 dB) x level of the
    weaker tone (-25..-8 dBm0) x white-noise SNR 15/20/30 dB x tone duration 40-100 ms
    (target >= 99 %), plus extra or wrong digits;
  * rejection rate outside the limits: frequency offsets 3.5-5 %, twist +8/-12 dB and
    beyond, level -35/-40 dBm0, durations 20/23 ms;
  * dropouts of 10/20 ms inside a press (one digit) and pauses of 40/60 ms between two
    presses of one key (two digits);
  * talk-off: digits reported on espeak-ng speech (several voices, resampled to 8 kHz
    with sox; target 0);
  * CPU: microseconds of CPU per second of audio for one detector (one call leg), fed
    in 20 ms and 250 ms chunks, and the number of simultaneous call legs one core
    could serve at that cost.

SNR is the power of the two tones over the power of white noise across 0-4 kHz.
0 dBm0 is a sine 3.14 dB below full scale. Audio is quantised to int16 like a recording.

usage: .venv/bin/python bench/dtmf_detection.py [--quick]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # CPU figures for one core (set before numpy loads)

import argparse  # noqa: E402
import itertools  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import wave  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chimevoice.media.dtmf import DtmfDetector  # noqa: E402

RATE = 8000
ROWS = (697.0, 770.0, 852.0, 941.0)
COLS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = "123A456B789C*0#D"

SPEECH = [
    ("en", "Thank you for calling. Please enter your account number, followed by the pound key. "
           "If you know your party's extension, you may dial it at any time."),
    ("en+f3", "For sales, press one. For support, press two. To repeat these options, press star. "
              "Our offices are open from nine to five, Monday through Friday."),
    ("de", "Guten Tag und herzlich willkommen. Bitte geben Sie Ihre Kundennummer ein und "
           "bestätigen Sie mit der Rautetaste. Vielen Dank für Ihren Anruf."),
    ("en+m3", "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore. "
              "Peter Piper picked a peck of pickled peppers."),
    ("en-us+f2", "Your call is important to us. All of our agents are currently busy. "
                 "Please stay on the line and your call will be answered in the order it was received."),
    ("fr", "Bonjour et bienvenue. Pour continuer en français, appuyez sur la touche étoile. "
           "Merci de patienter, un conseiller va prendre votre appel."),
    ("en+f4", "Hello? Hello, can you hear me? I would like to check the status of my order, "
              "number four five six seven eight nine. Yes, that is right, thank you very much."),
]


def amplitude(dbm0: float) -> float:
    return 10.0 ** ((dbm0 - 3.14) / 20.0)


def tone_pair(key: str, seconds: float, lo_db: float, hi_db: float, off_lo: float, off_hi: float, rng) -> np.ndarray:
    i = KEYS.index(key)
    n = int(round(seconds * RATE))
    t = np.arange(n) / RATE
    f1 = ROWS[i // 4] * (1.0 + off_lo)
    f2 = COLS[i % 4] * (1.0 + off_hi)
    p1, p2 = rng.uniform(0.0, 2.0 * np.pi, 2)
    return amplitude(lo_db) * np.sin(2 * np.pi * f1 * t + p1) + amplitude(hi_db) * np.sin(2 * np.pi * f2 * t + p2)


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def make_stream(keys, seconds, lo_db, hi_db, off_lo, off_hi, snr_db, rng):
    """Digits separated by 60-120 ms pauses; returns int16 samples and (key, start, end) seconds."""
    parts, marks, pos = [], [], 0
    tone_power = (amplitude(lo_db) ** 2 + amplitude(hi_db) ** 2) / 2.0
    for key in keys:
        gap = int(rng.integers(int(0.06 * RATE), int(0.12 * RATE)))
        parts.append(np.zeros(gap))
        pos += gap
        x = tone_pair(key, seconds, lo_db, hi_db, off_lo, off_hi, rng)
        parts.append(x)
        marks.append((key, pos / RATE, (pos + x.size) / RATE))
        pos += x.size
    parts.append(np.zeros(int(0.1 * RATE)))
    y = np.concatenate(parts)
    if snr_db is not None:
        y = y + rng.normal(0.0, np.sqrt(tone_power / 10.0 ** (snr_db / 10.0)), y.size)
    return to_int16(y), marks


def score(hits, marks):
    """(correct, missed, extra): a tone is correct when exactly one hit, of its digit, starts inside it;
    every other hit (a second report, a wrong digit, a hit in a pause) is extra."""
    used = set()
    correct = 0
    for key, start, end in marks:
        mine = [j for j, h in enumerate(hits) if start - 0.015 <= h.start_s <= end and j not in used]
        for j in mine:
            used.add(j)
        if len(mine) == 1 and hits[mine[0]].digit == key:
            correct += 1
    return correct, len(marks) - correct, len(hits) - correct


def detection_grid(rng, quick: bool):
    offsets = (-0.015, 0.0, 0.015)
    twists = (-8.0, -4.0, 0.0, 4.0)  # high group minus low group, dB
    levels = (-25.0, -15.0, -8.0)  # weaker tone, dBm0
    snrs = (15.0, 20.0, 30.0)
    durations = (0.040, 0.050, 0.070, 0.100)
    if quick:
        durations = (0.040, 0.070)
    total = correct = extra = 0
    worst: dict[str, list[int]] = {}
    t_cpu = 0.0
    audio_s = 0.0
    for off_lo, off_hi, twist, level, snr, dur in itertools.product(offsets, offsets, twists, levels, snrs, durations):
        lo_db = level + max(0.0, -twist)
        hi_db = level + max(0.0, twist)
        if amplitude(lo_db) + amplitude(hi_db) > 0.99:
            continue  # would clip
        y, marks = make_stream(KEYS, dur, lo_db, hi_db, off_lo, off_hi, snr, rng)
        t = time.process_time()
        hits = DtmfDetector().feed(y)
        t_cpu += time.process_time() - t
        audio_s += y.size / RATE
        c, m, e = score(hits, marks)
        total += len(marks)
        correct += c
        extra += e
        for name, value in (("offset", f"{off_lo:+.1%}/{off_hi:+.1%}"), ("twist", f"{twist:+.0f} dB"),
                            ("level", f"{level:.0f} dBm0"), ("snr", f"{snr:.0f} dB"),
                            ("duration", f"{dur * 1000:.0f} ms")):
            w = worst.setdefault(f"{name} {value}", [0, 0])
            w[0] += c
            w[1] += len(marks)
    return total, correct, extra, worst, audio_s, t_cpu


def rejection_grid(rng):
    """Streams outside the accept limits: (label, tones, hits)."""
    cases = []
    for off in (0.035, 0.04, 0.05):
        for where in ("low tone", "high tone", "both tones"):
            kws = []
            for sign in (-1, 1):
                kw = {}
                if where != "high tone":
                    kw["off_lo"] = sign * off
                if where != "low tone":
                    kw["off_hi"] = sign * off
                kws.append(kw)
            cases.append((f"frequency +-{off:.1%} {where}", kws))
    for twist in (8.0, 10.0, -12.0, -14.0):
        cases.append((f"twist {twist:+.0f} dB", [dict(twist=twist)]))
    for level in (-35.0, -40.0):
        cases.append((f"level {level:.0f} dBm0 per tone", [dict(level=level)]))
    for dur in (0.020, 0.023):
        cases.append((f"duration {dur * 1000:.0f} ms", [dict(seconds=dur)]))
    results = []
    for label, kws in cases:
        n = hits_total = 0
        for kw in kws:
            for snr in (None, 30.0, 20.0):
                for _ in range(4 // len(kws)):
                    twist = kw.get("twist", 0.0)
                    level = kw.get("level", -10.0 if abs(twist) < 9 else -12.0)
                    lo_db = level + max(0.0, -twist)
                    hi_db = level + max(0.0, twist)
                    y, marks = make_stream(KEYS, kw.get("seconds", 0.06), lo_db, hi_db, kw.get("off_lo", 0.0),
                                           kw.get("off_hi", 0.0), snr, rng)
                    hits = DtmfDetector().feed(y)
                    n += len(marks)
                    hits_total += len(hits)
        results.append((label, n, hits_total))
    return results


def dropouts_and_pauses(rng):
    """Presses with a dropout in the middle (one digit each) and pairs of presses of one key
    separated by a pause (two digits each), at 20 dB SNR: (label, presses, right count)."""
    out = []
    for gap_ms, expect in ((10, 1), (20, 1), (40, 2), (60, 2)):
        right = 0
        trials = 64
        for i in range(trials):
            key = KEYS[i % 16]
            a = tone_pair(key, rng.uniform(0.05, 0.2), -12.0, -10.0, 0.0, 0.0, rng)
            b = tone_pair(key, rng.uniform(0.05, 0.2), -12.0, -10.0, 0.0, 0.0, rng)
            y = np.concatenate((np.zeros(int(rng.integers(100, 500))), a, np.zeros(gap_ms * 8), b, np.zeros(800)))
            y = y + rng.normal(0.0, np.sqrt((amplitude(-12.0) ** 2 + amplitude(-10.0) ** 2) / 2 / 100.0), y.size)
            hits = DtmfDetector().feed(to_int16(y))
            right += [h.digit for h in hits] == [key] * expect
        kind = "dropout (one digit)" if expect == 1 else "pause (two digits)"
        out.append((f"{gap_ms} ms {kind}", trials, right))
    return out


def speech_file(tmp: Path) -> np.ndarray | None:
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        return None
    parts = []
    for i, (voice, text) in enumerate(SPEECH):
        raw = tmp / f"s{i}.wav"
        out = tmp / f"s{i}_8k.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
        subprocess.run(
            ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(out)], check=True, capture_output=True
        )
        with wave.open(str(out)) as w:
            parts.append(np.frombuffer(w.readframes(w.getnframes()), "<i2"))
        parts.append(np.zeros(RATE // 4, np.int16))
    return np.concatenate(parts)


def cpu_cost(audio: np.ndarray, chunk_ms: int, repeat: int = 3) -> float:
    """Microseconds of CPU per second of audio for one detector fed in chunks."""
    n = chunk_ms * RATE // 1000
    best = float("inf")
    for _ in range(repeat):
        det = DtmfDetector()
        t = time.process_time()
        for i in range(0, audio.size, n):
            det.feed(audio[i : i + n])
        best = min(best, time.process_time() - t)
    return best / (audio.size / RATE) * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer durations in the detection grid")
    args = ap.parse_args()
    rng = np.random.default_rng(20240601)
    t_start = time.time()

    total, correct, extra, cells, audio_s, t_cpu = detection_grid(rng, args.quick)
    print("== detection inside Q.24 limits ==")
    print(f"tones: {total}  detected: {correct}  rate: {correct / total:.3%}  missed: {total - correct}  "
          f"extra/wrong digits: {extra}")
    print("lowest rates by condition:")
    for name, (c, n) in sorted(cells.items(), key=lambda kv: kv[1][0] / kv[1][1])[:6]:
        print(f"  {name:26s} {c}/{n} = {c / n:.2%}")
    print(f"(grid audio {audio_s:.0f} s analysed in {t_cpu:.1f} s CPU, one chunk per stream)")

    print("\n== rejection outside the limits (16 digits; clean, 30 dB and 20 dB SNR) ==")
    for label, n, hits in rejection_grid(rng):
        print(f"  {label:34s} tones {n:4d}  hits {hits:3d}  rejected {1 - hits / n:.1%}")

    print("\n== dropouts and pauses (20 dB SNR) ==")
    for label, n, right in dropouts_and_pauses(rng):
        print(f"  {label:34s} {right}/{n} right")

    print("\n== talk-off (espeak-ng speech, 8 kHz) ==")
    with tempfile.TemporaryDirectory() as tmp:
        speech = speech_file(Path(tmp))
    if speech is None:
        print("  espeak-ng or sox missing: skipped")
    else:
        secs = speech.size / RATE
        for gain_db in (-12.0, 0.0, 6.0):
            y = to_int16(speech / 32768.0 * 10 ** (gain_db / 20))
            hits = DtmfDetector().feed(y)
            print(f"  {len(SPEECH)} voices, {secs:.1f} s, gain {gain_db:+.0f} dB: {len(hits)} digits "
                  f"{''.join(h.digit for h in hits)}")

    print("\n== CPU, one detector (one call leg) ==")
    mixed_rng = np.random.default_rng(7)
    digits, _ = make_stream(KEYS * 4, 0.08, -10.0, -8.0, 0.0, 0.0, 25.0, mixed_rng)
    noise = to_int16(mixed_rng.normal(0.0, 0.01, RATE * 20))
    material = {"line noise": noise, "continuous digits": digits}
    if speech is not None:
        material["speech"] = speech
    for name, audio in material.items():
        for chunk_ms in (20, 250):
            us = cpu_cost(audio, chunk_ms)
            print(f"  {name:18s} chunks {chunk_ms:3d} ms: {us:7.0f} us CPU per s of audio "
                  f"({us / 1e4:.2f} % of a core) -> {1e6 / us:6.0f} call legs per core")
    print(f"\n(benchmark ran {time.time() - t_start:.0f} s)")


if __name__ == "__main__":
    main()
