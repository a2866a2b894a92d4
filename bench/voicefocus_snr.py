#!/usr/bin/env python3
"""VoiceFocus noise suppression: SNR gain per noise type and level, CPU cost per 20 ms frame.

Clean speech: espeak-ng sentences (three voices) resampled to 8 kHz, with pauses between them;
without espeak-ng, the demo prompts (``var/prompts/*.wav``, made by ``scripts/make-demo-audio``).
Noises, scaled to each input SNR over the whole signal:

- ``white``  Gaussian white noise (0–4 kHz);
- ``babble`` nine other espeak-ng utterances (three more voices) summed at random offsets;
- ``fan``    60 Hz hum with 24 harmonics plus low-passed broadband air noise;
- ``clicks`` keyboard-like clicks: decaying noise bursts of 8–20 ms, about 8 per second;
- ``none``   no noise at all (one row): what the suppressor does to clean speech, the floor of
  the output SNR.

Each mix is cut in 20 ms frames and fed to a fresh :class:`chimevoice.media.voicefocus.VoiceFocus`
(enabled), frame by frame as the media thread will. The output is compared with the clean speech
delayed by the suppressor's fixed latency (20 ms):

- SNR = 10·log10(Σ clean² / Σ (out − clean)²) — the error counts both residual noise and speech
  distortion, so a suppressor that damages speech is not rewarded;
- segmental SNR = mean of per-frame SNR (clamped to [−10, 35] dB) over frames with speech
  (within 40 dB of the loudest frame);
- noise cut = attenuation of the noise in the pauses between sentences;
- corr = correlation of the output with the clean speech.

CPU: the time spent in ``process`` per frame (µs) and the real-time factor (CPU time / audio time).

usage: .venv/bin/python bench/voicefocus_snr.py [--snr 0 5 10 15] [--noise white babble fan clicks]
                                                [--seconds 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chimevoice.media.voicefocus import FRAME_SAMPLES, LATENCY_SAMPLES, VoiceFocus  # noqa: E402
from chimevoice.speech.wavio import parse_wav_bytes, resample  # noqa: E402

RATE = 8000
TEXTS = [
    "Thank you for calling. Please leave a message after the tone, and we will call you back as soon as possible.",
    "The quick brown fox jumps over the lazy dog while the weather stays cold and windy in the north.",
    "Your account balance is one hundred and twenty three dollars and forty five cents. Press one to pay now.",
]
VOICES = [("en-us+f3", 150), ("en-us", 150), ("en-gb+m3", 150)]
BABBLE_VOICES = [("en-us+m1", 170), ("en-gb+f2", 140), ("en-us+m7", 160)]


def speak(text: str, voice: str, speed: int) -> np.ndarray:
    wav = subprocess.run(
        ["espeak-ng", "--stdout", "-v", voice, "-s", str(speed), text], check=True, capture_output=True
    ).stdout
    x, rate = parse_wav_bytes(wav)
    return resample(x, rate, RATE)


def clean_speech(seconds: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """(clean speech, list of babble sources)."""
    gap = np.zeros(RATE // 2, dtype=np.int16)
    if shutil.which("espeak-ng"):
        parts = [p for t, (v, s) in zip(TEXTS, VOICES) for p in (speak(t, v, s), gap)]
        babble = [speak(t, v, s) for t in TEXTS for v, s in BABBLE_VOICES]
    else:
        from chimevoice.media.audio import read_pcm

        prompts = sorted((ROOT / "var" / "prompts").glob("*.wav"))
        if not prompts:
            sys.exit("need espeak-ng or the demo prompts (scripts/make-demo-audio var/prompts)")
        srcs = []
        for p in prompts:
            x, r = read_pcm(p)
            srcs.append(resample(x, r, RATE))
        parts = [p for x in srcs for p in (x, gap)]
        babble = [np.roll(x, k * 997) for x in srcs for k in range(3)]
    clean = np.concatenate(parts)
    reps = int(np.ceil(seconds * RATE / clean.size))
    clean = np.tile(clean, reps)[: int(seconds * RATE)]
    clean = clean[: clean.size // FRAME_SAMPLES * FRAME_SAMPLES]
    return clean.astype(np.float64), [b.astype(np.float64) for b in babble]


def make_noise(kind: str, n: int, rng: np.random.Generator, babble_src: list[np.ndarray]) -> np.ndarray:
    if kind == "none":
        return np.zeros(n)
    if kind == "white":
        return rng.standard_normal(n)
    if kind == "babble":
        out = np.zeros(n)
        for s in babble_src:
            s = np.tile(s, n // s.size + 2)
            off = int(rng.integers(0, s.size - n))
            out += s[off : off + n]
        return out
    if kind == "fan":
        t = np.arange(n) / RATE
        hum = sum(np.sin(2 * np.pi * 60 * k * t + rng.uniform(0, 2 * np.pi)) / k**0.7 for k in range(1, 25))
        air = np.convolve(rng.standard_normal(n), np.ones(8) / 8, "same")
        return hum / np.std(hum) + 0.5 * air / np.std(air)
    if kind == "clicks":
        out = np.zeros(n)
        pos = 0
        while True:
            pos += int(rng.exponential(RATE / 8))
            if pos >= n - 200:
                return out
            length = int(rng.integers(60, 160))
            burst = rng.standard_normal(length) * np.exp(-np.arange(length) / rng.uniform(8, 25))
            out[pos : pos + length] += burst * rng.uniform(0.5, 1.0)
    raise ValueError(kind)


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    err = np.sum((est - ref) ** 2)
    return float(10 * np.log10(np.sum(ref**2) / err)) if err > 0 else float("inf")


def seg_snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    k = ref.size // FRAME_SAMPLES
    r = ref[: k * FRAME_SAMPLES].reshape(k, -1)
    e = est[: k * FRAME_SAMPLES].reshape(k, -1)
    power = np.sum(r**2, axis=1)
    active = power > power.max() * 1e-4
    s = 10 * np.log10(power / (np.sum((e - r) ** 2, axis=1) + 1e-9) + 1e-12)
    return float(np.mean(np.clip(s, -10, 35)[active]))


def noise_cut_db(ref: np.ndarray, noisy: np.ndarray, out: np.ndarray) -> float:
    """Attenuation of the noise in frames where the clean speech is (near) silent."""
    k = ref.size // FRAME_SAMPLES
    quiet = np.max(np.abs(ref[: k * FRAME_SAMPLES].reshape(k, -1)), axis=1) < 50
    if not quiet.any():
        return float("nan")
    a = noisy[: k * FRAME_SAMPLES].reshape(k, -1)[quiet]
    b = out[: k * FRAME_SAMPLES].reshape(k, -1)[quiet]
    return float(10 * np.log10(np.sum(a**2) / max(np.sum(b**2), 1e-9)))


def run(noisy: np.ndarray) -> tuple[np.ndarray, float]:
    """(output as float, CPU seconds in process)."""
    x = np.clip(np.round(noisy), -32768, 32767).astype(np.int16)
    vf = VoiceFocus(True)
    out = np.empty_like(x)
    spent = 0.0
    for i in range(0, x.size, FRAME_SAMPLES):
        frame = x[i : i + FRAME_SAMPLES]
        t0 = time.process_time()
        out[i : i + FRAME_SAMPLES] = vf.process(frame)
        spent += time.process_time() - t0
    vf.close()
    return out.astype(np.float64), spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--snr", type=float, nargs="+", default=[0, 5, 10, 15])
    ap.add_argument("--noise", nargs="+", default=["none", "white", "babble", "fan", "clicks"])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = ap.parse_args()

    clean, babble = clean_speech(args.seconds)
    rng = np.random.default_rng(args.seed)
    d = LATENCY_SAMPLES
    ref = clean[:-d]
    rows = []
    total_cpu = 0.0
    total_frames = 0
    for kind in args.noise:
        noise = make_noise(kind, clean.size, rng, babble)
        for snr_in in args.snr if kind != "none" else [np.inf]:
            g = 0.0 if kind == "none" else np.sqrt(np.mean(clean**2) / np.mean(noise**2) / 10 ** (snr_in / 10))
            noisy = np.clip(clean + g * noise, -32768, 32767)
            out, cpu = run(noisy)
            out = out[d:]
            frames = clean.size // FRAME_SAMPLES
            total_cpu += cpu
            total_frames += frames
            rows.append(
                {
                    "noise": kind,
                    "snr_in": snr_db(ref, noisy[:-d]),
                    "snr_out": snr_db(ref, out),
                    "seg_in": seg_snr_db(ref, noisy[:-d]),
                    "seg_out": seg_snr_db(ref, out),
                    "noise_cut": noise_cut_db(ref, noisy[:-d], out),
                    "corr_in": float(np.corrcoef(ref, noisy[:-d])[0, 1]),
                    "corr_out": float(np.corrcoef(ref, out)[0, 1]),
                    "us_per_frame": cpu / frames * 1e6,
                }
            )
    us = total_cpu / total_frames * 1e6
    rtf = us / (FRAME_SAMPLES / RATE * 1e6)
    if args.json:
        print(json.dumps({"rows": rows, "us_per_frame": us, "rtf": rtf}, indent=1))
        return
    print(f"VoiceFocus (SpeexDSP denoise, 8 kHz, 20 ms frames, latency {1000 * d / RATE:.0f} ms); "
          f"{args.seconds:.0f} s of speech per row")
    print(f"{'noise':7} {'SNR in':>7} {'SNR out':>8} {'gain':>6} {'segSNR in':>10} {'out':>6} {'gain':>6} "
          f"{'noise cut':>9} {'corr in':>8} {'out':>6} {'µs/frame':>9}")
    def num(v: float, fmt: str, width: int) -> str:
        return format(v, fmt).rjust(width) if np.isfinite(v) else "-".rjust(width)

    for r in rows:
        clean_row = r["noise"] == "none"
        gain = np.nan if clean_row else r["snr_out"] - r["snr_in"]
        cut = np.nan if clean_row else r["noise_cut"]
        print(f"{r['noise']:7} {num(r['snr_in'], '.1f', 7)} {r['snr_out']:8.1f} {num(gain, '+.1f', 6)} "
              f"{r['seg_in']:10.1f} {r['seg_out']:6.1f} {r['seg_out'] - r['seg_in']:+6.1f} "
              f"{num(cut, '.1f', 9)} {r['corr_in']:8.3f} {r['corr_out']:6.3f} {r['us_per_frame']:9.1f}")
    for kind in args.noise:
        sel = [r for r in rows if r["noise"] == kind]
        if kind == "none":
            continue
        print(f"mean gain {kind:7}: SNR {np.mean([r['snr_out'] - r['snr_in'] for r in sel]):+.1f} dB, "
              f"segSNR {np.mean([r['seg_out'] - r['seg_in'] for r in sel]):+.1f} dB")
    print(f"CPU: {us:.1f} µs per 20 ms frame, real-time factor {rtf:.4f} "
          f"(one core: ~{int(1 / rtf) if rtf else 0} streams)")


if __name__ == "__main__":
    main()
