"""The plan of a push: what it would upload and publish, and what it refuses, before any byte moves.

A plan is made in this order, each step one function below:
1. refusals that need no bucket: a dbt publish stopped half-way, synthetic data
   (``iqb sample``) unless allowed;
2. the database snapshot (``snapshot.py``), taken only after checking that the
   report shows the build being snapshotted (``agreement.py``); a dry run sizes
   the snapshot by writing it to a temporary file, as the push would, so the
   bytes it predicts are the bytes a push moves;
3. the hash of every publishable file (through the hash index);
4. the published manifest and its generation, and the diff against it: uploads
   (new or changed), unchanged, files only in the bucket;
5. the refusal to mix builds: uploading marts, report or snapshot while the
   manifest keeps marts or report files this build lacks.
``push.py`` carries a plan out (upload, publish, retain); ``--dry-run`` prints it.
"""

from __future__ import annotations

import contextlib
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from extract import defaults
from extract.cache.catalog import SYNTHETIC, source_kind
from extract.cache.hashindex import HashIndex, file_sha256
from extract.cache.layout import STATS_FILE, parse_cache_key
from extract.cache.store import read_stats
from extract.paths import COMMIT_FILE, DATABASE, MANIFEST, MARTS, READ_ONLY, REPORT, ArtifactPaths
from extract.sync.agreement import check_report
from extract.sync.manifest import (
    FileRecord,
    Manifest,
    ManifestError,
    parse_manifest,
    publishable_files,
)
from extract.sync.remote import Remote, SyncError, bullets
from extract.sync.snapshot import materialise_published, snapshot_database

# The trees one dbt build (and its `iqb report --html`) writes whole.
BUILD_TREES = (MARTS, REPORT)
# What a new build publishes: those, and its database snapshot. Uploading any of them
# while the manifest keeps files of BUILD_TREES this build lacks would mix two builds.
BUILD_OUTPUTS = (*BUILD_TREES, READ_ONLY)


@dataclass(frozen=True)
class Upload:
    key: str
    path: Path
    sha256: str
    size: int
    replaces: bool  # the manifest had this key with other content


@dataclass
class Plan:
    """What a push would do, decided before any byte moves."""

    previous: Manifest  # the published manifest, as read
    generation: int  # ... and its generation: the publish's precondition
    new: Manifest  # the manifest the push would publish
    uploads: list[Upload] = field(default_factory=list)
    unchanged: int = 0
    remote_only: list[str] = field(default_factory=list)  # kept, or dropped with --delete
    snapshot: str | None = None  # key of a new database snapshot

    @property
    def changes(self) -> bool:
        """Whether publishing would change the bucket's manifest (an unchanged push does not)."""
        return self.generation == 0 or self.new.dumps() != self.previous.dumps()


class SyntheticRefused(SyncError):
    """Synthetic entries would be published; nothing was uploaded (exit 2: a usage error)."""


def read_published(remote: Remote) -> tuple[Manifest, int]:
    data, generation = remote.read_manifest()
    if data is None:
        return Manifest(), 0
    try:
        return parse_manifest(data, f"{remote.label}/{MANIFEST}"), generation
    except ManifestError as exc:
        raise SyncError(
            f"{exc}\nThe published manifest is unusable; fix or remove it "
            "before pushing, or put a kept state back with `iqb sync rollback "
            "<id>` (`iqb sync history` lists them)."
        ) from None


def plan_push(
    artifacts: Path,
    remote: Remote,
    *,
    jobs: int = defaults.NETWORK_JOBS,
    dry_run: bool = False,
    delete: bool = False,
    allow_synthetic: bool = False,
) -> Plan:
    """Decide what a push of ``artifacts`` to ``remote`` uploads and publishes, or refuse."""
    refuse_half_published(artifacts)
    if not allow_synthetic:
        refuse_synthetic(artifacts)
    index = HashIndex(artifacts)
    # the report must show the build being snapshotted: checked on the snapshot's connection
    snapshot = snapshot_database(
        artifacts, index, dry_run, check=lambda con, catalog: check_report(artifacts, con, catalog)
    )
    local = publishable_files(artifacts)
    if delete and not local:
        raise SyncError(
            f"{artifacts} holds no files to publish; refusing --delete, which "
            "would empty the bucket's manifest (wrong --artifacts?)"
        )
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        hashes = dict(zip(local, pool.map(lambda k: index.sha256(k, local[k]), local), strict=True))
    index.save(keep=[DATABASE, *hashes])
    previous, generation = read_published(remote)
    with contextlib.ExitStack() as scratch:
        if dry_run and snapshot:  # not written: size it as the push would write it
            folder = scratch.enter_context(
                tempfile.TemporaryDirectory(prefix=".push-plan-", dir=artifacts)
            )
            local[snapshot] = sized = Path(folder) / "snapshot.duckdb"
            materialise_published(ArtifactPaths(artifacts).database, sized)
            hashes[snapshot] = file_sha256(sized)
        plan = diff(local, hashes, previous, generation, remote)
    plan.snapshot = snapshot
    if not delete:
        refuse_mixed_builds(plan)
        for key in plan.remote_only:
            plan.new.files[key] = previous.files[key]
    return plan


def diff(
    local: dict[str, Path],
    hashes: dict[str, str],
    previous: Manifest,
    generation: int,
    remote: Remote,
) -> Plan:
    """Uploads (new or changed), unchanged files and files only in the bucket."""
    plan = Plan(previous, generation, Manifest())
    for key, path in local.items():
        rec = previous.files.get(key)
        size = path.stat().st_size
        if rec is not None and rec.sha256 == hashes[key]:
            plan.new.files[key] = FileRecord(rec.sha256, rec.url, size)
            plan.unchanged += 1
        else:
            plan.uploads.append(Upload(key, path, hashes[key], size, rec is not None))
            plan.new.files[key] = FileRecord(hashes[key], remote.url_for(key, hashes[key]), size)
    plan.remote_only = sorted(k for k in previous.files if k not in local)
    return plan


def refuse_half_published(artifacts: Path) -> None:
    """extract/transform/marts.py: the database may be switched, the public names not yet."""
    half_published = sorted(ArtifactPaths(artifacts).publishing.glob(f"*/{COMMIT_FILE}"))
    if half_published:
        raise SyncError(
            f"a dbt build was stopped while publishing its marts "
            f"({half_published[0].parent}); run `dbt build` (it finishes the publish) and "
            "push again"
        )


def refuse_mixed_builds(plan: Plan) -> None:
    """A build's marts, report and snapshot are one unit. Uploading some while the
    manifest keeps marts or report files that this build lacks would serve two builds
    side by side (periods of two min_sample_counts, say, and a report of neither)."""
    ours = sorted({u.key.split("/", 1)[0] for u in plan.uploads} & set(BUILD_OUTPUTS))
    theirs = [k for k in plan.remote_only if k.split("/", 1)[0] in BUILD_TREES]
    if ours and theirs:
        raise SyncError(
            f"this push uploads files of {', '.join(f'{t}/' for t in ours)} but the "
            f"published build has {len(theirs)} file(s) that this build does not: "
            "publishing would mix two builds; nothing was uploaded. Build from the "
            "whole cache (`iqb cache pull`, then `dbt build`, then `iqb report "
            "--html`) and push again, or push --delete to publish this build "
            f"alone:\n{bullets(theirs)}"
        )


def refuse_synthetic(artifacts: Path) -> None:
    """Cache entries made from `iqb sample` data, and marts built from such entries, must
    never be served by a shared bucket as M-Lab's measurements."""
    keys = list(publishable_files(artifacts))
    entries, mart_files = synthetic_entries(artifacts, keys), synthetic_marts(artifacts, keys)
    if not (entries or mart_files):
        return
    what = []
    if entries:
        are = "y is" if len(entries) == 1 else "ies are"
        what.append(
            f"{len(entries)} cache entr{are} synthetic (made from `iqb sample` data; "
            "stats.json source.kind is 'synthetic')"
        )
    if mart_files:
        what.append(
            f"{len(mart_files)} mart file(s) hold rows built from synthetic entries (is_synthetic)"
        )
    raise SyntheticRefused(
        f"{'; '.join(what)}; refusing to publish them as real measurements, "
        f"nothing was uploaded:\n{bullets(entries + mart_files)}\nRe-make them from real "
        "data (`iqb extract run --engine bigquery`, then `dbt build`), or pass "
        "--allow-synthetic to publish them labelled as synthetic."
    )


def synthetic_marts(artifacts: Path, keys: list[str]) -> list[str]:
    """Mart files among ``keys`` with a row built from synthetic entries (``is_synthetic``).

    The cache check alone misses marts built from synthetic entries that have
    since left the cache (moved away, or replaced by real ones without a build).
    """
    found = []
    for key in keys:
        if not (key.startswith(f"{MARTS}/") and key.endswith(".parquet")):
            continue
        try:
            file = pq.ParquetFile(artifacts / key)
            if file.schema_arrow.get_field_index("is_synthetic") < 0:
                continue
            flags = file.read(columns=["is_synthetic"]).column(0)
        except (OSError, pa.ArrowException):
            continue  # not a mart the build wrote: nothing says it is synthetic
        if pc.any(flags).as_py():
            found.append(key)
    return found


def synthetic_entries(artifacts: Path, keys: list[str]) -> list[str]:
    """Entry keys among ``keys`` whose stats.json says the data is synthetic."""
    found = []
    for key in keys:
        parsed = parse_cache_key(key)
        if parsed is None or parsed[1] != STATS_FILE:
            continue
        stats = read_stats(parsed[0], artifacts)
        if stats is not None and source_kind(stats) == SYNTHETIC:
            found.append(parsed[0].key)
    return found
