"""The HTTP call-control API: an aiohttp application speaking botocore's ``chime-sdk-voice``
model, so that ``boto3.client("chime-sdk-voice", endpoint_url=...)`` and
``aws chime-sdk-voice ... --endpoint-url ...`` work unchanged (docs/api.md).

Every request is SigV4-verified (:mod:`.sigv4`) against ``api.access_keys``; routes, input
validation and output member names come from the service model (:mod:`.model`); Get/List
operations read the configuration (:mod:`.resources`); Create/Update calls go to a
:class:`~.control.CallControl`.
"""
from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any

import structlog
from aiohttp import web

from ..config import Config
from ..engine.sipheaders import MAX_VALUE_CHARS, RESERVED_PREFIXES, invalid_headers_message, invalid_sip_headers
from ..metrics import Metrics
from .control import CallControl, CreateCallRequest, UpdateCallRequest
from .errors import ApiError, BadRequestException, NotFoundException, ServiceFailureException, UnknownOperationException
from .model import SERVICE, Route, load_model, parse_input, route_of, serialize_output
from .resources import ConfigResources, page
from .sigv4 import SigV4Verifier

__all__ = ["IMPLEMENTED", "ApiServer", "make_app"]

log = structlog.get_logger("chimevoice.api")

Params = dict[str, Any]
Handler = Callable[[Params], Awaitable[Mapping[str, Any]]]

MAX_BODY = 256 * 1024
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_EXTRA_SIP_HEADERS = ("user-to-user", "diversion")


def _e164(number: str) -> str:
    """``+`` and digits (the model's pattern allows the ``+`` to be left out)."""
    return number if number.startswith("+") else f"+{number}"


def _check_sip_headers(headers: Mapping[str, str]) -> None:
    """Chime accepts custom ``X-`` headers, ``User-to-User`` and ``Diversion`` on outbound legs,
    not its reserved ones (``X-AMZN``...), values up to 2048 characters (spec 04 §2.3; the same
    rules as CallAndBridge's SipHeaders: chimevoice.engine.sipheaders)."""
    bad = [n for n in invalid_sip_headers(headers) if n.lower().startswith(RESERVED_PREFIXES)
           or len(headers[n]) > MAX_VALUE_CHARS]
    if bad:
        raise BadRequestException(invalid_headers_message(bad))
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise BadRequestException(f"SipHeaders: {name[:64]!r} is not a valid header name.")
        if not (name.lower().startswith("x-") or name.lower() in _EXTRA_SIP_HEADERS):
            raise BadRequestException(
                f"SipHeaders: {name!r} is not allowed: use custom X- headers, User-to-User or Diversion.")
        if any(c in value for c in "\r\n\0"):
            raise BadRequestException(f"SipHeaders: the value of {name!r} must not contain CR, LF or NUL.")


RELOAD: web.AppKey[Callable[[Config], None]] = web.AppKey("chimevoice_reload")


class _Operations:
    """The implemented operations: input member dict -> output member dict."""

    def __init__(self, config: Config, control: CallControl, resources: ConfigResources) -> None:
        self.config, self.control, self.resources = config, control, resources

    def table(self) -> dict[str, Handler]:
        return {name: getattr(self, name) for name in IMPLEMENTED}

    def _application(self, id: str) -> None:
        if self.config.application(id) is None:
            raise NotFoundException(f"SIP media application {id} not found.")

    async def CreateSipMediaApplicationCall(self, p: Params) -> Mapping[str, Any]:
        self._application(p["SipMediaApplicationId"])
        from_number = _e164(p["FromPhoneNumber"])
        if not self.resources.is_phone_number(from_number):
            raise BadRequestException("FromPhoneNumber is not a phone number of this account "
                                      "(see ListPhoneNumbers).")
        headers = p.get("SipHeaders", {})
        _check_sip_headers(headers)
        request = CreateCallRequest(p["SipMediaApplicationId"], from_number, _e164(p["ToPhoneNumber"]),
                                    headers, p.get("ArgumentsMap", {}))
        transaction_id = await self.control.create_call(request)
        return {"SipMediaApplicationCall": {"TransactionId": transaction_id}}

    async def UpdateSipMediaApplicationCall(self, p: Params) -> Mapping[str, Any]:
        self._application(p["SipMediaApplicationId"])
        request = UpdateCallRequest(p["SipMediaApplicationId"], p["TransactionId"], p["Arguments"])
        transaction_id = await self.control.update_call(request)
        return {"SipMediaApplicationCall": {"TransactionId": transaction_id}}

    async def GetSipMediaApplication(self, p: Params) -> Mapping[str, Any]:
        return {"SipMediaApplication": self.resources.sip_media_application(p["SipMediaApplicationId"])}

    async def ListSipMediaApplications(self, p: Params) -> Mapping[str, Any]:
        items, token = page(self.resources.sip_media_applications(), p.get("MaxResults"), p.get("NextToken"))
        return {"SipMediaApplications": items, "NextToken": token}

    async def GetSipRule(self, p: Params) -> Mapping[str, Any]:
        return {"SipRule": self.resources.sip_rule(p["SipRuleId"])}

    async def ListSipRules(self, p: Params) -> Mapping[str, Any]:
        rules = self.resources.sip_rules(p.get("SipMediaApplicationId"))
        items, token = page(rules, p.get("MaxResults"), p.get("NextToken"))
        return {"SipRules": items, "NextToken": token}

    async def GetVoiceConnector(self, p: Params) -> Mapping[str, Any]:
        return {"VoiceConnector": self.resources.voice_connector(p["VoiceConnectorId"])}

    async def ListVoiceConnectors(self, p: Params) -> Mapping[str, Any]:
        items, token = page(self.resources.voice_connectors(), p.get("MaxResults"), p.get("NextToken"))
        return {"VoiceConnectors": items, "NextToken": token}

    async def GetVoiceConnectorTermination(self, p: Params) -> Mapping[str, Any]:
        return {"Termination": self.resources.termination(p["VoiceConnectorId"])}

    async def ListVoiceConnectorTerminationCredentials(self, p: Params) -> Mapping[str, Any]:
        return {"Usernames": self.resources.termination_usernames(p["VoiceConnectorId"])}

    async def GetVoiceConnectorOrigination(self, p: Params) -> Mapping[str, Any]:
        return {"Origination": self.resources.origination(p["VoiceConnectorId"])}

    async def ListPhoneNumbers(self, p: Params) -> Mapping[str, Any]:
        numbers = self.resources.phone_numbers(product_type=p.get("ProductType"), status=p.get("Status"),
                                               filter_name=p.get("FilterName"), filter_value=p.get("FilterValue"))
        items, token = page(numbers, p.get("MaxResults"), p.get("NextToken"))
        return {"PhoneNumbers": items, "NextToken": token}

    async def GetPhoneNumber(self, p: Params) -> Mapping[str, Any]:
        return {"PhoneNumber": self.resources.phone_number(p["PhoneNumberId"])}


IMPLEMENTED: tuple[str, ...] = (
    "CreateSipMediaApplicationCall",
    "UpdateSipMediaApplicationCall",
    "GetSipMediaApplication",
    "ListSipMediaApplications",
    "GetSipRule",
    "ListSipRules",
    "GetVoiceConnector",
    "ListVoiceConnectors",
    "GetVoiceConnectorTermination",
    "ListVoiceConnectorTerminationCredentials",
    "GetVoiceConnectorOrigination",
    "ListPhoneNumbers",
    "GetPhoneNumber",
)


def error_response(code: str, status: int, message: str, request_id: str) -> web.Response:
    """The restJson1 error botocore parses: status, ``x-amzn-ErrorType``, ``{"Code", "Message"}``."""
    return web.json_response({"Code": code, "Message": message}, status=status,
                             headers={"x-amzn-ErrorType": code, "x-amzn-RequestId": request_id})


def make_app(config: Config, control: CallControl, *, clock: Callable[[], float] = time.time,
             metrics: Metrics | None = None) -> web.Application:
    """The API application: routes of :data:`IMPLEMENTED` from the service model, SigV4 checked
    with ``config.api`` keys and region, ``clock`` (epoch seconds) for signature dates and the
    reported creation times."""
    model = load_model(SERVICE)
    started = datetime.fromtimestamp(clock(), timezone.utc)
    resources = ConfigResources(config, config.api.region, config.api.account_id, started)
    ops = _Operations(config, control, resources)
    operations = ops.table()
    verifier = SigV4Verifier({key.access_key_id: key.secret_access_key for key in config.api.access_keys},
                             region=config.api.region, clock=clock,
                             service=model.metadata.get("signingName", model.endpoint_prefix))

    @web.middleware
    async def frame(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        begun = time.perf_counter()
        request_id = str(uuid.uuid4())
        operation = request.match_info.route.name or "Unknown"
        access_key_id: str | None = None
        try:
            body = await request.read()
            access_key_id = verifier.verify(request.method, request.raw_path, request.headers.items(), body,
                                            host_url=f"{request.scheme}://{request.host}")
            response = await handler(request)
        except ApiError as exc:
            response = error_response(exc.code, exc.status, exc.message, request_id)
        except web.HTTPException as exc:  # e.g. a body over MAX_BODY
            code = "BadRequestException" if exc.status < 500 else "ServiceFailureException"
            response = error_response(code, exc.status, exc.reason, request_id)
        except Exception:
            log.exception("api_failure", operation=operation)
            failure = ServiceFailureException("The service encountered an unexpected error.")
            response = error_response(failure.code, failure.status, failure.message, request_id)
        response.headers.setdefault("x-amzn-RequestId", request_id)
        latency_ms = round((time.perf_counter() - begun) * 1000, 1)
        fields: dict[str, Any] = {"operation": operation, "status": response.status,
                                  "access_key_id": access_key_id, "latency_ms": latency_ms}
        if operation == "Unknown":
            fields.update(method=request.method, path=request.path[:200])
        log.info("api_request", **fields)
        if metrics is not None:
            metrics.inc("api_requests_total", operation=operation, status=str(response.status))
        return response

    def endpoint(route: Route) -> Callable[[web.Request], Awaitable[web.Response]]:
        operation = model.operation_model(route.operation)
        run = operations[route.operation]

        async def handle(request: web.Request) -> web.Response:
            if any(request.query.get(key) != value for key, value in route.query):
                raise UnknownOperationException(f"No operation {request.method} {request.path}.")
            params = parse_input(operation, request.match_info, request.query, await request.read())
            output = await run(params)
            return web.json_response(serialize_output(operation, output), status=route.status)

        return handle

    async def unknown(request: web.Request) -> web.Response:
        raise UnknownOperationException(f"No operation {request.method} {request.path[:200]}.")

    app = web.Application(middlewares=[frame], client_max_size=MAX_BODY)
    for name in IMPLEMENTED:
        route = route_of(model.operation_model(name))
        app.router.add_route(route.method, route.path, endpoint(route), name=name)
    app.router.add_route("*", "/{tail:.*}", unknown, name="Unknown")
    def reload(new: Config) -> None:
        """A reloaded configuration (SIGHUP): Get/List and the application check read it; the
        keys, region and listener (``api``) stay as they started."""
        ops.config = new
        ops.resources = ConfigResources(new, config.api.region, config.api.account_id, started)

    app[RELOAD] = reload
    return app


class ApiServer:
    """Runs :func:`make_app` on ``listen`` (default ``config.api.listen``; port 0: any free)."""

    def __init__(self, config: Config, control: CallControl, *, clock: Callable[[], float] = time.time,
                 metrics: Metrics | None = None, listen: tuple[str, int] | None = None) -> None:
        address = listen or config.api.listen
        if address is None:
            raise ValueError("the API has no listen address (api.listen)")
        self._listen = address
        self._app = make_app(config, control, clock=clock, metrics=metrics)
        self._runner: web.AppRunner | None = None
        self.addresses: list[tuple[str, int]] = []

    @property
    def port(self) -> int:
        """The bound port (after start)."""
        return self.addresses[0][1]

    async def start(self) -> None:
        """Bind and serve; raises OSError when the address cannot be bound."""
        runner = web.AppRunner(self._app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._listen[0], self._listen[1])
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.addresses = [tuple(address[:2]) for address in runner.addresses]
        log.info("api_listening", address=self.addresses[0][0], port=self.addresses[0][1])

    def reload(self, config: Config) -> None:
        """Serve *config*'s applications, rules, connectors and numbers from now on."""
        self._app[RELOAD](config)

    async def stop(self) -> None:
        """Stop listening; requests in flight finish first."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
