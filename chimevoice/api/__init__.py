"""HTTP call-control API in the chime-sdk-voice model (docs/api.md)."""
from .control import CallControl, CreateCallRequest, UnavailableCallControl, UpdateCallRequest
from .errors import ApiError
from .server import ApiServer, make_app

__all__ = ["ApiError", "ApiServer", "CallControl", "CreateCallRequest", "UnavailableCallControl",
           "UpdateCallRequest", "make_app"]
