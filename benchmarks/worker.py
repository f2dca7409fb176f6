"""One measurement in a fresh process, run by run.py (also under the peers' venv).

    worker.py call CONTENDER URL CALLS [TASKS]     -> {"per_call": seconds}
    worker.py download CONTENDER URL TARGET [OBJECT] -> {"seconds": s, "cpu": s, "maxrss_kib": k}
    worker.py download verbex-ab-SLICE-CHUNK URL TARGET  (write slice / read size A/B, fsync=False)
    worker.py download gcs ENDPOINT TARGET OBJECT    (google-cloud-storage Blob.download_to_filename)
    worker.py profile URL CALLS                      -> {"component": seconds per call, ...}
    worker.py bulk URL KEY COUNT CONCURRENCY DEST FSYNC -> {"seconds": s}
    worker.py bulk-floor ENDPOINT COUNT CONCURRENCY   (urllib3 threads, read and dropped)
    worker.py bulk-gcs ENDPOINT COUNT CONCURRENCY DEST  (transfer_manager.download_many, threads)
    worker.py serve PORT STORAGE_URL LATENCY         (the bulk API and delaying helper; runs until killed)

Only the standard library is imported up front: each contender imports its
own stack, so one contender's imports never help another.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

KEY = "API_benchmark_key_0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdef"
PATH = "/v1/call-recording/signed-url"
BODY = {"call_id": "bench-call", "expiration_url_in_minutes": 10}
BUCKET = "bench"  # _env.BUCKET


def _timed(fn: Any, calls: int) -> float:
    for _ in range(min(20, calls)):
        fn()  # warm: connections open, caches filled
    started = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - started) / calls


def sync_contender(name: str, url: str) -> Any:
    if name == "verbex":
        from verbex_client import Verbex

        client = Verbex(api_key=KEY, base_url=url)
        return lambda: client.recordings.signed_url("bench-call")
    if name == "httpx":
        import httpx

        raw = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"})

        def call() -> Any:
            response = raw.post(PATH, json=BODY)
            response.raise_for_status()
            return json.loads(response.content)

        return call
    if name == "requests":
        import requests

        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {KEY}"

        def call_requests() -> Any:
            response = session.post(url + PATH, json=BODY, timeout=30)
            response.raise_for_status()
            return response.json()

        return call_requests
    if name == "openai":
        from openai import OpenAI

        oa = OpenAI(api_key=KEY, base_url=url)
        return lambda: oa.post(PATH, body=BODY, cast_to=object)
    if name == "retell":
        from retell import Retell

        rt = Retell(api_key=KEY, base_url=url)
        return lambda: rt.post(PATH, body=BODY, cast_to=object)
    raise SystemExit(f"unknown contender {name}")


async def _async_per_call(name: str, url: str, calls: int, tasks: int) -> float:
    import asyncio

    if name == "verbex":
        from verbex_client import AsyncVerbex

        client = AsyncVerbex(api_key=KEY, base_url=url)

        async def one() -> Any:
            return await client.recordings.signed_url("bench-call")
    else:
        import httpx

        # httpx's defaults: a 100-connection pool.
        raw = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"})

        async def one() -> Any:
            response = await raw.post(PATH, json=BODY)
            response.raise_for_status()
            return json.loads(response.content)

    async def worker(count: int) -> None:
        for _ in range(count):
            await one()

    await asyncio.gather(*(worker(3) for _ in range(tasks)))  # warm up every connection
    started = time.perf_counter()
    await asyncio.gather(*(worker(calls // tasks) for _ in range(tasks)))
    return (time.perf_counter() - started) / (calls // tasks * tasks)


def gcs_client(endpoint: str) -> Any:
    """google-cloud-storage pointed at nginx: anonymous, `api_endpoint` the benchmark server
    (it trusts the benchmark CA through REQUESTS_CA_BUNDLE, as any requests session does)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project="bench", credentials=AnonymousCredentials(), client_options={"api_endpoint": endpoint}
    )


def _load_generated_operation() -> None:
    """Import the generated operation and its models, as a running service's first call did
    (~20 ms: attrs builds the model classes), so the clock measures the download."""
    import verbex_api.api.call_recording.get_signed_url_v1_call_recording_signed_url_post  # noqa: F401


def _fetch_to_file(http: Any, url: str, path: str, fsync: bool) -> None:
    """The same work as ours, written by hand: GET `url` with urllib3 in 256 KiB reads, crc32c
    over the bytes, 64 KiB `pwrite`s into `path`.part, fdatasync when `fsync`, rename. No
    checks beyond the checksum, no lock, no retries: a floor for what a download costs here."""
    import base64
    import os

    import google_crc32c

    reply = http.request("GET", url, preload_content=False, decode_content=False)
    hashes = [h.strip() for value in reply.headers.getlist("x-goog-hash") for h in value.split(",")]
    expected = next(h.split("=", 1)[1] for h in hashes if h.startswith("crc32c="))
    crc, offset = 0, 0
    fd = os.open(path + ".part", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while data := reply.read(256 << 10):
            crc = google_crc32c.extend(crc, data)
            view = memoryview(data)
            for start in range(0, len(view), 64 << 10):
                offset += os.pwrite(fd, view[start : start + (64 << 10)], offset)
        if fsync:
            os.fdatasync(fd)
    finally:
        os.close(fd)
    reply.release_conn()
    if base64.b64encode(crc.to_bytes(4, "big")).decode() != expected:
        raise SystemExit(f"crc32c mismatch for {path}")
    os.replace(path + ".part", path)


def download(name: str, url: str, target: str, obj: str = "") -> dict[str, float]:
    """Wall and CPU seconds from asking for the URL to a closed file (imports done first, as in a
    running service)."""
    if name in ("verbex", "verbex-nofsync") or name.startswith("verbex-ab-"):
        # A running service has loaded these on its first download (urllib3: our sync pool's).
        import urllib3  # noqa: F401

        import verbex_client._download  # noqa: F401
        from verbex_client import Verbex

        _load_generated_operation()
        if name.startswith("verbex-ab-"):  # the write size A/B: our two size constants, set here
            from verbex_client import _files, _storage

            write_slice, chunk_size = name.removeprefix("verbex-ab-").split("-")
            _files.WRITE_SLICE, _storage.CHUNK_SIZE = int(write_slice), int(chunk_size)
        with Verbex(api_key=KEY, base_url=url) as client:
            started, cpu = time.perf_counter(), time.process_time()
            client.recordings.download("bench-call", target, overwrite=True, fsync=name == "verbex")
            return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}
    if name == "gcs":
        from google.cloud.storage import Blob

        blob = Blob(obj, gcs_client(url).bucket(BUCKET))
        started, cpu = time.perf_counter(), time.process_time()
        blob.download_to_filename(target)  # checksum="auto": crc32c with google-crc32c's C library
        return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}
    if name in ("floor", "work-floor"):
        # The receive floor (TLS and HTTP only, no checksum, no file), or the same work as
        # ours by hand (crc32c and the file, no fsync); both sign with one urllib3 POST.
        http = _floor_pool(1)
        started, cpu = time.perf_counter(), time.process_time()
        signed = json.loads(http.request("POST", url + PATH, json=BODY).data)["signed_url"]
        if name == "floor":
            _get_and_drop(http, signed)
        else:
            _fetch_to_file(http, signed, target, fsync=False)
        return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}
    if name == "httpx":
        import httpx

        with httpx.Client(base_url=url) as api, httpx.Client() as storage:
            started, cpu = time.perf_counter(), time.process_time()
            signed = api.post(PATH, json=BODY, headers={"Authorization": f"Bearer {KEY}"}).json()[
                "signed_url"
            ]
            with storage.stream("GET", signed) as response, open(target, "wb") as f:
                for chunk in response.iter_raw():
                    f.write(chunk)
            return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}
    raise SystemExit(f"unknown contender {name}")


def profile(url: str, calls: int) -> dict[str, float]:
    """Per-call seconds spent in each part of signed_url, from cProfile's cumulative times."""
    import cProfile
    import pstats

    call = sync_contender("verbex", url)
    for _ in range(50):
        call()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        call()
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    parts = {
        "total (Recordings.signed_url)": ("_recordings.py", "signed_url"),
        "argument checks": ("_validation.py", "check_call_id"),
        "generated request building": ("call_recording_request.py", "to_dict"),
        "HTTP send + receive (httpx)": ("_client.py", "request"),
        "retry/log bookkeeping": ("_transport.py", "after_response"),
        "response parsing": ("_parsing.py", "signed_url_from_response"),
        "generated model from_dict": ("call_recording_signed_url_response.py", "from_dict"),
        "timestamp parsing": ("_parsing.py", "parse_timestamp"),
    }
    out = {}
    for label, (file_end, func) in parts.items():
        cumulative = sum(
            value[3]
            for (filename, _, name), value in stats.items()
            if filename.endswith(file_end) and name == func
        )
        out[label] = cumulative / calls
    # expires check lives in generated _get_kwargs; add the validation of expires too
    out["argument checks"] += (
        sum(
            v[3]
            for (f, _, n), v in stats.items()
            if f.endswith("_validation.py") and n == "check_expires_in_minutes"
        )
        / calls
    )
    return out


def bulk(
    url: str, key: str, count: int, concurrency: int, dest: str, fsync: bool, use_async: bool = False
) -> dict[str, float]:
    """Wall seconds of one download_many, and the CPU seconds this process spent in it."""
    import urllib3  # noqa: F401 - loaded before timing, as in a running service

    import verbex_client._batch
    import verbex_client._download  # noqa: F401
    from verbex_client import AsyncVerbex, Verbex

    _load_generated_operation()

    ids = [f"bulk-{i}" for i in range(count)]
    if use_async:
        import asyncio

        async def run() -> tuple[Any, float, float]:
            async with AsyncVerbex(api_key=key, base_url=url) as client:
                cpu, started = time.process_time(), time.perf_counter()
                result = await client.recordings.download_many(
                    ids, dest, concurrency=concurrency, overwrite=True, fsync=fsync
                )
                return result, time.perf_counter() - started, time.process_time() - cpu

        result, seconds, cpu = asyncio.run(run())
    else:
        with Verbex(api_key=key, base_url=url) as client:
            cpu, started = time.process_time(), time.perf_counter()
            result = client.recordings.download_many(
                ids, dest, concurrency=concurrency, overwrite=True, fsync=fsync
            )
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if not result.ok:
        raise SystemExit(f"bulk download failed: {result.failed[0].error}")
    return {"seconds": seconds, "cpu": cpu}


def _floor_pool(size: int) -> Any:
    """The receive floor's urllib3 pool, trusting the benchmark's CA (SSL_CERT_FILE)."""
    import os
    import ssl

    import urllib3

    context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE"))
    return urllib3.PoolManager(maxsize=size, ssl_context=context)


def _get_and_drop(http: Any, url: str) -> None:
    """GET `url`, reading the body in 256 KiB reads (ours) and dropping it."""
    reply = http.request("GET", url, preload_content=False)
    while reply.read(256 << 10):
        pass
    reply.release_conn()


def bulk_floor(endpoint: str, count: int, concurrency: int) -> dict[str, float]:
    """The bulk receive floor: the same GETs from `concurrency` threads with urllib3, read and
    dropped (no API call, no checksum, no file): what TLS and HTTP alone cost here."""
    from concurrent.futures import ThreadPoolExecutor

    http = _floor_pool(concurrency)
    cpu, started = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda n: _get_and_drop(http, f"{endpoint}/bulk/bulk-{n}.ogg"), range(count)))
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}


def bulk_work_floor(url: str, count: int, concurrency: int, dest: str) -> dict[str, float]:
    """The same work as ours at `concurrency`, by hand: threads that each ask the API (httpx)
    for a URL, then GET, crc32c, write, fdatasync and rename (`_fetch_to_file`)."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    http = _floor_pool(concurrency)
    os.makedirs(dest, exist_ok=True)
    limits = httpx.Limits(max_connections=concurrency)
    with httpx.Client(base_url=url, limits=limits) as api:

        def one(n: int) -> None:
            body = {"call_id": f"bulk-{n}", "expiration_url_in_minutes": 10}
            reply = api.post(PATH, json=body, headers={"Authorization": f"Bearer {KEY}"})
            _fetch_to_file(http, reply.json()["signed_url"], os.path.join(dest, f"bulk-{n}.ogg"), True)

        cpu, started = time.process_time(), time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(one, range(count)))
        return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}


def bulk_gcs(endpoint: str, count: int, concurrency: int, dest: str) -> dict[str, float]:
    """Wall and CPU seconds of google-cloud-storage's transfer_manager.download_many (threads)."""
    import os

    from google.cloud.storage import transfer_manager

    bucket = gcs_client(endpoint).bucket(BUCKET)
    os.makedirs(dest, exist_ok=True)
    pairs = [(bucket.blob(f"bulk-{i}.ogg"), os.path.join(dest, f"bulk-{i}.ogg")) for i in range(count)]
    cpu, started = time.process_time(), time.perf_counter()
    transfer_manager.download_many(
        pairs, max_workers=concurrency, worker_type=transfer_manager.THREAD, raise_exception=True
    )
    return {"seconds": time.perf_counter() - started, "cpu": time.process_time() - cpu}


def serve_bulk(port: int, storage_url: str, latency: float) -> None:
    """The bulk run's API (a signed URL per call id, pointing at nginx) and nginx's
    `auth_request` target, which only waits `latency` before saying yes. asyncio, one
    thread: a few hundred microseconds of CPU per download, so nginx and the client
    are what is measured.
    """
    import asyncio
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _env import EXAMPLE

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)
                }
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                if target.startswith("/delay"):
                    await asyncio.sleep(latency)
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                elif method == "POST" and target == PATH:
                    call_id = json.loads(body)["call_id"]
                    reply = dict(EXAMPLE, call_id=call_id, file_name=f"{call_id}.ogg")
                    reply["signed_url"] = (
                        f"{storage_url}/bulk/{call_id}.ogg?X-Goog-Algorithm=GOOG4-RSA-SHA256"
                        "&X-Goog-Credential=bench&X-Goog-Signature=bench"
                    )
                    reply["expires_at"] = "2099-01-01T00:00:00.000000000Z"
                    data = json.dumps(reply).encode()
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(data), data)
                    )
                else:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def run() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(run())


def main(argv: list[str]) -> None:
    kind = argv[0]
    if kind == "call":
        name, url, calls = argv[1], argv[2], int(argv[3])
        tasks = int(argv[4]) if len(argv) > 4 else 0
        if tasks:
            import asyncio

            per_call = asyncio.run(_async_per_call(name, url, calls, tasks))
        else:
            per_call = _timed(sync_contender(name, url), calls)
        result: dict[str, Any] = {"per_call": per_call}
    elif kind == "download":
        result = download(*argv[1:5])
    elif kind == "profile":
        result = profile(argv[1], int(argv[2]))
    elif kind == "bulk":
        fsync = argv[6] == "fsync"
        use_async = len(argv) > 7 and argv[7] == "async"
        result = bulk(argv[1], argv[2], int(argv[3]), int(argv[4]), argv[5], fsync, use_async)
    elif kind == "bulk-floor":
        result = bulk_floor(argv[1], int(argv[2]), int(argv[3]))
    elif kind == "bulk-work-floor":
        result = bulk_work_floor(argv[1], int(argv[2]), int(argv[3]), argv[4])
    elif kind == "bulk-gcs":
        result = bulk_gcs(argv[1], int(argv[2]), int(argv[3]), argv[4])
    elif kind == "serve":
        serve_bulk(int(argv[1]), argv[2], float(argv[3]))
        return
    else:
        raise SystemExit(f"unknown measurement {kind}")
    result["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
