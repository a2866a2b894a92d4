"""Builds WAV files byte by byte (independent of the code under test)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

PCM, FLOAT, EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
_GUID_TAIL = bytes.fromhex("000000001000800000aa00389b71")


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(round(seconds * rate))) / rate)


def encode(x: np.ndarray, sample_format: str) -> bytes:
    """x: float in [-1, 1], shape (frames,) or (frames, channels); interleaved little-endian bytes."""
    x = np.asarray(x, dtype=np.float64)
    if sample_format == "u8":
        return np.clip(np.round(x * 127.0 + 128.0), 0, 255).astype(np.uint8).tobytes()
    if sample_format == "s16":
        return np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2").tobytes()
    if sample_format == "s24":
        v = np.clip(np.round(x * 8388607.0), -8388608, 8388607).astype("<i4").reshape(-1)
        b = v.view(np.uint8).reshape(-1, 4)[:, :3]
        return b.tobytes()
    if sample_format == "s32":
        return np.clip(np.round(x * 2147483647.0), -2147483648, 2147483647).astype("<i4").tobytes()
    if sample_format == "f32":
        return x.astype("<f4").tobytes()
    if sample_format == "f64":
        return x.astype("<f8").tobytes()
    raise ValueError(sample_format)


BITS = {"u8": 8, "s16": 16, "s24": 24, "s32": 32, "f32": 32, "f64": 64}


def wav_bytes(
    x: np.ndarray,
    rate: int,
    sample_format: str = "s16",
    *,
    extensible: bool = False,
    format_tag: int | None = None,
    extra_chunks: bytes = b"",
    data: bytes | None = None,
) -> bytes:
    x = np.asarray(x, dtype=np.float64)
    channels = 1 if x.ndim == 1 else x.shape[1]
    bits = BITS[sample_format]
    is_float = sample_format.startswith("f")
    tag = FLOAT if is_float else PCM
    block_align = channels * bits // 8
    if data is None:
        data = encode(x, sample_format)
    if extensible:
        sub = struct.pack("<H", tag) + _GUID_TAIL
        mask = {1: 0x4, 2: 0x3}.get(channels, 0)
        fmt = struct.pack(
            "<HHIIHHHHI", EXTENSIBLE, channels, rate, rate * block_align, block_align, bits, 22, bits, mask
        ) + sub
    else:
        fmt = struct.pack(
            "<HHIIHH", format_tag if format_tag is not None else tag, channels, rate, rate * block_align, block_align,
            bits,
        )
        if is_float:
            fmt += struct.pack("<H", 0)  # cbSize, as float writers emit
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt + (b"\0" if len(fmt) % 2 else b"")
    chunks += extra_chunks
    chunks += b"data" + struct.pack("<I", len(data)) + data + (b"\0" if len(data) % 2 else b"")
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def write_wav(path: Path, x: np.ndarray, rate: int, sample_format: str = "s16", **kw) -> Path:
    path.write_bytes(wav_bytes(x, rate, sample_format, **kw))
    return path


def parse_header(path: Path) -> dict:
    """fmt fields of a plain PCM file written by the code under test (checked independently)."""
    raw = path.read_bytes()
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    pos, out = 12, {}
    while pos + 8 <= len(raw):
        cid, size = raw[pos : pos + 4], struct.unpack("<I", raw[pos + 4 : pos + 8])[0]
        if cid == b"fmt ":
            tag, ch, rate, byte_rate, align, bits = struct.unpack("<HHIIHH", raw[pos + 8 : pos + 24])
            out.update(tag=tag, channels=ch, rate=rate, byte_rate=byte_rate, block_align=align, bits=bits)
        elif cid == b"data":
            out["data"] = raw[pos + 8 : pos + 8 + size]
            out["data_size"] = size
        pos += 8 + size + (size & 1)
    out["riff_size"] = struct.unpack("<I", raw[4:8])[0]
    out["file_size"] = len(raw)
    return out
