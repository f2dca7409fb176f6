"""The standalone sandbox: `python -m verbex_client.testing` and `verbex sandbox` (the same options).

This module owns the options; `verbex sandbox ARGS` hands its arguments to
main() here, so both commands take, check and print the same things.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import tempfile
import threading

DESCRIPTION = """\
Run a local sandbox of the Verbex API and its recording storage until Ctrl-C,
serving demo recordings (real WAV files). Prints the base URL, the API key and
a command to try."""
EPILOG = """\
examples:
  {prog}                                       # demo-call-001..003, small WAVs
  {prog} --port 8080 --api-key API_local_key_1
  {prog} --recordings 5 --size 20MB --rate 5MB # big enough to watch the progress bars

--size and --rate take bytes with an optional unit: 500kB, 20MB, 1GB (powers
of 1000) or KiB, MiB, GiB (powers of 1024).
"""
MAX_SHOWN_IDS = 5  # more call ids than this go to an ids file for the command to try
_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3}
_UNITS.update({"kib": 1024, "mib": 1024**2, "gib": 1024**3})
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)


def parse_bytes(text: str) -> int:
    """`20MB` -> 20_000_000, `1MiB` -> 1_048_576, `512` -> 512 (an argparse type)."""
    match = _SIZE.fullmatch(text.removesuffix("/s"))
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise argparse.ArgumentTypeError(f"expected bytes such as 500kB, 20MB or 1GiB, got {text!r}")
    return int(float(match.group(1)) * unit)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return int(text)


def build_parser(prog: str = "python -m verbex_client.testing") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=DESCRIPTION,
        epilog=EPILOG.format(prog=prog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=0, help="port (default: a free one)")
    parser.add_argument("--api-key", metavar="KEY", help="the API key the sandbox accepts (default: random)")
    parser.add_argument(
        "--recordings",
        type=_count,
        default=3,
        metavar="N",
        help="demo recordings demo-call-001..N to serve (default: 3; 0 for none)",
    )
    parser.add_argument(
        "--size",
        type=parse_bytes,
        metavar="BYTES",
        help="make each demo recording a WAV file of this size, e.g. 20MB (default: 2-4 s of audio, "
        "32-64 kB)",
    )
    parser.add_argument(
        "--rate",
        type=parse_bytes,
        metavar="BYTES",
        help="send each download at most this many bytes per second, like a slow link, e.g. 5MB "
        "(default: as fast as possible)",
    )
    parser.add_argument(
        "--any-call-id", action="store_true", help="answer every unknown call id with a short WAV (fuzzers)"
    )
    return parser


def demo_call_ids(count: int) -> list[str]:
    return [f"demo-call-{n:03d}" for n in range(1, count + 1)]


def check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """What argparse types cannot say alone: --size needs room for a WAV header, --rate > 0."""
    if args.size is not None and args.size < 1000:
        parser.error(f"argument --size: at least 1kB, got {args.size} bytes")
    if args.rate is not None and args.rate < 1:
        parser.error("argument --rate: must be at least 1 byte per second")


def serve(args: argparse.Namespace) -> int:
    """Run a sandbox in the foreground, printing how to reach it, until SIGINT/SIGTERM."""
    from ._audio import demo_recording, tone_wav, write_tone_wav
    from ._sandbox import Sandbox

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    unknown = tone_wav(seconds=0.5) if args.any_call_id else None
    ids = demo_call_ids(args.recordings)
    with (
        tempfile.TemporaryDirectory(prefix="verbex-sandbox-") as files,
        Sandbox(host=args.host, port=args.port, api_key=args.api_key, any_call_id=unknown) as sandbox,
    ):
        for index, call_id in enumerate(ids):
            file_name = f"webcall_{call_id}_agent_demo.wav"
            if args.size is None:  # the three short demo WAVs, over and over
                sandbox.add_recording(call_id, demo_recording(f"demo-call-{index % 3 + 1:03d}")[0], file_name)
            else:
                path = os.path.join(files, file_name)
                write_tone_wav(path, args.size, period=16 + index % 9)  # 500 Hz down to 333 Hz
                sandbox.add_recording(call_id, path, file_name)
        sandbox.storage_bytes_per_second = args.rate
        print(f"VERBEX_BASE_URL={sandbox.base_url}", flush=True)
        print(f"VERBEX_API_KEY={sandbox.api_key}", flush=True)
        print(_describe_recordings(ids, args), flush=True)
        print(_command_to_try(sandbox.base_url, sandbox.api_key, ids, files, args.any_call_id), flush=True)
        print("Ctrl-C stops the sandbox.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while not stop.wait(1.0):  # wakes for Ctrl-C on every platform
                pass
    return 0


def _describe_recordings(ids: list[str], args: argparse.Namespace) -> str:
    from .._cli import human_bytes

    if not ids:
        text = "no demo recordings"
    else:
        size = "32-64 kB each" if args.size is None else f"{human_bytes(args.size)} each"
        shown = " ".join(ids) if len(ids) <= MAX_SHOWN_IDS else f"{ids[0]} ... {ids[-1]}"
        text = f"demo call ids: {shown} ({len(ids)} WAV recordings, {size})"
    if args.rate is not None:
        text += f"; each download paced to {human_bytes(args.rate)}/s"
    if args.any_call_id:
        text += "; any other call id gets a 0.5 s WAV"
    return text


def _command_to_try(base_url: str, api_key: str, ids: list[str], files: str, any_call_id: bool) -> str:
    if len(ids) > MAX_SHOWN_IDS:
        ids_file = os.path.join(files, "call-ids.txt")
        with open(ids_file, "w", encoding="utf-8") as f:
            f.write("".join(f"{call_id}\n" for call_id in ids))
        source = f"--ids-file {ids_file}"
    elif ids or any_call_id:
        source = " ".join(ids) or "call_123"
    else:
        return "no recordings to try: start it with --recordings N, or add some with Sandbox.add_recording()"
    return (
        "try, in another terminal:\n"
        f"  VERBEX_BASE_URL={base_url} VERBEX_API_KEY={api_key} \\\n"
        f"    verbex recordings download {source} -o demo-recordings/"
    )


def main(argv: list[str] | None = None, *, prog: str = "python -m verbex_client.testing") -> int:
    parser = build_parser(prog)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    check_options(parser, args)
    return serve(args)


if __name__ == "__main__":
    sys.exit(main())
