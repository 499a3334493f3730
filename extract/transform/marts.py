"""The marts' Parquet files: planned per period, written once per build, audited, published.

dbt calls this module through the plugin ``extract/transform/dbt_plugin.py`` (DuckDB
functions); see docs/dbt.md, "Write-audit-publish". The life of one build:

1. **plan** (per mart): the periods of the cache (readable entries only, from
   ``extract/cache/catalog.py``), each with a fingerprint over the SHA-256 of its
   entries, the mart's SQL and ``min_sample_count``. A period is (re)processed
   when the published record gives its file another fingerprint, or none, or
   the file is gone or changed since (``file_stamp``); the others are kept (the
   published build's own file, by path).
2. **write**: dbt writes each such period, once, to this build's folder
   ``marts/.builds/<build>/<mart>/period=<start>_<end>/data_0.parquet`` (small
   periods in batches, one statement each: ``batches``). Hidden folders are
   ignored by Parquet readers and by ``sync push``.
3. **audit**: dbt's tests read the mart in dbt's working database, a view over
   the kept files plus the new ones.
4. **publish** (dbt's ``on-run-end``, only when every node passed): a ``COMMIT``
   record (``state/publish/<build>/COMMIT``) makes the decision durable; then
   ``extract/transform/publish.py`` writes a new published database beside it,
   renames it over ``iqb.duckdb`` (the one switch every reader sees), points the
   public names ``marts/<mart>/period=.../data_0.parquet`` at the new files (hard
   links) and removes the build folders that neither the new nor the previous
   published database reads. A build killed after ``COMMIT`` is finished by the
   next dbt invocation (``recover``); one killed before it is discarded.

A build's files are never changed once written, so a reader holding the old
database (an open shell) keeps reading the old build, whole.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from extract.cache.catalog import SYNTHETIC, CatalogEntry, Integrity, scan
from extract.cache.store import atomic_path
from extract.paths import COMMIT_FILE, ArtifactPaths
from extract.transform import publish
from extract.transform.publish import load_published

THRESHOLD_KEY = "iqb.min_sample_count"
# A batch of periods is one partitioned COPY, which keeps every partition's file
# open until the end: DuckDB starts a second file in a partition past its
# partitioned_write_max_open_files (100), and a period must stay one file.
BATCH_MAX_PERIODS = 64

# mart -> period label -> the file's path relative to the artifacts root
MartFiles = dict[str, dict[str, str]]


class PublishError(RuntimeError):
    """A build that must not be published; the message says why and what to run."""


def period_label(start: date | str, end: date | str) -> str:
    return f"{start}_{end}"


def published_files(artifacts: Path, mart: str) -> list[Path]:
    """The published build's files of ``mart``, oldest period first (absolute)."""
    files = load_published(artifacts).get("marts", {}).get(mart, {})
    return [artifacts / files[label] for label in sorted(files)]


def footer_value(path: Path, key: str) -> str | None:
    """A key of a mart file's Parquet footer (the threshold it was built with), or None."""
    try:
        metadata = pq.read_metadata(path).metadata or {}
    except Exception:  # a damaged or missing file: re-process the period
        return None
    value = metadata.get(key.encode())
    return value.decode() if value else None


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    fingerprint: str
    source_kind: str
    files: tuple[tuple[str, str], ...] = ()  # (dataset, absolute data file) of its entries

    @property
    def label(self) -> str:
        return period_label(self.start, self.end)

    @property
    def is_synthetic(self) -> bool:
        return SYNTHETIC in self.source_kind.split(",")


def cache_periods(
    artifacts: Path,
    entries: list[CatalogEntry],
    datasets: list[str],
    code_hash: str,
    min_sample_count: int,
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
        files = tuple(
            sorted((c.entry.dataset.name, str(c.entry.data_path(artifacts))) for c in group)
        )
        periods.append(Period(start, end, digest.hexdigest(), kinds, files))
    return periods


def plan_mart(
    artifacts: Path,
    build: str,
    mart: str,
    datasets: list[str],
    code_hash: str,
    min_sample_count: int,
    full_refresh: bool,
    batch_bytes: int,
    entries: list[CatalogEntry] | None = None,
) -> dict[str, Any]:
    """What dbt must write for ``mart`` in this build, in batches; saved for the publish.

    Small periods are written together, one statement per batch (DuckDB spends
    ~20 ms planning and starting each statement, more than a small period's
    work): a batch holds consecutive periods whose cache files total at most
    ``batch_bytes``, so memory stays bounded however long the history. A period
    larger than that is a batch of its own."""
    paths = ArtifactPaths(artifacts)
    periods = cache_periods(
        artifacts,
        entries if entries is not None else scan(artifacts),
        datasets,
        code_hash,
        min_sample_count,
    )
    record = load_published(artifacts)
    published = record.get("marts", {}).get(mart, {})
    # what each published file was built from, as the publish recorded it, and
    # its size and mtime then: a lookup and a stat, not a footer read per file
    # and mart on every build; a file damaged or gone since is written again
    built_from = record.get("fingerprints", {}).get(mart, {})
    process, keep = [], {}
    for p in periods:
        rel = published.get(p.label)
        now = file_stamp(artifacts / rel) if rel is not None else None
        if (
            not full_refresh
            and now is not None  # a file gone is written again, whatever the record says
            and built_from.get(p.label) == {"fingerprint": p.fingerprint, "stamp": now}
        ):
            keep[p.label] = rel
            continue
        new = paths.mart_file(mart, p.start.isoformat(), p.end.isoformat(), build=build)
        new.parent.mkdir(parents=True, exist_ok=True)
        process.append(
            {
                "start": p.start.isoformat(),
                "end": p.end.isoformat(),
                "label": p.label,
                "fingerprint": p.fingerprint,
                "source_kind": p.source_kind,
                "is_synthetic": p.is_synthetic,
                # the period's own cache files, per dataset: its COPY reads these
                # alone instead of filtering every period's file names
                "inputs": dict(p.files),
                "staged": str(new),
                "rel": new.relative_to(artifacts).as_posix(),
                "bytes": sum(Path(file).stat().st_size for _, file in p.files),
            }
        )
    wanted = {p.label for p in periods}
    plan = {
        "mart": mart,
        # where a batch's partitioned COPY writes: period=<label>/data_0.parquet under it
        "folder": str(paths.mart_builds / build / mart),
        "process": process,
        "batches": batches(process, batch_bytes),
        "fingerprints": {p.label: p.fingerprint for p in periods},
        "keep": keep,
        "files": [str(artifacts / keep[label]) for label in sorted(keep)]
        + [item["staged"] for item in process],
        "drop": sorted(label for label in published if label not in wanted),
    }
    with atomic_path(ArtifactPaths(artifacts).publish_plans(build) / f"{mart}.json") as tmp:
        tmp.write_text(json.dumps(plan, indent=1))
    return plan


def batches(process: list[dict[str, Any]], batch_bytes: int) -> list[list[int]]:
    """``process``'s indexes in batches: consecutive periods whose ``bytes`` total
    at most ``batch_bytes`` (a larger period alone), at most BATCH_MAX_PERIODS."""
    out: list[list[int]] = []
    total = 0
    for i, item in enumerate(process):
        if out and total + item["bytes"] <= batch_bytes and len(out[-1]) < BATCH_MAX_PERIODS:
            out[-1].append(i)
            total += item["bytes"]
        else:
            out.append([i])
            total = item["bytes"]
    return out


def _plans(artifacts: Path, build: str) -> list[dict[str, Any]]:
    folder = ArtifactPaths(artifacts).publish_plans(build)
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def tested_from(artifacts: Path, build: str) -> str | None:
    """The first period_start that this build wrote in any mart (None when none)."""
    starts = [item["start"] for plan in _plans(artifacts, build) for item in plan["process"]]
    return min(starts) if starts else None


def project_fingerprint(project_dir: Path, settings: str) -> str:
    """A hash of everything in the dbt project that can change a score view's rows
    without re-writing a mart period (SQL, macros, seeds, YAML) and of ``settings``
    (the vars): when it differs from the published build's, the score views' tests
    read every period."""
    digest = hashlib.sha256(settings.encode())
    for folder in ("macros", "models", "seeds", "tests"):
        for path in sorted((project_dir / folder).rglob("*")):
            if path.is_file():
                digest.update(f"\0{path.relative_to(project_dir)}\0".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def file_stamp(path: Path) -> str | None:
    """A published file's size and mtime (None when it is gone): a file is never
    changed once written, so another stamp means it was damaged since."""
    try:
        st = path.stat()
    except OSError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


def _outcome(artifacts: Path, build: str) -> tuple[dict[str, Any], MartFiles, dict[str, Any]]:
    """This build's plans, and the published marts' files and fingerprints were it published."""
    published = load_published(artifacts)
    plans = {plan["mart"]: plan for plan in _plans(artifacts, build)}
    marts: MartFiles = dict(published.get("marts", {}))
    fingerprints = dict(published.get("fingerprints", {}))
    for mart, plan in plans.items():
        marts[mart] = {**plan["keep"], **{item["label"]: item["rel"] for item in plan["process"]}}
        fingerprints[mart] = {
            label: {
                "fingerprint": plan["fingerprints"][label],
                "stamp": file_stamp(artifacts / rel),
            }
            for label, rel in marts[mart].items()
        }
    return plans, marts, fingerprints


def nothing_new(artifacts: Path, build: str, built: list[str], project: str) -> bool:
    """Whether publishing this build would give readers what they already have: the
    same mart files, the same project, no relation the published database lacks.
    Asked before the publish exports the built seeds and schemas (a no-op's nine
    statements), and again by ``commit``."""
    return _unchanged(
        artifacts, load_published(artifacts), _outcome(artifacts, build)[1], project, built
    )


def _unchanged(
    artifacts: Path, published: dict[str, Any], marts: MartFiles, project: str, built: list[str]
) -> bool:
    return (
        ArtifactPaths(artifacts).database.is_file()
        and published.get("root") == str(artifacts)  # not a copy of another folder
        and marts == published.get("marts")
        and project == published.get("project")
        and set(built) <= set(published.get("relations", []))
    )


def commit(artifacts: Path, build: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Decide to publish this build, durably, then publish it (``publish.finish``).

    ``spec`` (from ``macros/publish.sql``): the build's settings, its project
    fingerprint and the relations to publish. Refused when a mart this build did
    not touch was published with another ``min_sample_count`` (one database, one
    threshold). Nothing is published when nothing changed since the published
    build: the reader's database stays the same file.
    """
    paths = ArtifactPaths(artifacts)
    published = load_published(artifacts)
    plans, marts, fingerprints = _outcome(artifacts, build)
    threshold = str(spec["settings"]["min_sample_count"])
    mixed = sorted(
        {
            f"{mart} ({footer_value(artifacts / rel, THRESHOLD_KEY)})"
            for mart, files in marts.items()
            if mart not in plans
            for rel in files.values()
            if footer_value(artifacts / rel, THRESHOLD_KEY) != threshold
        }
    )
    if mixed:
        raise PublishError(
            f"not published: this build used min_sample_count {threshold}, but "
            f"{', '.join(mixed)} was published with another; build every mart with the same "
            f"value (`dbt build --vars '{{min_sample_count: {threshold}}}'`, no --select)"
        )
    built = [r["name"] for r in spec["relations"] if r.get("built")]
    if _unchanged(artifacts, published, marts, spec["project"], built):
        discard(artifacts, build)  # its plans; it wrote no file
        return {"published": False, "build": published.get("build")}
    record = {
        "build": {
            "build_id": build,
            "built_at": datetime.now(UTC).isoformat(),
            "git_commit": publish.git_commit(Path(spec["project_dir"])),
            **spec["settings"],
        },
        "project": spec["project"],
        "marts": marts,
        "fingerprints": fingerprints,
        "previous": published.get("marts", {}),
        "relations": spec["relations"],
    }
    with atomic_path(paths.commit_record(build)) as tmp:  # fsynced, renamed: durable
        tmp.write_text(json.dumps(record, indent=1))
    publish.finish(artifacts, record)
    changed = [m for m, p in plans.items() if p["process"] or p["drop"]]
    written = {m: [i["staged"] for i in p["process"]] for m, p in plans.items() if p["process"]}
    return {"published": True, "build": build, "marts": sorted(changed), "written": written}


def discard(artifacts: Path, build: str) -> None:
    """Forget this build's files and plans (a build that did not pass)."""
    paths = ArtifactPaths(artifacts)
    shutil.rmtree(paths.publish_folder(build), ignore_errors=True)
    shutil.rmtree(paths.mart_builds / build, ignore_errors=True)


def recover(artifacts: Path) -> list[str]:
    """Finish the publish of committed builds that were killed; drop uncommitted ones.

    Returns the builds finished. Then removes every build folder that neither
    the published nor the previous database reads (``publish.collect``).
    """
    paths = ArtifactPaths(artifacts)
    finished = []
    for folder in sorted(paths.publishing.iterdir()) if paths.publishing.is_dir() else []:
        commit_file = folder / COMMIT_FILE
        if commit_file.is_file():
            publish.finish(artifacts, json.loads(commit_file.read_text()))
            finished.append(folder.name)
        else:
            shutil.rmtree(folder, ignore_errors=True)
    publish.collect(artifacts)
    return finished


def corrupt_entries(entries: list[CatalogEntry]) -> list[CatalogEntry]:
    return [c for c in entries if c.integrity == Integrity.CORRUPT]
