"""`python -m verbex_client.testing [--port P] [--api-key KEY]`: run the sandbox until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from ._audio import DEMO_CALL_IDS, demo_recording, tone_wav
from ._sandbox import Sandbox


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    demo: bool = True,
    any_call_id: bool = False,
    show_example: bool = False,
) -> int:
    """Run a sandbox in the foreground, printing how to reach it, until SIGINT/SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    default_recording = tone_wav(seconds=0.5) if any_call_id else None
    with Sandbox(host=host, port=port, api_key=api_key, any_call_id=default_recording) as sandbox:
        if demo:
            for call_id in DEMO_CALL_IDS:
                data, file_name = demo_recording(call_id)
                sandbox.add_recording(call_id, data, file_name)
        print(f"VERBEX_BASE_URL={sandbox.base_url}", flush=True)
        print(f"VERBEX_API_KEY={sandbox.api_key}", flush=True)
        if demo:
            print(f"demo call ids: {' '.join(DEMO_CALL_IDS)}", flush=True)
        if show_example:
            print(
                "try, in another terminal:\n"
                f"  VERBEX_BASE_URL={sandbox.base_url} VERBEX_API_KEY={sandbox.api_key} \\\n"
                f"    verbex recordings download {' '.join(DEMO_CALL_IDS)} -o demo-recordings/",
                flush=True,
            )
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


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
    return serve(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        demo=not args.no_demo,
        any_call_id=args.any_call_id,
    )


if __name__ == "__main__":
    sys.exit(main())
