"""verbex_client.testing: a local sandbox of the Verbex API and recording storage.

    from verbex_client.testing import Sandbox

    with Sandbox() as sb:
        sb.add_recording("call_1", b"OggS...", file_name="call_1.ogg")
        client = sb.client()

Pytest users get the `verbex_sandbox` fixture automatically (plugin entry point).
"""

from ._faults import Fault
from ._sandbox import RecordedRequest, Sandbox

__all__ = ["Fault", "RecordedRequest", "Sandbox"]
