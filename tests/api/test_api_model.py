"""The service model glue: error statuses, routes and output serialization follow botocore's model."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from chimevoice.api import errors
from chimevoice.api.model import SERVICE, load_model, parse_input, route_of, serialize_output
from chimevoice.api.server import IMPLEMENTED


def test_modeled_errors_have_the_models_status_codes():
    model = load_model(SERVICE)
    modeled = {shape.name for name in IMPLEMENTED for shape in model.operation_model(name).error_shapes}
    assert modeled
    for name in modeled:
        error = getattr(errors, name)
        assert (error.code, error.status) == (name, model.shape_for(name).metadata["error"]["httpStatusCode"])


def test_routes_come_from_the_model():
    model = load_model(SERVICE)
    create = route_of(model.operation_model("CreateSipMediaApplicationCall"))
    assert (create.method, create.path, create.status) == (
        "POST", "/sip-media-applications/{sipMediaApplicationId}/calls", 201
    )
    restore = route_of(model.operation_model("RestorePhoneNumber"))
    assert restore.path == "/phone-numbers/{phoneNumberId}" and restore.query == (("operation", "restore"),)


def test_outputs_use_the_shapes_member_names_and_formats():
    operation = load_model(SERVICE).operation_model("GetSipRule")
    moment = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
    out = serialize_output(operation, {"SipRule": {"SipRuleId": "r", "CreatedTimestamp": moment, "Disabled": 0}})
    assert out == {"SipRule": {"SipRuleId": "r", "CreatedTimestamp": "2024-01-02T03:04:05.678Z", "Disabled": False}}
    with pytest.raises(ValueError, match="SipRuleID"):
        serialize_output(operation, {"SipRule": {"SipRuleID": "r"}})


def test_bad_json_is_a_bad_request():
    operation = load_model(SERVICE).operation_model("CreateSipMediaApplicationCall")
    with pytest.raises(errors.BadRequestException, match="JSON"):
        parse_input(operation, {"sipMediaApplicationId": "x"}, {}, b"{not json")
    with pytest.raises(errors.BadRequestException, match="3 validation errors"):
        parse_input(operation, {}, {}, b"{}")
