"""A content-addressed cache of synthesized prompts.

The key is a SHA-256 of every input that changes the audio: the request with its
defaults filled in (text, text type, engine, language, voice; see
:func:`~chimevoice.speech.request.canonical`) and the inner synthesizer's
``backend_id`` (engine, version, settings). Files live at ``cache_dir/ab/abcdef….wav``.

* A hit is a complete file at that path (its size matches its WAV header, so a file torn
  by a crash is never served); it is returned without calling the inner synthesizer.
* Identical requests that arrive while one synthesis is running wait for it (one
  synthesis, several callers). The synthesis runs as its own task: a caller cancelled
  (its leg hung up) does not cancel it for the others.
* Writes are atomic: the inner synthesizer's file is moved (``os.replace``) or, across
  file systems, copied to a temporary name beside the target and renamed into place.
* Errors are not cached: the next identical request tries again.
* ``max_bytes``: when set, the least recently used files (by mtime, refreshed on each
  hit) are removed once the cache grows past it, down to 90 %, never a file used in the
  last ``min_age_s`` seconds (it may be playing or about to be opened).
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from .request import SpeechRequest, canonical
from .wavio import wav_is_complete

__all__ = ["CachingSynthesizer", "CacheStats", "CACHE_FORMAT"]

log = structlog.get_logger("chimevoice.speech")

CACHE_FORMAT = 1


@dataclass
class CacheStats:
    hits: int = 0  # served from the cache without synthesizing
    joins: int = 0  # waited for an identical synthesis already running
    misses: int = 0  # syntheses started (calls to the inner synthesizer)
    errors: int = 0  # syntheses that failed
    evictions: int = 0  # files removed by the size limit


class CachingSynthesizer:
    def __init__(
        self,
        inner: Any,
        cache_dir: str | os.PathLike[str],
        *,
        max_bytes: int | None = None,
        min_age_s: float = 300.0,
        move: bool = True,
    ) -> None:
        self.inner = inner
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.min_age_s = min_age_s
        self.move = move
        self.stats = CacheStats()
        self._inflight: dict[str, asyncio.Task[Path]] = {}
        self._bytes: int | None = None

    @property
    def inner_backend_id(self) -> str:
        return str(getattr(self.inner, "backend_id", type(self.inner).__qualname__))

    @property
    def backend_id(self) -> str:
        return self.inner_backend_id

    def key_for(self, req: SpeechRequest) -> str:
        blob = json.dumps([CACHE_FORMAT, self.inner_backend_id, *canonical(req)], default=repr,
                          ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def path_for(self, req: SpeechRequest) -> Path:
        key = self.key_for(req)
        return self.cache_dir / key[:2] / f"{key}.wav"

    def close(self) -> None:
        """Close the inner synthesizer if it has resources (Polly's thread pool)."""
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()

    def contains(self, req: SpeechRequest) -> bool:
        return wav_is_complete(self.path_for(req))

    async def synthesize(self, req: SpeechRequest) -> Path:
        key = self.key_for(req)
        path = self.cache_dir / key[:2] / f"{key}.wav"
        if wav_is_complete(path):
            self.stats.hits += 1
            with contextlib.suppress(OSError):
                os.utime(path)
            return path
        task = self._inflight.get(key)
        if task is None:
            self.stats.misses += 1
            task = asyncio.ensure_future(self._fill(req, path))
            self._inflight[key] = task
            task.add_done_callback(functools.partial(self._done, key))
        else:
            self.stats.joins += 1
        return await asyncio.shield(task)

    def _done(self, key: str, task: asyncio.Task[Path]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled() and task.exception() is not None:  # also marks it retrieved
            self.stats.errors += 1

    async def _fill(self, req: SpeechRequest, path: Path) -> Path:
        src = Path(await self.inner.synthesize(req))
        size = await asyncio.to_thread(self._store, src, path)
        if self.max_bytes is not None:
            if self._bytes is None:
                self._bytes = await asyncio.to_thread(self._scan_bytes)
            else:
                self._bytes += size
            if self._bytes > self.max_bytes:
                self._bytes = await asyncio.to_thread(self._prune)
        return path

    def _store(self, src: Path, dst: Path) -> int:
        dst.parent.mkdir(parents=True, exist_ok=True)
        if self.move:
            try:
                os.replace(src, dst)
                return dst.stat().st_size
            except OSError:
                pass  # another file system: copy below
        fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
                shutil.copyfileobj(inp, out)
            os.chmod(tmp, 0o644)
            os.replace(tmp, dst)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        if self.move:
            with contextlib.suppress(OSError):
                os.unlink(src)
        return dst.stat().st_size

    def _entries(self) -> list[tuple[float, int, Path]]:
        entries = []
        for sub in self.cache_dir.iterdir():
            if not sub.is_dir() or len(sub.name) != 2:
                continue
            for f in sub.iterdir():
                if f.suffix == ".wav":
                    with contextlib.suppress(OSError):
                        st = f.stat()
                        entries.append((st.st_mtime, st.st_size, f))
        return entries

    def _scan_bytes(self) -> int:
        return sum(size for _, size, _ in self._entries())

    def _prune(self) -> int:
        import time

        entries = sorted(self._entries())
        total = sum(size for _, size, _ in entries)
        target = int((self.max_bytes or 0) * 0.9)
        now = time.time()
        for mtime, size, f in entries:
            if total <= target:
                break
            if now - mtime < self.min_age_s:
                continue
            with contextlib.suppress(OSError):
                f.unlink()
                total -= size
                self.stats.evictions += 1
        log.debug("speech.cache_pruned", bytes=total, evictions=self.stats.evictions)
        return total
