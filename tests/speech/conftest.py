from __future__ import annotations

import pytest
from aiohttp import web

from chimevoice.speech import LocalSynthesizer, PollySynthesizer

from .fake_polly import ACCESS_KEY, SECRET_KEY, FakePolly


@pytest.fixture
def local_tts(tmp_path):
    return LocalSynthesizer(tmp_path / "local")


@pytest.fixture
async def fake_polly(monkeypatch):
    """A Polly look-alike on 127.0.0.1: ``(FakePolly, endpoint_url)``."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    polly = FakePolly(region="us-east-1")
    runner = web.AppRunner(polly.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield polly, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
def polly_tts(fake_polly, tmp_path):
    polly, url = fake_polly
    tts = PollySynthesizer(tmp_path / "polly", region="us-east-1", endpoint_url=url,
                           aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                           max_attempts=1)
    yield tts
    tts.close()
