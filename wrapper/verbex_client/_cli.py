"""The `verbex` command: signed URLs and downloads from a terminal.

Only argparse and the standard library load at start-up; the HTTP stack,
rich and the sandbox are imported by the command that needs them, so
`verbex --help` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from ._version import __version__

if TYPE_CHECKING:
    from ._batch import BatchItem, BatchResult
    from ._client import Verbex

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_OUTPUT_CLOSED = 141  # 128 + SIGPIPE, what a shell reports for `yes | head -1`
API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL = "VERBEX_API_KEY", "VERBEX_BASE_URL", "https://api.verbex.ai"
MAX_EXPIRY_MINUTES = 7 * 24 * 60
MAX_LISTED = 20  # files listed one by one at the end on a terminal; more get a pointer to the manifest

EXIT_STATUS = """\
Exit status: 0 all succeeded, 1 any failed, 2 usage error, 130 interrupted
(Ctrl-C), 141 stdout closed early (e.g. `| head -1`: the run stops quietly)."""

EPILOG = f"""\
examples:
  verbex recordings url call_123
  verbex recordings url call_123 --expires-in-minutes 60 --json
  verbex recordings download call_123 -o recordings/
  verbex recordings download --ids-file week.txt -o archive/ --concurrency 16
  verbex sandbox --recordings 5 --size 20MB --rate 5MB

environment:
  VERBEX_API_KEY   API key (or --api-key)
  VERBEX_BASE_URL  API base URL (or --base-url; default https://api.verbex.ai)
  VERBEX_LOG       debug|info: log requests to stderr

{EXIT_STATUS}
"""

DOWNLOAD_EPILOG = f"""\
examples:
  verbex recordings download call_123                       # into the current directory
  verbex recordings download call_123 -o call.ogg           # to this file
  verbex recordings download call_123 -o calls/             # into calls/ (created)
  verbex recordings download c1 c2 c3 -o archive/ --json    # one JSON line per call
  cat ids.txt | verbex recordings download --ids-file - -o archive/

Each call's line (or JSON object) is printed on stdout as soon as it is done;
failures go to stderr as they happen, the summary last. On a terminal,
progress bars show instead, then the files written and the failures.
Downloads are verified (size, md5/crc32c) and atomic: a file appears only when
complete. Several calls go into a directory with a manifest.jsonl of finished
downloads, so a rerun skips them; a single call writes no manifest.
Interrupted downloads resume from their .part files.
{EXIT_STATUS}
"""


class UsageError(Exception):
    """Bad command-line input: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"error: {message}\n")


# -- option types: argparse then names the flag in its message ------------------------------


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _int_from(low: int, high: int | None, what: str) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_minutes = _int_from(1, MAX_EXPIRY_MINUTES, f"whole minutes from 1 to {MAX_EXPIRY_MINUTES} (7 days)")
_retries = _int_from(0, None, "a whole number >= 0")
_positive = _int_from(1, None, "a whole number >= 1")


def build_parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = _Parser(
        prog="verbex",
        description="Fetch Verbex call recordings: signed URLs and verified downloads.",
        epilog=EPILOG,
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"verbex-client {__version__}")
    parser.add_argument("--api-key", help=f"API key (default: ${API_KEY_ENV})")
    parser.add_argument(
        "--base-url", help=f"API base URL (default: ${BASE_URL_ENV}, then {DEFAULT_BASE_URL})"
    )
    parser.add_argument(
        "--timeout", type=_seconds, default=30.0, metavar="SECONDS", help="per request (default: 30)"
    )
    parser.add_argument(
        "--max-retries", type=_retries, default=2, metavar="N", help="retries on failures (default: 2)"
    )
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
        type=_minutes,
        default=10,
        metavar="N",
        help=f"URL lifetime, 1 to {MAX_EXPIRY_MINUTES} (default: 10)",
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
        help="directory to download into (default: .; a trailing / creates it), or a file path "
        "for a single call",
    )
    download.add_argument(
        "--concurrency", type=_positive, default=8, metavar="N", help="downloads at once (default: 8)"
    )
    download.add_argument("--overwrite", action="store_true", help="replace existing files")
    download.add_argument(
        "--no-fsync",
        dest="fsync",
        action="store_false",
        help="don't flush files to disk before renaming them into place (faster; a power loss "
        "may then leave an incomplete file)",
    )
    download.add_argument(
        "--allow-insecure-storage",
        action="store_true",
        help="fetch signed URLs that are plain http (refused by default: the URL is a credential "
        "anyone on the path could replay)",
    )
    download.add_argument("--quiet", action="store_true", help="no progress, no summary; errors only")
    download.add_argument("--json", action="store_true", help="one JSON line per call on stdout")
    download.add_argument(
        "--expires-in-minutes",
        type=_minutes,
        default=10,
        metavar="N",
        help=f"signed URL lifetime, 1 to {MAX_EXPIRY_MINUTES} (default: 10)",
    )
    download.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="run on a Dask cluster: tcp://host:8786, or local:N for N local workers "
        "(-o then names s3://, gs://, file:// or a shared directory; needs verbex-client[dask])",
    )

    # Its options belong to verbex_client.testing (one set for both commands): run() hands
    # everything after `sandbox` over, `--help` included.
    commands.add_parser(
        "sandbox",
        help="run a local sandbox of the API with demo recordings (see `verbex sandbox --help`)",
        add_help=False,
    )
    return parser


# -- error lines -----------------------------------------------------------------------------


def describe_error(error: BaseException, *, api_host: str | None = None) -> str:
    """One readable line for any failure (the part after `error: `), in the command's terms."""
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
            text += f" Set {API_KEY_ENV} or pass --api-key."
        return text
    at = f" at {api_host}" if api_host and api_host not in str(error) else ""
    if isinstance(error, exc.APITimeoutError):
        return f"timed out{at}: {error}. Try a larger --timeout."
    if isinstance(error, exc.APIConnectionError):
        return f"could not reach the API{at}: {error}. Check --base-url ({BASE_URL_ENV}) and your network."
    if isinstance(error, exc.APIResponseValidationError):
        return f"unexpected response from the API: {error}"
    if isinstance(error, exc.IntegrityError):
        return f"integrity check failed: {error}"
    if isinstance(error, exc.DestinationError):
        return f"cannot save the recording: {error}"
    if isinstance(error, exc.DownloadError):
        return f"download failed: {error}"
    if isinstance(error, exc.ConfigurationError):
        return f"{error}"
    if isinstance(error, FileExistsError):
        if error.filename:  # raised by the OS: args are (errno, strerror)
            return f"{error.filename} exists (use --overwrite to replace it)"
        text = re.sub(r"\s*\((?:pass|use) overwrite=True[^)]*\)", "", str(error))
        return f"{text} (use --overwrite to replace it)"
    if isinstance(error, ValueError | TypeError):
        return f"invalid argument: {error}"
    if isinstance(error, OSError):
        return f"{error.strerror or error}: {error.filename}" if error.filename else str(error)
    return f"{type(error).__name__}: {error}"


def _print_error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)


def human_bytes(n: float) -> str:
    """Sizes as rich's bars show them (powers of 1000: bytes, kB, MB, GB), so summary and bars agree."""
    size = int(n)
    if size == 1:
        return "1 byte"
    if size < 1000:
        return f"{size:,} bytes"
    units = ("kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    power = next((p for p in range(2, len(units) + 1) if size < 1000**p), len(units) + 1)
    suffix = units[power - 2]
    return f"{1000 * size / 1000**power:,.1f} {suffix}"


# -- commands --------------------------------------------------------------------------------


def _api_host(args: argparse.Namespace) -> str:
    from urllib.parse import urlsplit

    base_url = args.base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return urlsplit(base_url.strip()).netloc or base_url


def _client(args: argparse.Namespace) -> Verbex:
    """The client, with configuration problems told in terms of the command's flags and variables."""
    from ._client import Verbex
    from ._exceptions import ConfigurationError

    key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV)
    key_from = "--api-key" if args.api_key is not None else API_KEY_ENV
    if not key or not key.strip():
        given = f"{key_from} is empty" if key is not None else "no API key"
        raise UsageError(f"{given}: pass --api-key KEY or set {API_KEY_ENV}")
    try:
        return Verbex(
            api_key=key,
            base_url=args.base_url,
            timeout=args.timeout,
            max_retries=args.max_retries,
            allow_insecure_storage=getattr(args, "allow_insecure_storage", False),
        )
    except ConfigurationError:
        if key != key.strip() or any(ch in key for ch in "\r\n"):
            raise UsageError(
                f"the API key from {key_from} has surrounding whitespace or a line break; check how "
                "it was set"
            ) from None
        base_url = args.base_url if args.base_url is not None else os.environ.get(BASE_URL_ENV)
        url_from = "--base-url" if args.base_url is not None else BASE_URL_ENV
        raise UsageError(
            f"{url_from} must be an http(s) URL such as {DEFAULT_BASE_URL}, got {base_url!r}"
        ) from None


def cmd_url(args: argparse.Namespace) -> int:
    with _client(args) as client:
        signed = client.recordings.signed_url(args.call_id, expires_in_minutes=args.expires_in_minutes)
    if args.json:
        print(json.dumps(signed.to_dict()))  # every field the API returned, new ones included
    else:
        print(signed.url)
    return EXIT_OK


def read_ids(args: argparse.Namespace) -> list[str]:
    """The call ids from the arguments and --ids-file, each checked before any request."""
    from ._validation import check_call_id

    ids = [(call_id, "argument") for call_id in args.call_ids]
    if args.ids_file:
        try:
            stream: TextIO = sys.stdin if args.ids_file == "-" else open(args.ids_file, encoding="utf-8")  # noqa: SIM115
        except OSError as error:
            raise UsageError(f"cannot read --ids-file: {describe_error(error)}") from None
        with stream:
            for number, line in enumerate(stream, 1):
                if line.strip() and not line.lstrip().startswith("#"):
                    ids.append((line.strip(), f"--ids-file line {number}"))
    if not ids:
        raise UsageError("no call ids: give CALL_ID arguments or --ids-file")
    for call_id, where in ids:
        try:
            check_call_id(call_id)
        except (TypeError, ValueError) as error:
            reason = str(error).removeprefix("call_id ")
            raise UsageError(f"invalid call id {call_id!r} ({where}): {reason}") from None
    return [call_id for call_id, _ in ids]


def _names_directory(dest: str) -> bool:
    """`-o dir/`: a trailing separator means a directory (to create), as with cp and rsync."""
    return dest.endswith(("/", os.sep, os.altsep or os.sep))


def _check_destination(dest: str, calls: int) -> bool:
    """Whether the calls go into a directory; usage errors for a destination that cannot work."""
    if "://" in dest:  # s3://, gs://, file://: a prefix in object storage, checked by the library
        return True
    if os.path.isdir(dest):
        return True
    if _names_directory(dest):
        if os.path.exists(dest.rstrip("/" + os.sep)):
            raise UsageError(f"-o {dest}: {dest.rstrip('/' + os.sep)} exists and is not a directory")
        return True
    if calls > 1 and os.path.exists(dest):
        raise UsageError(
            f"-o {dest}: that is an existing file, and {calls} call ids need a directory "
            f"(-o DIR/; --overwrite only replaces recordings)"
        )
    return calls > 1


def cmd_download(args: argparse.Namespace) -> int:
    ids = read_ids(args)
    distinct = list(dict.fromkeys(ids))
    dest = args.output
    into_dir = _check_destination(dest, len(distinct))
    started = time.monotonic()
    # Debug logs write to stderr on their own: they replace the bars rather than tear them.
    logging_on = args.debug or os.environ.get("VERBEX_LOG", "").lower() in ("debug", "info")
    bars = sys.stderr.isatty() and not args.quiet and not logging_on
    # On a terminal the bars stand for the per-file lines (listed at the end instead);
    # piped or redirected, each line goes out as soon as its call is done.
    lines = not args.quiet and not (bars and sys.stdout.isatty())
    stopped, status = "", EXIT_OK
    to_store = "://" in dest
    with _client(args) as client:
        if into_dir and not to_store:
            os.makedirs(dest, exist_ok=True)
        display = _ProgressDisplay(distinct) if bars else None
        report = _Report(args, display, lines=lines, api_host=_api_host(args))
        try:
            with display if display is not None else contextlib.nullcontext():
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
                        progress=display.progress if display is not None else None,
                        on_item=report,
                        connect_timeout=args.timeout,
                    )
                    report.settle(result)
                elif len(distinct) == 1 and not to_store:  # one call: no manifest, into a directory too
                    _download_one(client, distinct[0], dest, args, display, report)
                else:
                    client.recordings.download_many(
                        ids,
                        dest,
                        concurrency=args.concurrency,
                        overwrite=args.overwrite,
                        fsync=args.fsync,
                        progress=display.progress if display is not None else None,
                        expires_in_minutes=args.expires_in_minutes,
                        on_item=report,
                    )
        except KeyboardInterrupt:
            stopped, status = "; interrupted (rerun to resume)", EXIT_INTERRUPTED
        except BrokenPipeError:  # `| head -1` has what it wanted: stop the batch, quietly
            _discard_stdout()
            stopped, status = "; stopped: stdout was closed", EXIT_OUTPUT_CLOSED
    if display is not None:
        for line in report.recap(dest, manifest=len(distinct) > 1):
            print(line, file=sys.stderr)
    if not args.quiet:
        print(report.summary(time.monotonic() - started) + stopped, file=sys.stderr, flush=True)
    elif status == EXIT_INTERRUPTED:
        print("interrupted", file=sys.stderr, flush=True)
    return status or (EXIT_OK if report.ok else EXIT_FAILED)


def _download_one(
    client: Verbex,
    call_id: str,
    dest: str,
    args: argparse.Namespace,
    display: _ProgressDisplay | None,
    report: _Report,
) -> None:
    from ._batch import BatchItem

    progress = (lambda done, total: display.progress(call_id, done, total)) if display else None
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
        report(BatchItem(call_id, "failed", None, error))
    else:
        report(BatchItem(call_id, "downloaded", done.path, None, done.bytes))


def _discard_stdout() -> None:
    """After EPIPE: point stdout at devnull, so the interpreter's final flush cannot fail loudly."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class _Report:
    """Each call's outcome as soon as it is known (download_many's on_item): its line or JSON
    object on stdout, flushed, or its error on stderr; and the tallies for the end."""

    def __init__(
        self, args: argparse.Namespace, display: _ProgressDisplay | None, *, lines: bool, api_host: str
    ) -> None:
        self.json, self.lines, self.display, self.api_host = args.json, lines, display, api_host
        self.items: list[BatchItem] = []

    def __call__(self, item: BatchItem) -> None:
        self.items.append(item)
        if self.display is not None:
            self.display.settled(item)
        if self.json:
            print(self.as_json(item), flush=True)
        elif item.status == "failed":
            _print_error(f"{item.call_id}: {self.reason(item)}")
        elif self.lines:
            print(f"{item.status} {item.call_id} -> {item.location} ({human_bytes(item.bytes)})", flush=True)

    def settle(self, result: BatchResult) -> None:
        """The batch's exact outcomes for the summary and exit status, in place of the lines
        streamed (with --dask, a partition run again after its worker died may end a call
        otherwise than its first run reported)."""
        self.items = list(result.results)

    def as_json(self, item: BatchItem) -> str:
        return json.dumps(
            {
                "call_id": item.call_id,
                "status": item.status,
                "path": item.location,
                "bytes": item.bytes,
                "error": self.reason(item) if item.error else None,
            }
        )

    def reason(self, item: BatchItem) -> str:
        return describe_error(item.error or Exception("failed"), api_host=self.api_host)

    def _with(self, status: str) -> list[BatchItem]:
        return [item for item in self.items if item.status == status]

    @property
    def ok(self) -> bool:
        return not self._with("failed")

    def summary(self, seconds: float) -> str:
        downloaded, skipped, failed = self._with("downloaded"), self._with("skipped"), self._with("failed")
        total = sum(item.bytes for item in downloaded)
        rate = f" ({human_bytes(total / seconds)}/s)" if total and seconds > 0 else ""
        return (
            f"{len(downloaded)} downloaded, {len(skipped)} skipped, {len(failed)} failed; "
            f"{human_bytes(total)} in {seconds:.1f} s{rate}"
        )

    def recap(self, dest: str, *, manifest: bool) -> list[str]:
        """For a terminal, after the bars: where the files went, and every failure with its reason."""
        from ._paths import MANIFEST_NAME

        lines: list[str] = []
        manifest_path = os.path.join(dest, MANIFEST_NAME)
        downloaded, skipped, failed = self._with("downloaded"), self._with("skipped"), self._with("failed")
        if downloaded and (len(downloaded) <= MAX_LISTED or not manifest):
            lines.append("written:")
            lines += [f"  {item.location} ({human_bytes(item.bytes)})" for item in downloaded]
        elif downloaded:
            lines.append(f"written: {len(downloaded)} files in {dest}, each listed in {manifest_path}")
        if skipped:
            lines.append(f"skipped: {len(skipped)} already downloaded, listed in {manifest_path}")
        if failed:
            lines.append("failed:")
            lines += [f"  {item.call_id}: {self.reason(item)}" for item in failed[:MAX_LISTED]]
            if len(failed) > MAX_LISTED:
                lines.append(f"  ... and {len(failed) - MAX_LISTED} more (--json lists every call)")
        return lines


class _ProgressDisplay:
    """rich's progress bars on stderr: a total over the whole batch, and one bar per active file.

    rich computes every rate over its sliding window and each ETA from it; this
    class only feeds it bytes. The total counts the bytes to fetch in this run
    (a resumed file's bytes already on disk are not "speed"): each file's size
    joins it on the file's first report that knows it, and until every size is
    known each file not yet started counts as the average size so far, marked `~`.
    """

    def __init__(self, call_ids: list[str]) -> None:
        self.count = len(call_ids)
        self._lock = threading.Lock()
        self._tasks: dict[str, Any] = {}
        self._start: dict[str, int] = {}  # bytes on disk at a file's first report (resumed)
        self._got: dict[str, int] = {}  # bytes received in this run, per file
        self._size: dict[str, int] = {}  # sizes known so far
        self._received = self._to_fetch = self._sizes_sum = 0
        self._settled = self._settled_unsized = 0

    def __enter__(self) -> _ProgressDisplay:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            ProgressColumn,
            Task,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.text import Text

        class ToFetchColumn(ProgressColumn):
            """DownloadColumn's `done/total unit`, with `~` before a total that is partly estimated."""

            def __init__(self) -> None:
                super().__init__()
                self.download = DownloadColumn()

            def render(self, task: Task) -> Text:
                text = self.download.render(task)
                if task.fields.get("estimated"):
                    text = Text(text.plain.replace("/", "/~", 1), style=text.style)
                return text

        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[files]}"),
            ToFetchColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),  # stdout stays for results and --json
            speed_estimate_period=10.0,
            # print() to a terminal stdout shows above the bars; a piped stdout is left alone.
            redirect_stdout=sys.stdout.isatty(),
        )
        self._bars.__enter__()
        self._total = self._bars.add_task("total", total=None, files=f"0/{self.count} files")
        return self

    def __exit__(self, *exc: object) -> None:
        self._bars.__exit__(None, None, None)

    def progress(self, call_id: str, done: int, total: int | None) -> None:
        """download_many's `progress(call_id, bytes_done, total)`, from any worker thread."""
        with self._lock:
            if call_id not in self._start:
                self._start[call_id], self._got[call_id] = done, 0
                self._tasks[call_id] = self._bars.add_task(
                    call_id[:32], total=total, completed=done, files=""
                )
            else:
                self._bars.update(self._tasks[call_id], completed=done, total=total)
            got = max(done - self._start[call_id], 0)
            self._received += got - self._got[call_id]
            self._got[call_id] = got
            if total is not None and call_id not in self._size:
                self._add_size(call_id, total)
            self._update_total()

    def settled(self, item: BatchItem) -> None:
        """A call's outcome is known: its bar leaves, and a failure's bytes leave the total."""
        with self._lock:
            self._settled += 1
            task = self._tasks.pop(item.call_id, None)
            if task is not None:
                self._bars.remove_task(task)
            start = self._start.get(item.call_id, 0)
            if item.status == "failed" or (item.status == "skipped" and item.call_id not in self._size):
                self._received -= self._got.pop(item.call_id, 0)
                size = self._size.pop(item.call_id, None)
                if size is not None:
                    self._to_fetch -= size - start
                    self._sizes_sum -= size
                self._settled_unsized += 1
            elif item.status == "downloaded":
                if item.call_id not in self._size:  # storage never said its size
                    self._add_size(item.call_id, item.bytes)
                got = max(item.bytes - start, 0)
                self._received += got - self._got.get(item.call_id, 0)
                self._got[item.call_id] = got
            self._update_total()

    def _add_size(self, call_id: str, size: int) -> None:
        self._size[call_id] = size
        self._to_fetch += size - self._start.get(call_id, 0)
        self._sizes_sum += size

    def _update_total(self) -> None:
        unknown = self.count - len(self._size) - self._settled_unsized
        total = None
        if self._size:
            total = self._to_fetch + round(unknown * self._sizes_sum / len(self._size))
        elif not unknown:
            total = 0
        self._bars.update(
            self._total,
            completed=self._received,
            total=total,
            files=f"{self._settled}/{self.count} files",
            estimated=unknown > 0 and total is not None,
        )


# -- entry -----------------------------------------------------------------------------------


def run(argv: list[str]) -> int:
    import signal

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "sandbox":
        from .testing.__main__ import main as sandbox_main

        return sandbox_main(extra, prog="verbex sandbox")
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="[%(asctime)s %(levelname)s %(name)s] %(message)s")
    # SIGTERM ends us like Ctrl-C does: cleanly, leaving only .part files.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    command = {"url": cmd_url, "download": cmd_download}[args.action]
    try:
        return command(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_OUTPUT_CLOSED
    except UsageError as error:
        _print_error(str(error))
        return EXIT_USAGE
    except Exception as error:
        if args.debug:
            raise
        from ._exceptions import ConfigurationError

        _print_error(describe_error(error, api_host=_api_host(args)))
        return EXIT_USAGE if isinstance(error, ConfigurationError | TypeError | ValueError) else EXIT_FAILED
