"""The `verbex` command: signed URLs and downloads from a terminal.

Only argparse and the standard library load at start-up; the HTTP stack,
rich and the sandbox are imported by the command that needs them, so
`verbex --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from ._version import __version__

if TYPE_CHECKING:
    from ._batch import BatchItem, BatchResult
    from ._client import Verbex

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

EPILOG = """\
examples:
  verbex recordings url call_123
  verbex recordings url call_123 --expires-in-minutes 60 --json
  verbex recordings download call_123 -o recordings/
  verbex recordings download --ids-file week.txt -o archive/ --concurrency 16
  verbex sandbox --port 8080

environment:
  VERBEX_API_KEY   API key (or --api-key)
  VERBEX_BASE_URL  API base URL (or --base-url; default https://api.verbex.ai)
  VERBEX_LOG       debug|info: log requests to stderr
"""

DOWNLOAD_EPILOG = """\
examples:
  verbex recordings download call_123                       # into the current directory
  verbex recordings download call_123 -o call.ogg           # to this file
  verbex recordings download c1 c2 c3 -o archive/ --json    # one JSON line per call
  cat ids.txt | verbex recordings download --ids-file - -o archive/

Downloads are verified (size, md5/crc32c) and atomic: a file appears only when
complete. Into a directory, a manifest.jsonl records finished downloads so a
rerun skips them; interrupted downloads resume from their .part files.
Exit status: 0 all succeeded, 1 any failed, 2 usage error, 130 interrupted.
"""


class UsageError(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="verbex",
        description="Fetch Verbex call recordings: signed URLs and verified downloads.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"verbex-client {__version__}")
    parser.add_argument("--api-key", help="API key (default: $VERBEX_API_KEY)")
    parser.add_argument(
        "--base-url", help="API base URL (default: $VERBEX_BASE_URL, then https://api.verbex.ai)"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default: 30)")
    parser.add_argument("--max-retries", type=int, default=2, help="retries on failures (default: 2)")
    parser.add_argument("--debug", action="store_true", help="debug logs on stderr and full tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser, required=True)

    recordings = commands.add_parser(
        "recordings", help="signed URLs and downloads", formatter_class=formatter
    )
    actions = recordings.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser, required=True)

    url = actions.add_parser(
        "url",
        help="print a signed URL for one call's recording",
        description="Print a signed URL for one call's recording (only the URL, unless --json).",
        epilog="example:\n  verbex recordings url call_123 --expires-in-minutes 60",
        formatter_class=formatter,
    )
    url.add_argument("call_id", metavar="CALL_ID", help="the call whose recording to sign")
    url.add_argument(
        "--expires-in-minutes",
        type=int,
        default=10,
        metavar="N",
        help="URL lifetime, 1 to 10080 (default: 10)",
    )
    url.add_argument("--json", action="store_true", help="print one JSON object with every field")

    download = actions.add_parser(
        "download",
        help="download recordings, verified, with progress",
        description="Download call recordings: verified, atomic, resumable.",
        epilog=DOWNLOAD_EPILOG,
        formatter_class=formatter,
    )
    download.add_argument("call_ids", nargs="*", metavar="CALL_ID", help="calls whose recordings to download")
    download.add_argument(
        "--ids-file", metavar="FILE", help="read call ids from FILE, one per line ('-': stdin)"
    )
    download.add_argument(
        "-o",
        "--output",
        default=".",
        metavar="DEST",
        help="directory to download into (default: .), or a file path for a single call",
    )
    download.add_argument(
        "--concurrency", type=int, default=8, metavar="N", help="downloads at once (default: 8)"
    )
    download.add_argument("--overwrite", action="store_true", help="replace existing files")
    download.add_argument(
        "--no-fsync",
        dest="fsync",
        action="store_false",
        help="don't flush files to disk before renaming them into place (faster; a power loss "
        "may then leave an incomplete file)",
    )
    download.add_argument("--quiet", action="store_true", help="no progress, no summary; errors only")
    download.add_argument("--json", action="store_true", help="one JSON line per call on stdout")
    download.add_argument(
        "--expires-in-minutes", type=int, default=10, metavar="N", help="signed URL lifetime (default: 10)"
    )
    download.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on a Dask cluster: tcp://host:8786, or local:N for N local workers "
        "(-o then names s3://, gs://, file:// or a shared directory; needs verbex-client[dask])",
    )

    sandbox = commands.add_parser(
        "sandbox",
        help="run a local sandbox of the API with demo recordings",
        description="Run a local sandbox of the Verbex API and recording storage, with demo recordings.",
        epilog="example:\n  verbex sandbox --port 8080",
        formatter_class=formatter,
    )
    sandbox.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    sandbox.add_argument(
        "--api-key", dest="sandbox_api_key", help="key the sandbox accepts (default: random)"
    )
    return parser


# -- error lines -----------------------------------------------------------------------------


def describe_error(error: BaseException) -> str:
    """One readable line for any failure (the part after `error: `)."""
    from . import _exceptions as exc

    if isinstance(error, exc.APIStatusError):
        label = {
            exc.AuthenticationError: "authentication failed",
            exc.PermissionDeniedError: "permission denied",
            exc.RecordingNotFoundError: "recording not found",
            exc.NotFoundError: "not found",
            exc.UnprocessableEntityError: "request rejected",
            exc.RateLimitError: "rate limited",
            exc.InternalServerError: "server error",
            exc.BadRequestError: "bad request",
            exc.ConflictError: "conflict",
        }.get(type(error), "API error")
        code = f" {error.code}" if error.code else ""
        text = f"{label} ({error.status_code}{code}): {error.message.rstrip('.')}."
        if isinstance(error, exc.AuthenticationError):
            text += " Set VERBEX_API_KEY or pass --api-key."
        return text
    if isinstance(error, exc.APITimeoutError):
        return f"timed out: {error}. Try --timeout."
    if isinstance(error, exc.APIConnectionError):
        return f"could not reach the API: {error}. Check --base-url and your network."
    if isinstance(error, exc.APIResponseValidationError):
        return f"unexpected response from the API: {error}"
    if isinstance(error, exc.IntegrityError):
        return f"integrity check failed: {error}"
    if isinstance(error, exc.DownloadError):
        return f"download failed: {error}"
    if isinstance(error, exc.ConfigurationError):
        return f"{error}"
    if isinstance(error, FileExistsError):
        return f"{error.args[0] if error.args else error} (use --overwrite)".replace(
            " (pass overwrite=True to replace it)", ""
        )
    if isinstance(error, ValueError | TypeError):
        return f"invalid argument: {error}"
    if isinstance(error, OSError):
        return f"{error.strerror or error}: {error.filename}" if error.filename else str(error)
    return f"{type(error).__name__}: {error}"


def _print_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


# -- commands --------------------------------------------------------------------------------


def _client(args: argparse.Namespace) -> Verbex:
    from ._client import Verbex

    return Verbex(
        api_key=args.api_key, base_url=args.base_url, timeout=args.timeout, max_retries=args.max_retries
    )


def cmd_url(args: argparse.Namespace) -> int:
    with _client(args) as client:
        signed = client.recordings.signed_url(args.call_id, expires_in_minutes=args.expires_in_minutes)
    if args.json:
        print(
            json.dumps(
                {
                    "call_id": signed.call_id,
                    "file_name": signed.file_name,
                    "url": signed.url,
                    "expiration_minutes": signed.expiration_minutes,
                    "expires_at": signed.expires_at.isoformat().replace("+00:00", "Z"),
                    "received_at": signed.received_at.isoformat().replace("+00:00", "Z"),
                }
            )
        )
    else:
        print(signed.url)
    return EXIT_OK


def read_ids(args: argparse.Namespace) -> list[str]:
    ids = list(args.call_ids)
    if args.ids_file:
        try:
            stream: TextIO = sys.stdin if args.ids_file == "-" else open(args.ids_file, encoding="utf-8")  # noqa: SIM115
        except OSError as error:
            raise UsageError(f"cannot read --ids-file: {describe_error(error)}") from None
        with stream:
            ids += [line.strip() for line in stream if line.strip() and not line.lstrip().startswith("#")]
    if not ids:
        raise UsageError("no call ids: give CALL_ID arguments or --ids-file")
    return ids


def _item_json(item: BatchItem) -> str:
    return json.dumps(
        {
            "call_id": item.call_id,
            "status": item.status,
            "path": item.location,
            "bytes": item.bytes,
            "error": describe_error(item.error) if item.error else None,
        }
    )


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def cmd_download(args: argparse.Namespace) -> int:
    from ._validation import check_positive_int

    ids = read_ids(args)
    try:
        check_positive_int("--concurrency", args.concurrency)
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from None
    dest = args.output
    started = time.monotonic()
    tty = sys.stderr.isatty() and not args.quiet and not args.json
    with _client(args) as client, _ProgressDisplay(tty) as display:
        single_file = len(set(ids)) == 1 and not os.path.isdir(dest) and not dest.endswith(os.sep)
        single_file = single_file and "://" not in dest  # an s3://, gs://, file:// URL is a prefix
        if args.dask:
            from .distributed import download_many_on

            result = download_many_on(
                args.dask,
                client,
                ids,
                dest,
                concurrency=args.concurrency,
                overwrite=args.overwrite,
                expires_in_minutes=args.expires_in_minutes,
                progress=display.update if display else None,
                connect_timeout=args.timeout,
            )
        elif single_file:
            result = _download_one(client, ids[0], dest, args, display)
        else:
            result = client.recordings.download_many(
                ids,
                dest,
                concurrency=args.concurrency,
                overwrite=args.overwrite,
                fsync=args.fsync,
                progress=display.update if display else None,
                expires_in_minutes=args.expires_in_minutes,
            )
    for item in result.results:
        if args.json:
            print(_item_json(item), flush=True)
        elif item.status == "failed":
            _print_error(f"{item.call_id}: {describe_error(item.error or Exception('failed'))}")
        elif not args.quiet and not tty:
            print(f"{item.status} {item.call_id} -> {item.location} ({_human_bytes(item.bytes)})", flush=True)
    if not args.quiet:
        counts = (
            f"{len(result.downloaded)} downloaded, {len(result.skipped)} skipped, {len(result.failed)} failed"
        )
        total = sum(i.bytes for i in result.downloaded)
        print(f"{counts}; {_human_bytes(total)} in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_FAILED


def _download_one(
    client: Verbex, call_id: str, dest: str, args: argparse.Namespace, display: Any
) -> BatchResult:
    from ._batch import BatchItem, BatchResult

    progress = (lambda done, total: display.update(call_id, done, total)) if display else None
    try:
        done = client.recordings.download(
            call_id,
            dest,
            expires_in_minutes=args.expires_in_minutes,
            overwrite=args.overwrite,
            fsync=args.fsync,
            progress=progress,
        )
    except Exception as error:  # reported like a batch failure
        return BatchResult((BatchItem(call_id, "failed", None, error),))
    return BatchResult((BatchItem(call_id, "downloaded", done.path, None, done.bytes),))


class _ProgressDisplay:
    """rich progress bars on a TTY: one per active file plus a total with rate and ETA."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.progress: Any = None

    def __enter__(self) -> _ProgressDisplay | None:
        if not self.enabled:
            return None
        import threading

        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}", justify="left"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),  # stdout stays for results and --json
            transient=False,
        )
        self.progress.__enter__()
        self.total_task = self.progress.add_task("total", total=0)
        self.tasks: dict[str, Any] = {}
        self.done: dict[str, int] = {}
        self.totals: dict[str, int] = {}
        self.lock = threading.Lock()
        return self

    def update(self, call_id: str, done: int, total: int | None) -> None:
        with self.lock:
            task = self.tasks.get(call_id)
            if task is None:
                task = self.tasks[call_id] = self.progress.add_task(call_id[:40], total=total)
            self.progress.update(task, completed=done, total=total)
            self.done[call_id] = done
            if total is not None:
                self.totals[call_id] = total
            self.progress.update(
                self.total_task, completed=sum(self.done.values()), total=sum(self.totals.values()) or None
            )
            if total is not None and done >= total:
                self.progress.remove_task(task)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.__exit__(None, None, None)


def cmd_sandbox(args: argparse.Namespace) -> int:
    from .testing.__main__ import serve

    return serve(port=args.port, api_key=args.sandbox_api_key, show_example=True)


# -- entry -----------------------------------------------------------------------------------


def run(argv: list[str]) -> int:
    import signal

    parser = build_parser()
    args = parser.parse_args(argv)
    if args.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="[%(asctime)s %(levelname)s %(name)s] %(message)s")
    # SIGTERM ends us like Ctrl-C does: cleanly, leaving only .part files.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    command = (
        {"url": cmd_url, "download": cmd_download}.get(args.action)
        if args.command == "recordings"
        else cmd_sandbox
    )
    assert command is not None
    try:
        return command(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except UsageError as error:
        _print_error(str(error))
        return EXIT_USAGE
    except Exception as error:
        if args.debug:
            raise
        from ._exceptions import ConfigurationError

        _print_error(describe_error(error))
        return EXIT_USAGE if isinstance(error, ConfigurationError | TypeError | ValueError) else EXIT_FAILED
