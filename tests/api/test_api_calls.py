"""CreateSipMediaApplicationCall / UpdateSipMediaApplicationCall through real boto3 clients."""
from __future__ import annotations

import re

import botocore
import pytest
from botocore.exceptions import ClientError

from chimevoice.api import UnavailableCallControl
from chimevoice.api.errors import ResourceLimitExceededException

from .conftest import OUR_NUMBER, SMA, call

GUID = re.compile(r"[a-f0-9]{8}(-[a-f0-9]{4}){3}-[a-f0-9]{12}")


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


async def test_create_call_reaches_the_control_as_a_typed_request(api, control):
    client = api.client()
    response = await call(client.create_sip_media_application_call,
                          SipMediaApplicationId=SMA, FromPhoneNumber=OUR_NUMBER, ToPhoneNumber="+15557654321",
                          SipHeaders={"X-Account-Id": "42", "User-to-User": "abcd;encoding=hex"},
                          ArgumentsMap={"FirstName": "John"})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 201
    transaction_id = response["SipMediaApplicationCall"]["TransactionId"]
    assert GUID.fullmatch(transaction_id)
    [request] = control.created
    assert request.sip_media_application_id == SMA
    assert request.from_phone_number == OUR_NUMBER
    assert request.to_phone_number == "+15557654321"
    assert dict(request.sip_headers) == {"X-Account-Id": "42", "User-to-User": "abcd;encoding=hex"}
    assert dict(request.arguments) == {"FirstName": "John"}
    assert control.transactions[transaction_id] == SMA


async def test_numbers_without_plus_are_accepted_as_the_model_allows(api, control):
    await call(api.client().create_sip_media_application_call,
               SipMediaApplicationId=SMA, FromPhoneNumber=OUR_NUMBER[1:], ToPhoneNumber="15557654321")
    assert (control.created[0].from_phone_number, control.created[0].to_phone_number) == (OUR_NUMBER, "+15557654321")


async def test_update_call(api, control):
    client = api.client()
    created = await call(client.create_sip_media_application_call,
                         SipMediaApplicationId=SMA, FromPhoneNumber=OUR_NUMBER, ToPhoneNumber="+15557654321")
    transaction_id = created["SipMediaApplicationCall"]["TransactionId"]
    response = await call(client.update_sip_media_application_call, SipMediaApplicationId=SMA,
                          TransactionId=transaction_id, Arguments={"action": "hangup"})
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert response["SipMediaApplicationCall"]["TransactionId"] == transaction_id
    [request] = control.updated
    assert (request.sip_media_application_id, request.transaction_id, dict(request.arguments)) == (
        SMA, transaction_id, {"action": "hangup"})


async def test_update_of_an_unknown_transaction_is_not_found(api, control):
    client = api.client()
    with pytest.raises(client.exceptions.NotFoundException) as excinfo:
        await call(client.update_sip_media_application_call, SipMediaApplicationId=SMA,
                   TransactionId="0d8c7c47-2b0e-4b16-8f0e-6c1f0f6e2a11", Arguments={})
    assert error_of(excinfo)[:2] == ("NotFoundException", 404)


async def test_unknown_application_is_not_found(api, control):
    client = api.client()
    with pytest.raises(client.exceptions.NotFoundException) as excinfo:
        await call(client.create_sip_media_application_call, SipMediaApplicationId="no-such-sma",
                   FromPhoneNumber=OUR_NUMBER, ToPhoneNumber="+15557654321")
    assert error_of(excinfo)[:2] == ("NotFoundException", 404)
    with pytest.raises(client.exceptions.NotFoundException):
        await call(client.update_sip_media_application_call, SipMediaApplicationId="no-such-sma",
                   TransactionId="x", Arguments={})
    assert control.created == [] and control.updated == []


async def test_a_from_number_that_is_not_ours_is_a_bad_request(api, control):
    client = api.client()
    with pytest.raises(client.exceptions.BadRequestException) as excinfo:
        await call(client.create_sip_media_application_call, SipMediaApplicationId=SMA,
                   FromPhoneNumber="+15559999999", ToPhoneNumber="+15557654321")
    code, status, message = error_of(excinfo)
    assert (code, status) == ("BadRequestException", 400)
    assert "FromPhoneNumber" in message
    assert control.created == []


@pytest.mark.parametrize("headers", [{"Contact": "<sip:evil@example.com>"}, {"X-Bad": "a\r\nVia: x"},
                                     {"X Space": "1"}])
async def test_sip_headers_other_than_x_uui_diversion_or_with_line_breaks_are_rejected(api, control, headers):
    client = api.client()
    with pytest.raises(client.exceptions.BadRequestException):
        await call(client.create_sip_media_application_call, SipMediaApplicationId=SMA,
                   FromPhoneNumber=OUR_NUMBER, ToPhoneNumber="+15557654321", SipHeaders=headers)
    assert control.created == []


@pytest.mark.parametrize("headers", [{"X-AMZN": "1"}, {"x-amzn-trace": "1"}, {"X-VC-Route": "1"},
                                     {"X-Long": "v" * 2049}])
async def test_reserved_or_oversized_sip_headers_get_the_action_error_text(api, control, headers):
    client = api.client()
    with pytest.raises(client.exceptions.BadRequestException) as exc:
        await call(client.create_sip_media_application_call, SipMediaApplicationId=SMA,
                   FromPhoneNumber=OUR_NUMBER, ToPhoneNumber="+15557654321", SipHeaders=headers)
    assert exc.value.response["Error"]["Message"] == f"Invalid SIP header(s) provided: {next(iter(headers))}"
    assert control.created == []


@pytest.mark.parametrize(("params", "fragment"), [
    ({"FromPhoneNumber": OUR_NUMBER}, "'toPhoneNumber' failed to satisfy constraint: Member must not be null"),
    ({"FromPhoneNumber": OUR_NUMBER, "ToPhoneNumber": "555-0100"}, "regular expression pattern"),
    ({"FromPhoneNumber": OUR_NUMBER, "ToPhoneNumber": "+15557654321",
      "ArgumentsMap": {f"k{i}": "v" for i in range(21)}}, "length less than or equal to 20"),
    ({"FromPhoneNumber": OUR_NUMBER, "ToPhoneNumber": "+15557654321", "SipHeaders": {"X-A": 5}},
     "Member must be a string"),
])
async def test_the_server_validates_the_input_against_the_model(api, control, params, fragment):
    # botocore's own client-side checks are off: the server's validation answers
    client = api.client(parameter_validation=False)
    with pytest.raises(client.exceptions.BadRequestException) as excinfo:
        await call(client.create_sip_media_application_call, SipMediaApplicationId=SMA, **params)
    code, status, message = error_of(excinfo)
    assert (code, status) == ("BadRequestException", 400)
    assert fragment in message
    assert control.created == []


async def test_update_needs_arguments(api):
    client = api.client(parameter_validation=False)
    with pytest.raises(client.exceptions.BadRequestException) as excinfo:
        await call(client.update_sip_media_application_call, SipMediaApplicationId=SMA, TransactionId="t")
    assert "'arguments' failed to satisfy constraint: Member must not be null" in error_of(excinfo)[2]


async def test_errors_raised_by_the_control_keep_their_code_and_status(start_server, config, control):
    api = await start_server(config, control)
    client = api.client()
    control.fail_with = ResourceLimitExceededException("Too many calls.")
    with pytest.raises(client.exceptions.ResourceLimitExceededException) as excinfo:
        await call(client.create_sip_media_application_call, SipMediaApplicationId=SMA,
                   FromPhoneNumber=OUR_NUMBER, ToPhoneNumber="+15557654321")
    assert error_of(excinfo) == ("ResourceLimitExceededException", 400, "Too many calls.")
    control.fail_with = RuntimeError("boom")
    with pytest.raises(client.exceptions.ServiceFailureException) as excinfo:
        await call(client.create_sip_media_application_call, SipMediaApplicationId=SMA,
                   FromPhoneNumber=OUR_NUMBER, ToPhoneNumber="+15557654321")
    assert error_of(excinfo)[:2] == ("ServiceFailureException", 500)
    assert "boom" not in error_of(excinfo)[2]


async def test_without_call_control_calls_are_503(start_server, config):
    api = await start_server(config, UnavailableCallControl())
    client = api.client()
    with pytest.raises(client.exceptions.ServiceUnavailableException) as excinfo:
        await call(client.create_sip_media_application_call, SipMediaApplicationId=SMA,
                   FromPhoneNumber=OUR_NUMBER, ToPhoneNumber="+15557654321")
    assert error_of(excinfo) == ("ServiceUnavailableException", 503, "call control is not available yet")


async def test_unsigned_requests_are_403(api, control):
    client = api.client(signature_version=botocore.UNSIGNED)
    with pytest.raises(ClientError) as excinfo:
        await call(client.create_sip_media_application_call, SipMediaApplicationId=SMA,
                   FromPhoneNumber=OUR_NUMBER, ToPhoneNumber="+15557654321")
    assert error_of(excinfo) == ("MissingAuthenticationTokenException", 403, "Missing Authentication Token")
    assert control.created == []


async def test_a_wrong_secret_is_403(api, control):
    client = api.client(secret="not-the-secret-at-all-0000000000000000000")
    with pytest.raises(ClientError) as excinfo:
        await call(client.create_sip_media_application_call, SipMediaApplicationId=SMA,
                   FromPhoneNumber=OUR_NUMBER, ToPhoneNumber="+15557654321")
    code, status, message = error_of(excinfo)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert message.startswith("The request signature we calculated does not match the signature you provided.")
    assert control.created == []


async def test_an_unknown_access_key_is_403(api):
    client = api.client(key_id="AKIDUNKNOWN")
    with pytest.raises(ClientError) as excinfo:
        await call(client.list_sip_media_applications)
    assert error_of(excinfo) == ("UnrecognizedClientException", 403,
                                 "The security token included in the request is invalid.")


async def test_a_wrong_region_is_403(api):
    client = api.client(region="eu-central-1")
    with pytest.raises(ClientError) as excinfo:
        await call(client.list_sip_media_applications)
    code, status, message = error_of(excinfo)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert "eu-central-1" in message


async def test_a_skewed_clock_is_403(start_server, config, control):
    import time

    api = await start_server(config, control, clock=lambda: time.time() + 20 * 60)
    with pytest.raises(ClientError) as excinfo:
        await call(api.client().list_sip_media_applications)
    code, status, message = error_of(excinfo)
    assert (code, status) == ("InvalidSignatureException", 403)
    assert message.startswith("Signature expired: ")


async def test_a_session_token_is_accepted_and_ignored(api):
    import boto3

    session = boto3.session.Session(aws_access_key_id="AKIDEXAMPLE",
                                    aws_secret_access_key="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                    aws_session_token="FQoGZXIvYXdzEXAMPLETOKEN", region_name="us-east-1")
    client = session.client("chime-sdk-voice", endpoint_url=api.url)
    response = await call(client.list_sip_media_applications)
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
