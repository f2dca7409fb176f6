"""The fault matrix and load run: `make reliability` prints them; `make test` runs the same cases.

Each row scripts one fault into a fresh sandbox, downloads a recording
through the public API, and checks the outcome: a byte-identical,
checksum-verified file or the documented exception; never a partial target; the
API key and URL signatures absent from every log record and exception text.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import google_crc32c

sys.path.insert(0, str(Path(__file__).resolve().parent))

import verbex_client as vc
from verbex_client.testing import Sandbox

DATA = hashlib.sha256(b"verbex").digest() * 31_250  # 1,000,000 bytes, the same every run
NAME = "webcall_matrix_agent.ogg"
XML = "<?xml version='1.0' encoding='UTF-8'?><Error><Code>{}</Code><Message>{}</Message></Error>"


@dataclass(frozen=True)
class Case:
    fault: str
    expected: str  # "file" or an exception class name
    setup: Callable[[Sandbox], None]
    file_name: str = NAME
    client_options: tuple[tuple[str, object], ...] = ()
    landed_as: str = NAME


def _xml(code: str, message: str) -> bytes:
    return XML.format(code, message).encode()


CASES = [
    Case("API 500 twice, then 200", "file", lambda sb: sb.fail_next(2, status=500)),
    Case("API 429 with Retry-After: 1", "file", lambda sb: sb.fail_next(1, status=429, retry_after="1")),
    Case("connection reset before the response", "file", lambda sb: sb.reset_next()),
    Case(
        "read timeout (every attempt)",
        "APITimeoutError",
        lambda sb: sb.delay_next(1.0, count=3),
        client_options=(("timeout", 0.2),),
    ),
    Case(
        "HTML 502 from a proxy (every attempt)",
        "InternalServerError",
        lambda sb: sb.fail_next(
            3, status=502, body=b"<html><title>502 Bad Gateway</title></html>", content_type="text/html"
        ),
    ),
    Case(
        "200 with a non-JSON body",
        "APIResponseValidationError",
        lambda sb: sb.respond_next(b"<html>maintenance</html>", content_type="text/html"),
    ),
    Case(
        "200 missing signed_url",
        "APIResponseValidationError",
        lambda sb: sb.respond_next(
            b'{"file_name": "a.ogg", "expiration_minutes": 10, "expires_at": "2026-04-02T06:25:27Z"}'
        ),
    ),
    Case("storage cut at 10 %", "file", lambda sb: sb.cut_next_download(len(DATA) // 10)),
    Case("storage cut at 50 %", "file", lambda sb: sb.cut_next_download(len(DATA) // 2)),
    Case("storage cut at 99 %", "file", lambda sb: sb.cut_next_download(len(DATA) * 99 // 100)),
    Case("URL expired before the first byte", "file", lambda sb: sb.expire_urls(after_seconds=0, count=1)),
    Case("URL expired mid-download", "file", lambda sb: sb.expire_urls(after_bytes=len(DATA) // 3, count=1)),
    Case("one corrupted byte", "IntegrityError", lambda sb: sb.corrupt_next_download(at=777)),
    Case("Content-Length 100 bytes too long", "file", lambda sb: sb.wrong_length_next_download(100)),
    Case("Content-Length 100 bytes too short", "file", lambda sb: sb.wrong_length_next_download(-100)),
    Case(
        "storage 404 NoSuchKey",
        "DownloadError",
        lambda sb: sb.fail_next(status=404, target="storage", body=_xml("NoSuchKey", "No such object.")),
    ),
    Case(
        "storage 403 SignatureDoesNotMatch",
        "DownloadError",
        lambda sb: sb.fail_next(
            status=403, target="storage", body=_xml("SignatureDoesNotMatch", "Bad signature.")
        ),
    ),
    Case("server file_name ../../x", "file", lambda sb: None, file_name="../../x", landed_as="x"),
]


@dataclass(frozen=True)
class Row:
    fault: str
    expected: str
    observed: str
    passed: bool
    detail: str = ""


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _secrets(sb: Sandbox) -> list[str]:
    found = [sb.api_key]
    for url in sb.issued_urls:
        query = parse_qs(urlsplit(url).query)
        found += query.get("X-Goog-Signature", []) + query.get("X-Goog-Credential", [])
    return found


def run_case(case: Case, *, fake_sleep: bool = True) -> Row:
    capture = _Capture()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    try:
        with Sandbox() as sb, tempfile.TemporaryDirectory() as tmp:
            dest = Path(tmp) / "out"
            dest.mkdir()
            sb.add_recording("call-1", DATA, file_name=case.file_name)
            case.setup(sb)
            with sb.client(**dict(case.client_options)) as client:
                if fake_sleep:
                    client._transport.hooks.sleep = lambda seconds: None
                try:
                    result = client.recordings.download("call-1", dest)
                    observed, error_text = "file", ""
                except vc.VerbexError as error:
                    observed, error_text = type(error).__name__, f"{error}\n{error!r}"
                    result = None
            leftovers = sorted(p.name for p in dest.iterdir())
            problems = []
            if observed == "file":
                assert result is not None
                target = dest / case.landed_as
                if (
                    leftovers != [case.landed_as]
                    or target.read_bytes() != DATA
                    or result.crc32c != google_crc32c.value(DATA).to_bytes(4, "big").hex()
                ):
                    problems.append(f"files {leftovers}, not a verified {case.landed_as}")
            elif any(not name.endswith(".part") for name in leftovers):
                problems.append(f"target left behind: {leftovers}")
            text = "\n".join(capture.lines) + error_text
            leaked = [s for s in _secrets(sb) if s and s in text]
            if leaked:
                problems.append("a secret appeared in logs or exception text")
            passed = observed == case.expected and not problems
            return Row(case.fault, case.expected, observed, passed, "; ".join(problems))
    finally:
        root.removeHandler(capture)
        root.setLevel(old_level)


# -- load -------------------------------------------------------------------------------------


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class LoadReport:
    calls: int
    tasks: int
    call_errors: int
    peak_api_connections: int
    rss_growth_mib: float
    calls_per_second: float
    downloads: int
    download_errors: int
    peak_storage_connections: int  # storage requests in flight at once: one connection each
    pool_limit: int
    download_seconds: float

    def ok(self, rss_limit_mib: float = 20.0) -> bool:
        return (
            self.call_errors == 0
            and self.download_errors == 0
            and self.peak_api_connections <= self.pool_limit
            and self.peak_storage_connections <= self.pool_limit
            and self.rss_growth_mib < rss_limit_mib
        )


async def _load(sb: Sandbox, calls: int, tasks: int, downloads: int, size: int, dest: Path) -> LoadReport:
    from verbex_client._config import DEFAULT_LIMITS

    limit = DEFAULT_LIMITS.max_connections or 0
    errors = 0
    done = 0
    rss_mark = 0
    mark_at = min(1000, calls // 5)
    started = time.perf_counter()
    async with sb.async_client(max_retries=0) as client:
        queue = iter(range(calls))

        async def caller() -> None:
            nonlocal errors, done, rss_mark
            for _ in queue:
                try:
                    await client.recordings.signed_url("load-call")
                except vc.VerbexError:
                    errors += 1
                done += 1
                if done == mark_at:
                    rss_mark = _rss_bytes()

        await asyncio.gather(*(caller() for _ in range(tasks)))
        call_seconds = time.perf_counter() - started
        rss_growth = (_rss_bytes() - rss_mark) / (1 << 20)
        peak_api = sb.peak_connections
        sb.reset_peaks()
        started = time.perf_counter()
        ids = [f"dl-{i}" for i in range(downloads)]
        batch = await client.recordings.download_many(ids, dest, concurrency=downloads)
        download_seconds = time.perf_counter() - started
        bad = [i for i in batch.results if i.status != "downloaded" or i.bytes != size]
    return LoadReport(
        calls,
        tasks,
        errors,
        peak_api,
        rss_growth,
        calls / call_seconds,
        downloads,
        len(bad),
        sb.peak_storage_in_flight,
        limit,
        download_seconds,
    )


def run_load(calls: int, tasks: int, downloads: int, size: int) -> LoadReport:
    with Sandbox() as sb, tempfile.TemporaryDirectory() as tmp:
        sb.add_recording("load-call", b"x" * 1000)
        payload = os.urandom(size)
        for i in range(downloads):
            sb.add_recording(f"dl-{i}", payload, file_name=f"dl-{i}.ogg")
        return asyncio.run(_load(sb, calls, tasks, downloads, size, Path(tmp)))


def main() -> int:
    rows = [run_case(case, fake_sleep=False) for case in CASES]
    width = max(len(r.fault) for r in rows)
    print(f"{'fault':<{width}}  {'expected':<26}  {'observed':<26}  pass")
    print("-" * (width + 62))
    for r in rows:
        print(
            f"{r.fault:<{width}}  {r.expected:<26}  {r.observed:<26}  {'yes' if r.passed else 'NO ' + r.detail}"
        )
    print()
    report = run_load(calls=5000, tasks=64, downloads=200, size=1 << 20)
    print(
        f"load: {report.calls} signed_url calls from {report.tasks} async tasks: {report.call_errors} errors, "
        f"{report.calls_per_second:.0f} calls/s, peak {report.peak_api_connections} API connections "
        f"(pool limit {report.pool_limit}), RSS growth {report.rss_growth_mib:.1f} MiB from call 1000 to the last"
    )
    print(
        f"load: {report.downloads} concurrent 1 MiB downloads: {report.download_errors} errors, "
        f"peak {report.peak_storage_connections} storage connections, {report.download_seconds:.1f} s"
    )
    ok = all(r.passed for r in rows) and report.ok()
    print(
        f"\n{sum(r.passed for r in rows)} passed, {sum(not r.passed for r in rows)} failed; load {'ok' if report.ok() else 'FAILED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
