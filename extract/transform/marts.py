"""The marts' Parquet files: planned per period, written aside, audited, then published.

dbt calls this module through the plugin ``extract/transform/dbt_plugin.py`` (DuckDB
functions); see docs/dbt.md, "Write-audit-publish". The life of one build:

1. **plan** (per mart): the periods of the cache (readable entries only, from
   ``extract/cache/catalog.py``), each with a fingerprint over the SHA-256 of its
   entries, the mart's SQL and ``min_sample_count``. A period is (re)processed
   when its published file carries another fingerprint, or none.
2. **stage**: dbt writes each such period to
   ``marts/.staging/<invocation>/<mart>/period=<start>_<end>/data_0.parquet``.
   Hidden folders are ignored by Parquet readers and by ``sync push``.
3. **audit**: dbt's tests read the staged files together with the published
   ones that stay.
4. **publish** (dbt's ``on-run-end``, only when every node passed): a ``COMMIT``
   file makes the decision durable, then each staged file is renamed over its
   final name (``os.replace``, atomic) and the periods that left the cache are
   removed; dbt then re-points the database's views in one transaction.
   A build killed after ``COMMIT`` is finished by the next dbt invocation
   (``recover``); one killed before it is discarded. So a reader sees the last
   good build, never a file that failed its tests or a half-written one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from extract.cache.catalog import SYNTHETIC, CatalogEntry, Integrity, scan
from extract.cache.store import atomic_path
from extract.paths import ArtifactPaths

DATA_FILE = "data_0.parquet"
PLAN_FILE = "plan.json"
COMMIT_FILE = "COMMIT"
FINGERPRINT_KEY = "iqb.source_fingerprint"
THRESHOLD_KEY = "iqb.min_sample_count"


class PublishError(RuntimeError):
    """A build that must not be published; the message says why and what to run."""


def period_label(start: date | str, end: date | str) -> str:
    return f"{start}_{end}"


def marts_root(artifacts: Path) -> Path:
    return ArtifactPaths(artifacts).marts


def final_path(artifacts: Path, mart: str, label: str) -> Path:
    return marts_root(artifacts) / mart / f"period={label}" / DATA_FILE


def staging_root(artifacts: Path, invocation: str) -> Path:
    return ArtifactPaths(artifacts).marts_staging / invocation


def published_files(artifacts: Path, mart: str) -> list[Path]:
    """The mart's published period files, oldest period first."""
    return sorted((marts_root(artifacts) / mart).glob(f"period=*/{DATA_FILE}"))


def _periods(files: list[Path]) -> list[list[str]]:
    """[start, end] of each ``period=<start>_<end>/`` file, as ISO dates."""
    return [f.parent.name.removeprefix("period=").split("_", 1) for f in files]


def staged_periods(artifacts: Path, mart: str, invocation: str) -> dict[str, list[list[str]]]:
    """The periods of ``mart`` that ``invocation`` wrote aside (``now``) and the
    published ones it left alone (``before``).

    The mart's data tests test ``now`` only: the others passed when they were
    published. Listing two folders answers this without reading a row.
    """
    now = _periods(
        sorted((staging_root(artifacts, invocation) / mart).glob(f"period=*/{DATA_FILE}"))
    )
    before = [p for p in _periods(published_files(artifacts, mart)) if p not in now]
    return {"now": now, "before": before}


def footer_value(path: Path, key: str) -> str | None:
    """A key of a published file's Parquet footer (what it was built from), or None."""
    try:
        metadata = pq.read_metadata(path).metadata or {}
    except Exception:  # a damaged file: re-process the period
        return None
    value = metadata.get(key.encode())
    return value.decode() if value else None


def published_fingerprint(path: Path) -> str | None:
    return footer_value(path, FINGERPRINT_KEY)


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    fingerprint: str
    source_kind: str

    @property
    def label(self) -> str:
        return period_label(self.start, self.end)

    @property
    def is_synthetic(self) -> bool:
        return SYNTHETIC in self.source_kind.split(",")


def cache_periods(
    entries: list[CatalogEntry], datasets: list[str], code_hash: str, min_sample_count: int
) -> list[Period]:
    """The periods in which any of ``datasets`` has a readable entry, with fingerprints."""
    by_period: dict[tuple[date, date], list[CatalogEntry]] = defaultdict(list)
    for c in entries:
        if c.readable and c.entry.dataset.name in datasets:
            by_period[(c.entry.start, c.entry.end)].append(c)
    periods = []
    for (start, end), group in sorted(by_period.items()):
        digest = hashlib.sha256(f"{code_hash}\n{min_sample_count}\n".encode())
        for c in sorted(group, key=lambda c: c.entry.dataset.name):
            digest.update(f"{c.entry.dataset.name}:{c.sha256}\n".encode())
        kinds = ",".join(sorted({c.source_kind for c in group}))
        periods.append(Period(start, end, digest.hexdigest(), kinds))
    return periods


def plan_mart(
    artifacts: Path,
    invocation: str,
    mart: str,
    datasets: list[str],
    code_hash: str,
    min_sample_count: int,
    full_refresh: bool,
    entries: list[CatalogEntry] | None = None,
) -> dict[str, Any]:
    """What dbt must write for ``mart`` in this build; also saved beside the staged files."""
    periods = cache_periods(
        entries if entries is not None else scan(artifacts), datasets, code_hash, min_sample_count
    )
    wanted = {p.label for p in periods}
    published = {
        path.parent.name.removeprefix("period="): path for path in published_files(artifacts, mart)
    }
    stage_dir = staging_root(artifacts, invocation) / mart
    process, keep = [], []
    for p in periods:
        path = published.get(p.label)
        if not full_refresh and path is not None and published_fingerprint(path) == p.fingerprint:
            keep.append(str(path))
            continue
        staged = stage_dir / f"period={p.label}" / DATA_FILE
        staged.parent.mkdir(parents=True, exist_ok=True)
        process.append(
            {
                "start": p.start.isoformat(),
                "end": p.end.isoformat(),
                "label": p.label,
                "fingerprint": p.fingerprint,
                "source_kind": p.source_kind,
                "is_synthetic": p.is_synthetic,
                "staged": str(staged),
            }
        )
    plan = {
        "mart": mart,
        "process": process,
        "keep": keep,
        "drop": sorted(label for label in published if label not in wanted),
    }
    stage_dir.mkdir(parents=True, exist_ok=True)
    (stage_dir / PLAN_FILE).write_text(json.dumps(plan, indent=1))
    return plan


def commit(artifacts: Path, invocation: str, min_sample_count: int) -> dict[str, list[str]]:
    """Decide to publish this invocation's staged files, then move them into place.

    Refused when a mart this build did not touch was published with another
    ``min_sample_count``: one database, one threshold.
    """
    root = staging_root(artifacts, invocation)
    if not root.is_dir():
        return {}
    staged = {p.parent.name for p in root.glob(f"*/{PLAN_FILE}")}
    others = sorted(
        {
            (p.parent.parent.name, footer_value(p, THRESHOLD_KEY))
            for p in marts_root(artifacts).glob(f"*/period=*/{DATA_FILE}")
            if p.parent.parent.name not in staged
        }
    )
    mixed = [f"{mart} ({value})" for mart, value in others if value != str(min_sample_count)]
    if mixed:
        raise PublishError(
            f"not published: this build used min_sample_count {min_sample_count}, but "
            f"{', '.join(mixed)} was published with another; build every mart with the same "
            f"value (`dbt build --vars '{{min_sample_count: {min_sample_count}}}'`, no --select)"
        )
    with atomic_path(root / COMMIT_FILE) as tmp:  # fsynced, then renamed: durable
        tmp.write_text(invocation + "\n")
    return apply(artifacts, root)


def apply(artifacts: Path, root: Path) -> dict[str, list[str]]:
    """Move a committed staging folder's files into place; safe to repeat after a kill."""
    changed: dict[str, list[str]] = {}
    for plan_path in sorted(root.glob(f"*/{PLAN_FILE}")):
        plan = json.loads(plan_path.read_text())
        mart = plan["mart"]
        for item in plan["process"]:
            staged, final = Path(item["staged"]), final_path(artifacts, mart, item["label"])
            if staged.exists():  # else moved by an earlier, interrupted apply
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, final)
        for label in plan["drop"]:
            shutil.rmtree(final_path(artifacts, mart, label).parent, ignore_errors=True)
        changed[mart] = [str(p) for p in published_files(artifacts, mart)]
    return changed


def discard(artifacts: Path, invocation: str) -> None:
    """Forget this invocation's staged files (a build that did not pass, or is published)."""
    shutil.rmtree(staging_root(artifacts, invocation), ignore_errors=True)
    with contextlib.suppress(OSError):
        staging_root(artifacts, invocation).parent.rmdir()


def recover(artifacts: Path) -> list[str]:
    """Finish the files of committed builds that were killed; drop uncommitted ones.

    Returns the committed invocations: their staging folders stay until the
    database's views point at the new files (``discard`` after that), so a
    kill at any moment is finished by the next invocation.
    """
    committed = []
    top = ArtifactPaths(artifacts).marts_staging
    for root in sorted(top.glob("*")) if top.is_dir() else []:
        if (root / COMMIT_FILE).exists():
            apply(artifacts, root)
            committed.append(root.name)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return committed


def corrupt_entries(entries: list[CatalogEntry]) -> list[CatalogEntry]:
    return [c for c in entries if c.integrity == Integrity.CORRUPT]
