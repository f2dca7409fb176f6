from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="CallRecordingRequest")


@_attrs_define
class CallRecordingRequest:
    """
    Attributes:
        call_id (str): The unique identifier of the call whose recording you want to access
        expiration_url_in_minutes (int | Unset): Number of minutes until the signed URL expires. Controls how long the
            generated URL remains valid for accessing the recording. Default: 10.
    """

    call_id: str
    expiration_url_in_minutes: int | Unset = 10
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        call_id = self.call_id

        expiration_url_in_minutes = self.expiration_url_in_minutes

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "call_id": call_id,
            }
        )
        if expiration_url_in_minutes is not UNSET:
            field_dict["expiration_url_in_minutes"] = expiration_url_in_minutes

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        call_id = d.pop("call_id")

        expiration_url_in_minutes = d.pop("expiration_url_in_minutes", UNSET)

        call_recording_request = cls(
            call_id=call_id,
            expiration_url_in_minutes=expiration_url_in_minutes,
        )

        call_recording_request.additional_properties = d
        return call_recording_request

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
