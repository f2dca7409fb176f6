"""Contains all the data models used in inputs/outputs"""

from .call_recording_request import CallRecordingRequest
from .call_recording_signed_url_response import CallRecordingSignedUrlResponse
from .error_response import ErrorResponse
from .http_validation_error import HTTPValidationError
from .validation_error import ValidationError

__all__ = (
    "CallRecordingRequest",
    "CallRecordingSignedUrlResponse",
    "ErrorResponse",
    "HTTPValidationError",
    "ValidationError",
)
