"""The daemon's wiring of the API (Daemon._start_api), without the SIP endpoint."""
from __future__ import annotations

import socket

import pytest

from chimevoice.api import UnavailableCallControl
from chimevoice.daemon import Daemon

from .conftest import CONFIG, OUR_NUMBER, SMA, FakeCallControl, Running, call, make_config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("implements", [False, True])
async def test_daemon_serves_the_api_with_the_managers_call_control(implements):
    config = make_config(CONFIG.replace("listen: 127.0.0.1:8090", f"listen: 127.0.0.1:{free_port()}"))
    daemon = Daemon(config)
    manager = FakeCallControl() if implements else UnavailableCallControl()
    server = await daemon._start_api(manager)
    try:
        client = Running(server).client()
        kwargs = dict(SipMediaApplicationId=SMA, FromPhoneNumber=OUR_NUMBER, ToPhoneNumber="+15557654321")
        if implements:
            await call(client.create_sip_media_application_call, **kwargs)
            assert len(manager.created) == 1
        else:
            with pytest.raises(client.exceptions.ServiceUnavailableException):
                await call(client.create_sip_media_application_call, **kwargs)
        status = "201" if implements else "503"
        assert daemon.metrics.counter("api_requests_total", operation="CreateSipMediaApplicationCall",
                                      status=status) == 1
    finally:
        await server.stop()
