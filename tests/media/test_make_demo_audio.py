import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from chimevoice.media.audio import AudioCache

from .wavutil import parse_header

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "make-demo-audio"

needs_tools = pytest.mark.skipif(
    shutil.which("espeak-ng") is None or shutil.which("sox") is None, reason="espeak-ng and sox needed"
)


def run(*args, env=None):
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def test_script_is_executable():
    assert os.access(SCRIPT, os.X_OK)


@needs_tools
def test_generates_8k_mono_16bit_prompts(tmp_path):
    out = tmp_path / "prompts" / "nested"
    r = run(out)
    assert r.returncode == 0, r.stderr
    for name, min_s, max_s in (("welcome.wav", 2.5, 8.0), ("goodbye.wav", 0.3, 2.0)):
        h = parse_header(out / name)
        assert (h["tag"], h["channels"], h["rate"], h["bits"]) == (1, 1, 8000, 16)
        samples = np.frombuffer(h["data"], dtype="<i2")
        assert min_s < samples.size / 8000 < max_s
        assert np.abs(samples.astype(np.int32)).max() > 8000  # audible speech, not silence
    assert sorted(p.name for p in out.iterdir()) == ["goodbye.wav", "welcome.wav"]  # no temp files left
    # and AudioCache accepts them unchanged in format
    pa = AudioCache(tmp_path / "cache").prepare(out / "welcome.wav")
    assert pa.frames == len(parse_header(out / "welcome.wav")["data"]) // 2


@needs_tools
def test_idempotent(tmp_path):
    assert run(tmp_path).returncode == 0
    before = {p.name: os.stat(p).st_mtime_ns for p in tmp_path.iterdir()}
    (tmp_path / "goodbye.wav").unlink()
    r = run(tmp_path)
    assert r.returncode == 0, r.stderr
    assert os.stat(tmp_path / "welcome.wav").st_mtime_ns == before["welcome.wav"]  # skipped
    assert "skipped" in r.stdout
    assert (tmp_path / "goodbye.wav").stat().st_size > 44  # recreated


def test_usage_error(tmp_path):
    r = run()
    assert r.returncode == 2 and "usage" in r.stderr
    r = run(tmp_path / "a", tmp_path / "b")
    assert r.returncode == 2 and "usage" in r.stderr


def test_missing_tools_reported(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    # a PATH with the basic utilities but without espeak-ng and sox
    for tool in ("bash", "mkdir", "mktemp", "mv", "rm", "env"):
        found = shutil.which(tool)
        if found:
            os.symlink(found, bindir / tool)
    env = {"PATH": str(bindir), "HOME": str(tmp_path)}
    r = subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out")], capture_output=True, text=True, env=env)
    assert r.returncode != 0
    assert "espeak-ng" in r.stderr and "sox" in r.stderr
    assert not (tmp_path / "out" / "welcome.wav").exists()
