"""One error hierarchy, rendered in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.

    VitascopeError
     ├── InvalidRequest      400  invalid_request_error (a field is wrong; `param` names it)
     ├── Unauthorized        401  invalid_request_error / invalid_api_key
     ├── NotFound            404  invalid_request_error / not_found
     ├── PayloadTooLarge     413  invalid_request_error / payload_too_large
     └── UnsupportedMedia    415  invalid_request_error / unsupported_media_type
"""

from __future__ import annotations


class VitascopeError(Exception):
    status = 500
    type = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class InvalidRequest(VitascopeError):
    status = 400
    type = "invalid_request_error"
    code = "invalid_value"


class Unauthorized(VitascopeError):
    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class NotFound(VitascopeError):
    status = 404
    type = "invalid_request_error"
    code = "not_found"


class PayloadTooLarge(VitascopeError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


class UnsupportedMedia(VitascopeError):
    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"
