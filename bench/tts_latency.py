#!/usr/bin/env python3
"""Text-to-speech latency: time until a ready 8 kHz WAV file, for the Speak actions.

For short / medium / long texts (and one SSML prompt with breaks and say-as):

* local cold   -- LocalSynthesizer (espeak-ng) with nothing cached: the full synthesis;
* local cached -- the same request again through CachingSynthesizer (a cache hit);
* local x N    -- N different cold requests at once (--concurrency), each one's latency;
* polly cold / cached -- PollySynthesizer through real boto3 against the local Polly
  look-alike of tests/speech/fake_polly.py (measures our client path: boto3 signing,
  HTTP, WAV wrapping; not Amazon's synthesis time).

Printed per case: p50 / p95 / max latency in ms, the audio length, and for cold local
synthesis the real-time factor (synthesis time / audio time).

usage: .venv/bin/python bench/tts_latency.py [--runs 20] [--concurrency 8] [--no-polly] [--json]
Everything is local (loopback for the Polly look-alike); temporary files are removed.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from chimevoice.speech import (  # noqa: E402
    CachingSynthesizer,
    LocalSynthesizer,
    PollySynthesizer,
    SpeechRequest,
)

SHORT = "Thank you for calling."
MEDIUM = ("Thank you for calling the support line. Please enter your account number, "
          "followed by the pound key. To speak with an agent, press zero.")
LONG = (MEDIUM + " If you know the extension of the person you are trying to reach, you may dial it at "
        "any time. For billing questions, press one. For technical support, press two. For sales, press "
        "three. To check the status of an existing order, press four, and have your order number ready. "
        "Our offices are open Monday through Friday, from eight in the morning until six in the evening. "
        "Outside these hours you may leave a message after the tone, and we will return your call on the "
        "next business day. Please note that calls may be recorded for quality and training purposes. If you "
        "would prefer that your call is not recorded, please tell the agent at the start of the call. You can "
        "also manage your account online, where you will find answers to the most common questions. To hear "
        "these options again, press star. Thank you for your patience.")[:1000]
SSML = ("<speak>Your verification code is <say-as interpret-as='digits'>482913</say-as>. "
        "<break time='500ms'/> Again, <prosody rate='slow'><say-as interpret-as='digits'>482913"
        "</say-as></prosody>. <break time='1s'/> Goodbye.</speak>")

CASES = [("short", SpeechRequest(SHORT)), ("medium", SpeechRequest(MEDIUM)),
         ("long", SpeechRequest(LONG)), ("ssml", SpeechRequest(SSML, text_type="ssml"))]


def variant(req: SpeechRequest, i: int) -> SpeechRequest:
    """A distinct request of the same length (so nothing is cached) for run ``i``."""
    if req.text_type == "ssml":
        return SpeechRequest(req.text.replace("Goodbye.", f"Goodbye {i}."), text_type="ssml")
    return SpeechRequest(f"{req.text[:-4]} {i % 10}{req.text[-2:]}"[: len(req.text)])


def wav_seconds(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        assert w.getframerate() == 8000 and w.getnchannels() == 1 and w.getsampwidth() == 2
        return w.getnframes() / w.getframerate()


def summary(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {"p50_ms": round(statistics.median(s), 2),
            "p95_ms": round(s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))], 2),
            "max_ms": round(s[-1], 2), "n": len(s)}


async def timed(tts, req) -> tuple[float, Path]:
    t0 = time.perf_counter()
    path = await tts.synthesize(req)
    return (time.perf_counter() - t0) * 1000.0, path


async def bench_backend(name: str, make_inner, runs: int, concurrency: int, work: Path) -> list[dict]:
    rows = []
    inner = make_inner(work / f"{name}-inner")
    cache = CachingSynthesizer(inner, work / f"{name}-cache")
    # Warm-up (process start-up paths, imports, boto3 client, disk).
    await inner.synthesize(SpeechRequest("warm up"))
    for label, req in CASES:
        cold, audio = [], 0.0
        for i in range(runs):
            ms, path = await timed(inner, variant(req, i))
            cold.append(ms)
            audio = wav_seconds(path)
        row = {"backend": name, "text": label, "chars": len(req.text), "mode": "cold",
               "audio_s": round(audio, 2), **summary(cold)}
        if name == "local":
            row["rtf"] = round(statistics.median(cold) / 1000.0 / audio, 4)
        rows.append(row)

        await cache.synthesize(req)  # fill
        hits = [(await timed(cache, req))[0] for _ in range(runs)]
        rows.append({"backend": name, "text": label, "chars": len(req.text), "mode": "cached",
                     "audio_s": round(audio, 2), **summary(hits)})

        if concurrency > 1:
            async def one(i: int) -> float:
                return (await timed(inner, variant(req, 1000 + i)))[0]
            t0 = time.perf_counter()
            lat = await asyncio.gather(*(one(i) for i in range(concurrency)))
            wall = (time.perf_counter() - t0) * 1000.0
            rows.append({"backend": name, "text": label, "chars": len(req.text),
                         "mode": f"cold x{concurrency}", "audio_s": round(audio, 2), **summary(list(lat)),
                         "wall_ms": round(wall, 1)})
    return rows


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--no-polly", action="store_true")
    ap.add_argument("--json", action="store_true", help="print JSON rows instead of a table")
    args = ap.parse_args()

    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="tts-bench-") as tmp:
        work = Path(tmp)
        local_probe = LocalSynthesizer(work / "probe")
        rows += await bench_backend("local", lambda d: LocalSynthesizer(d), args.runs, args.concurrency, work)

        if not args.no_polly:
            from aiohttp import web

            sys.path.insert(0, str(ROOT))
            from tests.speech.fake_polly import ACCESS_KEY, SECRET_KEY, FakePolly

            runner = web.AppRunner(FakePolly().app(), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
            made: list[PollySynthesizer] = []

            def make_polly(d: Path) -> PollySynthesizer:
                made.append(PollySynthesizer(d, region="us-east-1", endpoint_url=url, aws_access_key_id=ACCESS_KEY,
                                             aws_secret_access_key=SECRET_KEY, max_attempts=1))
                return made[-1]
            try:
                rows += await bench_backend("polly(local endpoint)", make_polly, args.runs, args.concurrency, work)
            finally:
                for p in made:
                    p.close()
                await runner.cleanup()

    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"TTS first-audio latency (time to a ready 8 kHz WAV); espeak-ng {local_probe.version}, "
          f"{args.runs} runs per cold/cached case, concurrency {args.concurrency}")
    head = f"{'backend':22} {'text':7} {'chars':>5} {'mode':9} {'audio s':>7} {'p50 ms':>8} {'p95 ms':>8} " \
           f"{'max ms':>8} {'RTF':>7} {'wall ms':>8}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['backend']:22} {r['text']:7} {r['chars']:5d} {r['mode']:9} {r['audio_s']:7.2f} "
              f"{r['p50_ms']:8.2f} {r['p95_ms']:8.2f} {r['max_ms']:8.2f} "
              f"{(str(r['rtf']) if 'rtf' in r else ''):>7} {(str(r['wall_ms']) if 'wall_ms' in r else ''):>8}")
    return 0


if __name__ == "__main__":
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sys.exit(asyncio.run(main()))
