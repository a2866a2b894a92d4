"""The call-control API's view of the call layer (``chimevoice.api.CallControl``)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..api.control import CreateCallRequest, NotFoundException, ServiceUnavailableException, UpdateCallRequest
from ..engine import inputs as I

if TYPE_CHECKING:
    from .manager import CallManager


class ManagerCallControl:
    """CreateSipMediaApplicationCall and UpdateSipMediaApplicationCall on a CallManager."""

    def __init__(self, manager: CallManager) -> None:
        self.manager = manager

    async def create_call(self, request: CreateCallRequest) -> str:
        m = self.manager
        if not m.accepting:
            raise ServiceUnavailableException("The service is shutting down; no new calls are placed.")
        app = m.cfg.application(request.sip_media_application_id)
        if app is None:
            raise NotFoundException(f"SIP media application {request.sip_media_application_id} was not found.")
        driver = m.start_outbound(app, request.from_phone_number, request.to_phone_number,
                                  dict(request.sip_headers))
        driver.feed(I.OutboundCallRequested(dict(request.arguments), tuple(request.sip_headers.items())))
        return driver.transaction_id

    async def update_call(self, request: UpdateCallRequest) -> str:
        driver = self.manager.calls.by_transaction(request.transaction_id)
        if (driver is None or driver.finished
                or driver.tx.info.sip_media_application_id != request.sip_media_application_id):
            raise NotFoundException(f"Transaction {request.transaction_id} was not found.")
        driver.feed(I.UpdateRequested(dict(request.arguments)))
        return driver.transaction_id
