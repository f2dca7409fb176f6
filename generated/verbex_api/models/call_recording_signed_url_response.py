from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="CallRecordingSignedUrlResponse")


@_attrs_define
class CallRecordingSignedUrlResponse:
    """
    Example:
        {'file_name': 'webcall_abc123def456_agent_12345678-abcd-efgh-ijkl-123456789012-2026-03-26T174837.ogg',
            'signed_url': 'https://storage.googleapis.com/your-bucket/webcall_abc123def456_agent_12345678-abcd-efgh-
            ijkl-123456789012-2026-03-26T174837.ogg?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=...&X-Goog-
            Date=20260402T061527Z&X-Goog-Expires=600&X-Goog-SignedHeaders=host&X-Goog-Signature=...', 'expiration_minutes':
            10, 'expires_at': '2026-04-02T06:25:27.773121825Z'}

    Attributes:
        file_name (str): The name of the recording file
        signed_url (str): A temporary pre-signed URL to access the call recording. This URL expires after a limited
            time.
        expiration_minutes (int): Number of minutes until the signed URL expires
        expires_at (datetime.datetime): The exact timestamp when the signed URL will expire
    """

    file_name: str
    signed_url: str
    expiration_minutes: int
    expires_at: datetime.datetime
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        file_name = self.file_name

        signed_url = self.signed_url

        expiration_minutes = self.expiration_minutes

        expires_at = self.expires_at.isoformat()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "file_name": file_name,
                "signed_url": signed_url,
                "expiration_minutes": expiration_minutes,
                "expires_at": expires_at,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        file_name = d.pop("file_name")

        signed_url = d.pop("signed_url")

        expiration_minutes = d.pop("expiration_minutes")

        expires_at = datetime.datetime.fromisoformat(d.pop("expires_at"))

        call_recording_signed_url_response = cls(
            file_name=file_name,
            signed_url=signed_url,
            expiration_minutes=expiration_minutes,
            expires_at=expires_at,
        )

        call_recording_signed_url_response.additional_properties = d
        return call_recording_signed_url_response

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
