"""`python -m verbex_client.testing [--port P] [--api-key KEY]`: run the sandbox until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from ._audio import DEMO_CALL_IDS, demo_recording, tone_wav
from ._sandbox import Sandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verbex_client.testing", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--api-key", default=None, help="API key to accept (default: a random one)")
    parser.add_argument("--no-demo", action="store_true", help="start with no recordings loaded")
    parser.add_argument(
        "--any-call-id", action="store_true", help="answer every call id with a recording (for fuzzers)"
    )
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    any_call_id = tone_wav(seconds=0.5) if args.any_call_id else None
    with Sandbox(host=args.host, port=args.port, api_key=args.api_key, any_call_id=any_call_id) as sandbox:
        if not args.no_demo:
            for call_id in DEMO_CALL_IDS:
                data, file_name = demo_recording(call_id)
                sandbox.add_recording(call_id, data, file_name)
        print(f"VERBEX_BASE_URL={sandbox.base_url}", flush=True)
        print(f"VERBEX_API_KEY={sandbox.api_key}", flush=True)
        if not args.no_demo:
            print(f"demo call ids: {' '.join(DEMO_CALL_IDS)}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
