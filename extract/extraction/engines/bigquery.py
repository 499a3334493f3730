"""The production engine: the templates on BigQuery, streamed back as Arrow batches.

Every job is capped (``maximum_bytes_billed``), labelled (tool, dataset, period)
and bound to named DATE parameters; transient errors are retried with bounded
exponential backoff and every wait has a timeout. Results stream page by page
(REST) or through one ordered read stream (Storage Read API), so memory stays
at one batch whatever the size of the result. ``estimate`` prices a query with
a dry run, which BigQuery does not bill. Design notes: docs/bigquery.md.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

import google.auth
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import Request
from google.cloud import bigquery
from google.cloud.bigquery import retry as bq_retry

from extract import defaults
from extract.datasets import SOURCE_TABLES
from extract.extraction.engines import EngineError, Query, QueryResult
from extract.extraction.engines.network import network_failure, signin_unreachable
from extract.extraction.engines.sql import swap_tables
from extract.retry import is_transient, is_transient_http

log = logging.getLogger(__name__)

SCOPES = ("https://www.googleapis.com/auth/bigquery",)
EMULATOR_PROJECT = "iqb-emulator"
PAGE_ROWS = 20_000  # rows per REST page: one page is the most the REST path holds
POLL_SECONDS = 5.0  # how often a running job reports progress
LABEL_TOOL = "iqb"

CREDENTIALS_HELP = (
    "BigQuery needs Application Default Credentials: run "
    "`gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS "
    "to a service-account key file"
)

# Status callback: (query, message); message None means the query is finished.
StatusCallback = Callable[[Query, str | None], None]

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*((?:[kmgtp]i?)?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1}
for _i, _p in enumerate("kmgtp", start=1):
    _UNITS[f"{_p}b"] = 1000**_i
    _UNITS[f"{_p}ib"] = 1024**_i
_TABLE_RE = re.compile(r"^[A-Za-z0-9_\-:]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_\-$]+$")


def parse_bytes(text: str) -> int:
    """``"50GiB"``, ``"1.5TB"`` or ``"1000000"`` -> bytes; EngineError names a bad value."""
    m = _SIZE_RE.match(str(text))
    if not m:
        raise EngineError(f"{text!r} is not a size: use e.g. 50GiB, 1TiB, 500GB or a byte count")
    exact = Decimal(m[1]) * _UNITS[(m[2] or "").lower()]
    if exact <= 0 or exact != exact.to_integral_value():  # "1.5B" is never rounded down
        raise EngineError(f"{text!r}: a size must be a positive whole number of bytes")
    return int(exact)


DEFAULT_MAXIMUM_BYTES_BILLED = parse_bytes(defaults.MAXIMUM_BYTES_BILLED)


def format_bytes(n: int) -> str:
    """Binary units, as BigQuery bills them (1 TiB = 2**40 bytes)."""
    power = min(max(n.bit_length() - 1, 0) // 10, 4)  # 0: B, 1: KiB ... 4: TiB
    if power == 0:
        return f"{n} B"
    return f"{n / 1024**power:.2f} {('KiB', 'MiB', 'GiB', 'TiB')[power - 1]}"


def on_demand_cost(n_bytes: int, price_per_tib: float) -> float:
    return n_bytes / 2**40 * price_per_tib


def parse_source_tables(text: str) -> dict[str, str]:
    """``"downloads=p.d.t,uploads=p.d.t"`` -> {default table: override}, every problem named."""
    overrides: dict[str, str] = {}
    problems: list[str] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        direction, sep, table = (s.strip() for s in item.partition("="))
        if not sep or direction not in SOURCE_TABLES:
            problems.append(
                f"{item!r}: expected downloads=PROJECT.DATASET.TABLE or "
                "uploads=PROJECT.DATASET.TABLE"
            )
        elif not _TABLE_RE.match(table.strip("`")):
            problems.append(
                f"{item!r}: {table!r} is not a fully qualified table (PROJECT.DATASET.TABLE)"
            )
        else:
            overrides[SOURCE_TABLES[direction]] = table.strip("`")
    if problems or not overrides:
        raise EngineError("--source-table: " + ("; ".join(problems) or "nothing given"))
    return overrides


def render_sql(template: str, tables: Mapping[str, str]) -> tuple[str, list[str]]:
    """The template as BigQuery SQL with its source tables rewritten, and the tables it reads.

    Tables are swapped on the sqlglot AST, never by string replacement. Comments
    go because bqemulator counts ``@name`` inside them as parameters; the SQL is
    otherwise what the template says (tests check the round trip).
    """
    tree, read = swap_tables(template, lambda name: tables.get(name, name))
    return tree.sql("bigquery", comments=False), read


def _log_retry(err: Exception) -> None:
    log.warning("BigQuery: transient error, retrying: %s: %s", type(err).__name__, _first_line(err))


def _first_line(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return str(message).strip().splitlines()[0] if str(message).strip() else type(exc).__name__


class BigQueryEngine:
    """Runs templates as BigQuery jobs in a billing project; see the module docstring.

    Construction checks credentials and reads the source tables' metadata
    (free), so a missing login, an unreachable API or a missing table is one
    clear error before any entry runs.
    """

    name = "bigquery"

    def __init__(
        self,
        *,
        project: str | None = None,
        source_tables: Mapping[str, str] | None = None,
        maximum_bytes_billed: int = DEFAULT_MAXIMUM_BYTES_BILLED,
        location: str | None = None,
        storage_api: bool = True,
        emulator: str | None = None,
        request_timeout: float = 60.0,
        retry_deadline: float = 300.0,
        job_timeout: float = defaults.JOB_TIMEOUT_S,
        page_rows: int = PAGE_ROWS,
        on_status: StatusCallback | None = None,
    ) -> None:
        self.tables = {**{t: t for t in SOURCE_TABLES.values()}, **(source_tables or {})}
        self.maximum_bytes_billed = maximum_bytes_billed
        self.location = location
        self.request_timeout = request_timeout
        self.job_timeout = job_timeout
        self.page_rows = page_rows
        self.on_status = on_status
        backoff = {"initial": 1.0, "maximum": 32.0, "multiplier": 2.0}
        # Bounded exponential backoff (1s, 2s, 4s ... 32s, jittered) within a deadline.
        self._retry = Retry(
            predicate=is_transient, timeout=retry_deadline, on_error=_log_retry, **backoff
        )
        # A job that itself failed for a transient reason is submitted again; this also
        # wraps each submission and each poll, so it gets the same bound.
        self._job_retry = bq_retry.DEFAULT_JOB_RETRY.with_timeout(retry_deadline).with_delay(
            **backoff
        )
        # Before any entry: an unreachable API fails at once instead of being retried.
        self._preflight_retry = Retry(
            predicate=is_transient_http,
            timeout=min(retry_deadline, 30.0),
            on_error=_log_retry,
            **backoff,
        )
        if emulator:
            self.endpoint = emulator if "://" in emulator else f"http://{emulator}"
        else:
            self.endpoint = "https://bigquery.googleapis.com"
        credentials, project = self._credentials(project, bool(emulator))
        self.project = project
        options = ClientOptions(api_endpoint=self.endpoint) if emulator else None
        self.client = bigquery.Client(
            project=project, credentials=credentials, location=location, client_options=options
        )
        self._read_client = (
            None if emulator or not storage_api else self._storage_client(credentials)
        )
        self._check_tables()

    @staticmethod
    def _credentials(project: str | None, emulator: bool) -> tuple[Credentials, str]:
        """Anonymous for an emulator; else ADC, refreshed now so bad ones fail up front."""
        if emulator:
            return AnonymousCredentials(), project or EMULATOR_PROJECT
        try:
            credentials, adc_project = google.auth.default(scopes=SCOPES)
            credentials.refresh(Request())
        except auth_exceptions.DefaultCredentialsError as err:
            raise EngineError(
                f"no usable Google credentials ({_first_line(err)}). {CREDENTIALS_HELP}"
            ) from None
        except (auth_exceptions.RefreshError, auth_exceptions.TransportError) as err:
            if (network := network_failure(err)) is not None:
                raise EngineError(signin_unreachable(network, _first_line(err))) from None
            raise EngineError(
                f"the Google credentials could not be used "
                f"({type(err).__name__}: {_first_line(err)}). "
                f"{CREDENTIALS_HELP}"
            ) from None
        billing = project or adc_project
        if not billing:
            raise EngineError(
                "no billing project: pass --project or set IQB_BQ_PROJECT "
                "(jobs run and are billed there)"
            )
        return credentials, billing

    @staticmethod
    def _storage_client(credentials: Credentials) -> Any:
        """A Storage Read API client, or None (REST) when the package is not installed."""
        try:
            from google.cloud import bigquery_storage
        except ImportError:
            log.info("google-cloud-bigquery-storage is not installed: reading results over REST")
            return None
        return bigquery_storage.BigQueryReadClient(credentials=credentials)

    def _check_tables(self) -> None:
        for table in sorted(set(self.tables.values())):
            try:
                self.client.get_table(
                    table, retry=self._preflight_retry, timeout=self.request_timeout
                )
            except api_exceptions.NotFound:
                raise EngineError(
                    f"source table {table} was not found (or is not visible "
                    f"to project {self.project}); check --source-table"
                ) from None
            except Exception as err:
                raise self._error(f"cannot read the metadata of {table}", err) from None

    def _error(self, what: str, err: BaseException) -> EngineError:
        """One readable sentence per failure; never includes credentials."""
        network = network_failure(err)
        if network is not None and not isinstance(
            err, concurrent.futures.TimeoutError | requests.exceptions.Timeout
        ):
            return EngineError(
                f"{what}: network failure, cannot reach the BigQuery API at {self.endpoint}: "
                f"{network}; check the network connection (and HTTPS_PROXY, if one is set)"
            )
        if isinstance(err, auth_exceptions.RefreshError | auth_exceptions.TransportError):
            return EngineError(
                f"{what}: the credentials could not be refreshed. {CREDENTIALS_HELP}"
            )
        if isinstance(err, concurrent.futures.TimeoutError | requests.exceptions.Timeout):
            return EngineError(f"{what}: timed out" + (f" ({err})" if str(err) else ""))
        if isinstance(err, api_exceptions.RetryError):
            cause = err.cause or err
            return EngineError(
                f"{what}: still failing after retries: {type(cause).__name__}: {_first_line(cause)}"
            )
        if isinstance(err, api_exceptions.Forbidden | api_exceptions.Unauthorized):
            return EngineError(
                f"{what}: permission denied ({_first_line(err)}); the billing "
                f"project {self.project} needs the BigQuery Job User role"
            )
        reasons = {
            e.get("reason") for e in getattr(err, "errors", None) or [] if isinstance(e, dict)
        }
        if "bytesBilledLimitExceeded" in reasons:
            return EngineError(
                f"{what}: the query would bill more than "
                f"--maximum-bytes-billed={self.maximum_bytes_billed} bytes; "
                "price it with --dry-run, then raise the cap"
            )
        return EngineError(f"{what}: {type(err).__name__}: {_first_line(err)}")

    # -- queries -----------------------------------------------------------------------

    def _job_config(self, query: Query, dry_run: bool = False) -> bigquery.QueryJobConfig:
        return bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter("start_date", "DATE", query.start),
                bigquery.ScalarQueryParameter("end_date", "DATE", query.end),
            ],
            maximum_bytes_billed=self.maximum_bytes_billed,
            labels={
                "tool": LABEL_TOOL,
                "dataset": query.dataset,
                "period": f"{query.start:%Y%m%d}-{query.end:%Y%m%d}",
            },
            dry_run=dry_run,
            use_query_cache=not dry_run,
        )

    def _submit(self, query: Query, sql: str, dry_run: bool = False) -> bigquery.QueryJob:
        return self.client.query(
            sql,
            job_config=self._job_config(query, dry_run),
            job_id_prefix=f"{LABEL_TOOL}_{query.dataset}_{query.start:%Y%m%d}_",
            location=self.location,
            retry=self._retry,
            timeout=self.request_timeout,
            # None here: the client would otherwise wrap the submission in its own fixed
            # 10-minute retry; ours (self._retry) bounds it, job retries happen in _wait.
            job_retry=None,
        )

    def estimate(self, query: Query) -> int:
        """Bytes the query would scan, from a dry run (not billed, nothing executed)."""
        sql, _ = render_sql(query.sql, self.tables)
        try:
            job = self._submit(query, sql, dry_run=True)
        except Exception as err:
            raise self._error("dry run", err) from None
        return int(job.total_bytes_processed or 0)

    def _status(self, query: Query, message: str | None) -> None:
        if self.on_status is not None:
            self.on_status(query, message)

    def _wait(self, query: Query, job: bigquery.QueryJob) -> bigquery.table.RowIterator:
        """Wait for the job within ``job_timeout``, reporting progress every few seconds."""
        t0 = time.monotonic()
        while True:
            remaining = self.job_timeout - (time.monotonic() - t0)
            if remaining <= 0:
                try:
                    job.cancel(retry=None, timeout=self.request_timeout)
                except Exception as err:  # the timeout is the error to report
                    log.warning("could not cancel job %s: %s", job.job_id, _first_line(err))
                raise concurrent.futures.TimeoutError(
                    f"job {job.job_id} not done after {self.job_timeout:g}s (cancel requested)"
                )
            try:
                return job.result(
                    page_size=self.page_rows,
                    retry=self._retry,
                    timeout=min(POLL_SECONDS, remaining),
                    job_retry=self._job_retry,
                )
            except concurrent.futures.TimeoutError:
                self._status(
                    query, f"{job.state or 'PENDING'} {time.monotonic() - t0:.0f}s ({job.job_id})"
                )

    def run(self, query: Query) -> QueryResult:
        """Submit, wait (with progress), then hand back a lazy stream and the job's stats."""
        sql, read = render_sql(query.sql, self.tables)
        try:
            self._status(query, "submitting")
            job = self._submit(query, sql)
            rows = self._wait(query, job)
        except Exception as err:
            self._status(query, None)
            raise self._error("BigQuery job", err) from None
        stats: dict[str, Any] = {
            "total_bytes_processed": job.total_bytes_processed or 0,
            "total_bytes_billed": job.total_bytes_billed or 0,
            "cache_hit": bool(job.cache_hit),
            "job_id": job.job_id,
            "billing_project": job.project,
            "location": job.location,
            "slot_millis": job.slot_millis or 0,
            "maximum_bytes_billed": self.maximum_bytes_billed,
            "source_tables": sorted(set(read)),
            # where the rows came from (stats.json provenance, as the embedded engine writes it)
            "source": {
                "kind": "bigquery",
                "engine": self.name,
                "tables": sorted(set(read)),
                "job_id": job.job_id,
            },
        }
        if job.started:  # BigQuery's own clock; without it the cache writer's stands
            stats["query_start_time"] = job.started.isoformat().replace("+00:00", "Z")
            stats["query_duration_seconds"] = round(
                ((job.ended or job.started) - job.started).total_seconds(), 3
            )
        self._status(query, f"reading {rows.total_rows or 0:,} rows")
        return QueryResult(batches=self._stream(query, rows), stats=stats)

    def _stream(self, query: Query, rows: bigquery.table.RowIterator) -> Iterator[Any]:
        """Arrow batches, one page (REST) or one Storage API message at a time."""
        try:
            yield from rows.to_arrow_iterable(
                bqstorage_client=self._read_client, timeout=self.job_timeout
            )
        except Exception as err:
            raise self._error(f"reading the result of job {rows.job_id}", err) from None
        finally:
            self._status(query, None)
