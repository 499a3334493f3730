"""A real BigQuery API on loopback: bqemulator as a process, and a fault-injecting relay.

The emulator runs as its own process (``python -m bqemulator start``) on free
loopback ports, with DuckDB's spatial and avro extensions installed offline from
the ``duckdb-extension-*`` wheels into a private HOME (it refuses to start
without spatial, and would otherwise download both). The embedded sample is
loaded into ``measurement-lab.ndt.unified_downloads`` / ``unified_uploads``
with the unmodified google-cloud-bigquery client.

``FaultProxy`` is a small HTTP relay in front of the emulator: it records every
request (so tests can see what the client really sent), answers chosen requests
with BigQuery-shaped 5xx/429 errors or holds them (timeouts), and can stamp a
byte count on dry-run answers, standing in for the cost model the emulator lacks.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from extract.datasets import SOURCE_TABLES
from extract.extraction.engines.bigquery import EMULATOR_PROJECT
from extract.extraction.sample.generate import RAW_SCHEMA, generate_month, write_sample
from tests.servers import free_port, stop, wait_ready

MONTH = date(2024, 10, 1)
NEXT_MONTH = date(2024, 11, 1)
SAMPLE_ROWS = 1_000  # per month; every country still gets its floor of rows
STARTUP_TIMEOUT = 90.0
MIRROR_TABLE = f"{EMULATOR_PROJECT}.mirror.downloads"  # a second, smaller sample

_BQ_TYPES = {
    pa.string(): "STRING",
    pa.int64(): "INT64",
    pa.float64(): "FLOAT64",
    pa.date32(): "DATE",
}


def write_config(
    path: Path,
    granularities: str = "[country, country_asn, subdivision1, subdivision1_asn, city, city_asn]",
) -> Path:
    """A pipeline.yaml for the sample month."""
    path.write_text(
        f'version: 0\nmatrix:\n  dates:\n    - {{start: "{MONTH}", '
        f'end: "{NEXT_MONTH}"}}\n  granularities: {granularities}\n'
    )
    return path


def iqb(*args: str, emulator: str | None = None) -> tuple[int, str]:
    """Run the CLI in-process; exit code and everything it printed.

    ``emulator``: the BigQuery API the bigquery engine talks to, set the way a
    user never needs to, through the environment (not an option of the CLI).
    """
    from typer.testing import CliRunner

    from extract.cli import app
    from extract.cli.extract_run import ENV_EMULATOR

    result = CliRunner().invoke(app, list(args), env={ENV_EMULATOR: emulator})
    return result.exit_code, result.output


def extract_on_bigquery(
    config: Path, artifacts: Path, *extra: str, emulator: str | None = None
) -> tuple[int, str]:
    """``iqb extract run -c CONFIG --engine bigquery --artifacts ARTIFACTS EXTRA...``."""
    return iqb(
        "extract",
        "run",
        "-c",
        str(config),
        "--engine",
        "bigquery",
        "--artifacts",
        str(artifacts),
        *extra,
        emulator=emulator,
    )


def bq_field(f: pa.Field) -> bigquery.SchemaField:
    """Arrow field -> BigQuery field (structs become RECORDs), for loading the sample."""
    if pa.types.is_struct(f.type):
        return bigquery.SchemaField(f.name, "RECORD", fields=[bq_field(c) for c in f.type.fields])
    return bigquery.SchemaField(f.name, _BQ_TYPES[f.type])


def emulator_client(url: str) -> bigquery.Client:
    return bigquery.Client(
        project=EMULATOR_PROJECT,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=url),
    )


@dataclass
class Emulator:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    raw_root: Path  # an artifacts root holding the same sample as raw Parquet

    def client(self) -> bigquery.Client:
        return emulator_client(self.url)


def _install_extensions(home: Path) -> None:
    """Install spatial (required) and avro (tried at start) from their wheels into ``home``.

    bqemulator runs ``INSTALL`` for both; with the files already in place DuckDB
    downloads nothing, so the emulator never reaches beyond loopback.
    """
    import duckdb_extension_avro  # the wheels' import names: they only ship the binaries
    import duckdb_extension_spatial

    con = duckdb.connect(
        config={
            "extension_directory": str(home / ".duckdb" / "extensions"),
            "autoinstall_known_extensions": False,
        }
    )
    try:
        for package, name in (
            (duckdb_extension_spatial, "spatial"),
            (duckdb_extension_avro, "avro"),
        ):
            path = (
                Path(package.__file__).parent
                / "extensions"
                / f"v{duckdb.__version__}"
                / f"{name}.duckdb_extension"
            )
            con.execute(f"INSTALL '{path}'")
    finally:
        con.close()


def _load(client: bigquery.Client, table: str, data: pa.Table, scratch: Path) -> None:
    path = scratch / f"{table}.parquet"
    pq.write_table(data, path)
    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET, schema=[bq_field(f) for f in data.schema]
    )
    with open(path, "rb") as fh:
        client.load_table_from_file(fh, table, job_config=config, timeout=60).result(timeout=120)


@contextlib.contextmanager
def running_emulator(home: Path, raw_root: Path) -> Iterator[Emulator]:
    """Start bqemulator, wait until ready, load the sample; always stop it afterwards."""
    _install_extensions(home)
    rest, grpc = free_port(), free_port()
    log = home / "emulator.log"
    env = {**os.environ, "HOME": str(home), "TMPDIR": str(home)}
    env.pop("BIGQUERY_EMULATOR_HOST", None)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bqemulator",
                "start",
                "--ephemeral",
                "--rest-host",
                "127.0.0.1",
                "--rest-port",
                str(rest),
                "--grpc-host",
                "127.0.0.1",
                "--grpc-port",
                str(grpc),
                "--project",
                EMULATOR_PROJECT,
                "--log-level",
                "warning",
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
    emulator = Emulator(f"http://127.0.0.1:{rest}", proc, log, raw_root)
    try:
        wait_ready(f"{emulator.url}/readyz", proc, "bqemulator", STARTUP_TIMEOUT, log)
        _load_sample(emulator, home)
        yield emulator
    finally:
        stop(proc, timeout=15)


def _load_sample(emulator: Emulator, scratch: Path) -> None:
    """The embedded sample into the M-Lab tables, and a smaller one into MIRROR_TABLE."""
    written = {
        path.parent.name: path
        for path, _ in write_sample(emulator.raw_root, [MONTH], rows=SAMPLE_ROWS, seed=0)
    }
    client = emulator.client()
    for fq in SOURCE_TABLES.values():
        project, dataset, table = fq.split(".")
        client.create_dataset(f"{project}.{dataset}", exists_ok=True, timeout=30)
        _load(client, fq, pq.read_table(written[table]), scratch)
    client.create_dataset(MIRROR_TABLE.rsplit(".", 1)[0], exists_ok=True, timeout=30)
    _load(
        client,
        MIRROR_TABLE,
        generate_month("downloads", MONTH, rows=SAMPLE_ROWS, seed=7).cast(RAW_SCHEMA),
        scratch,
    )


# -- the fault proxy --------------------------------------------------------------------

_REASONS = {
    400: "invalidQuery",
    403: "accessDenied",
    429: "rateLimitExceeded",
    500: "internalError",
    502: "badGateway",
    503: "backendError",
}
_HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "proxy-connection",
    "upgrade",
}


@dataclass
class Fault:
    """Answer matching requests with ``status``; or (status None) forward them, after
    ``delay`` seconds, and with ``running`` report the job as still running."""

    method: str
    path: str  # regex searched in the request path (with its query string)
    status: int | None = 503
    times: int | None = 1  # None: every matching request
    body: str | None = None  # regex searched in the request body
    delay: float = 0.0
    running: bool = False
    served: int = 0

    def matches(self, method: str, path: str, body: str) -> bool:
        return (
            self.method == method
            and re.search(self.path, path) is not None
            and (self.body is None or re.search(self.body, body) is not None)
            and (self.times is None or self.served < self.times)
        )


@dataclass
class Seen:
    method: str
    path: str
    body: dict[str, Any] | None
    status: int


class FaultProxy:
    """Loopback HTTP relay to the emulator; see the module docstring."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.dry_run_bytes: int | None = None
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                proxy.handle(self, raw)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # held requests must not delay teardown
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def jobs_inserted(self) -> list[dict[str, Any]]:
        """Bodies of every jobs.insert the client sent (retries included)."""
        return [
            s.body
            for s in self.seen
            if s.method == "POST" and re.search(r"/jobs(\?|$)", s.path) and s.body
        ]

    def handle(self, req: BaseHTTPRequestHandler, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        try:
            doc = json.loads(text) if text else None
        except json.JSONDecodeError:
            doc = None
        with self._lock:
            fault = next((f for f in self.faults if f.matches(req.command, req.path, text)), None)
            if fault is not None:
                fault.served += 1
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            reason = _REASONS.get(fault.status, "backendError")
            payload = json.dumps(
                {
                    "error": {
                        "code": fault.status,
                        "message": f"injected {fault.status} ({reason})",
                        "errors": [{"reason": reason, "message": "injected by FaultProxy"}],
                    }
                }
            ).encode()
            self._record(req, doc, fault.status)
            self._reply(req, fault.status, {"Content-Type": "application/json"}, payload)
            return
        conn = http.client.HTTPConnection(self.upstream, timeout=120)
        try:
            headers = {k: v for k, v in req.headers.items() if k.lower() not in _HOP_HEADERS}
            conn.request(req.command, req.path, body=raw or None, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            out_headers = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP_HEADERS}
            status = resp.status
        finally:
            conn.close()
        if fault is not None and fault.running and status == 200:
            body = self._still_running(body)
        is_dry_run = isinstance(doc, dict) and doc.get("configuration", {}).get("dryRun")
        if self.dry_run_bytes is not None and is_dry_run and status == 200:
            answer = json.loads(body)
            stats = answer.setdefault("statistics", {})
            stats["totalBytesProcessed"] = str(self.dry_run_bytes)
            stats.setdefault("query", {})["totalBytesProcessed"] = str(self.dry_run_bytes)
            body = json.dumps(answer).encode()
        self._record(req, doc, status)
        self._reply(req, status, out_headers, body)

    @staticmethod
    def _still_running(body: bytes) -> bytes:
        """A jobs.get / getQueryResults answer as BigQuery gives it for a job not done yet."""
        answer = json.loads(body)
        if "status" in answer:
            answer["status"] = {"state": "RUNNING"}
        if "jobComplete" in answer:
            answer["jobComplete"] = False
            for key in ("rows", "totalRows", "schema", "pageToken"):
                answer.pop(key, None)
        return json.dumps(answer).encode()

    def _record(self, req: BaseHTTPRequestHandler, doc: Any, status: int) -> None:
        with self._lock:
            self.seen.append(
                Seen(req.command, req.path, doc if isinstance(doc, dict) else None, status)
            )

    @staticmethod
    def _reply(
        req: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes
    ) -> None:
        req.send_response(status)
        for k, v in headers.items():
            req.send_header(k, v)
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)
