"""The artifacts root and every path under it: the one place that names them.

::

    <root>/                          $IQB_ARTIFACTS, else ./artifacts (see below)
      cache/v1/<start>/<end>/<dataset>/{data.parquet,stats.json}
                                     the cache; entries: extract/cache/layout.py (upstream's layout)
      raw/<table>/<YYYY-MM>.parquet  the embedded engine's input (``iqb sample``)
      iqb.duckdb                     the published database: what researchers open (only ``main``)
      marts/<mart>/period=<start>_<end>/data_0.parquet
                                     the published marts (hard links to the build's own files)
      marts/.builds/<build>/<mart>/period=<start>_<end>/data_0.parquet
                                     each build's files, never changed once written; the
                                     published database's views read these (hidden: no
                                     Parquet reader of marts/ and no push sees them)
      read_only/iqb_<UTC>.duckdb     the database snapshots a push publishes
      report/                        ``iqb report --html``
      state/                         local working state, never published:
        locks/dbt-build.lock         one dbt build at a time (the plugin holds it)
        locks/  hash-index.json  verified/  logs/  snapshot.json
        dbt/iqb.duckdb               dbt's working database (profiles/profiles.yml, see below):
                                     staging views, audited marts, seeds; readers never open it
        dbt/published.json           the published build's mart files (what the next build keeps)
        publish/<build>/             a publish in progress: COMMIT (its record), plans/<mart>.json,
                                     the new database
        pulled.json                  per manifest, the SHA-256 of each file its pulls downloaded
        manifest.json                the last manifest pushed (its key in the bucket too)
        manifests/<id>.json          (in the bucket only) every published manifest kept

The relative names (``CACHE_VERSION_DIR``, ``MANIFEST``, ...) are also keys in
the bucket; :class:`ArtifactPaths` turns them into paths under one root.

Which root: the CLI takes ``--artifacts``, else ``$IQB_ARTIFACTS`` (relative to
the working directory), else ``./artifacts`` (:func:`default_artifacts`). dbt
reads the same variable: ``profiles/profiles.yml`` names its working database
``$IQB_ARTIFACTS/state/dbt/iqb.duckdb``, and when the variable is unset
``<checkout>/artifacts/state/dbt/iqb.duckdb`` (:func:`checkout_artifacts`: the profile
anchors it on its own folder, which sits at the checkout's root, so dbt run
from the root or from ``dbt_project/`` opens the same file). The dbt plugin
refuses a database named otherwise, and tests/dbt/test_paths.py checks that
dbt and this module agree. ``extract.results.api`` (notebooks) looks further: see
:func:`find_artifacts`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ENV_ARTIFACTS = "IQB_ARTIFACTS"
DEFAULT_ROOT = "artifacts"  # relative to the working directory, or to the checkout (dbt)

# Relative names under the root; the published ones are also the bucket's keys.
CACHE_DIR = "cache"
CACHE_VERSION_DIR = "cache/v1"
RAW = "raw"
DATABASE = "iqb.duckdb"
MARTS = "marts"
MART_BUILDS = "marts/.builds"
MART_PERIOD_DIR = "period={start}_{end}"  # one period's folder in a mart's folder (Hive style)
MART_PERIOD_GLOB = MART_PERIOD_DIR.split("{", 1)[0] + "*"  # every period folder of a mart
MART_DATA_FILE = "data_0.parquet"
# An earlier layout's folder of files being written: removed when a build finds it.
OLD_MART_STAGING = "marts/.staging"
READ_ONLY = "read_only"
REPORT = "report"
STATE = "state"
LOCKS = "state/locks"
HASH_INDEX = "state/hash-index.json"
VERIFIED = "state/verified"
LOGS = "state/logs"
# dbt's own database: named like the published one, so that both files' catalog is
# "iqb" and the SQL dbt compiles ("iqb"."main".x) means the same relation in each.
WORKING_DATABASE = "state/dbt/" + DATABASE
PUBLISHED_RECORD = "state/dbt/published.json"
PUBLISHING = "state/publish"
# In a publish's folder, state/publish/<build>/: the record that decides the publish
# (written last, fsynced: a folder without it is an unfinished build, deleted), and
# the plan of each mart (<mart>.json).
COMMIT_FILE = "COMMIT"
PUBLISH_PLANS = "plans"
BUILD_LOCK = "state/locks/dbt-build.lock"
MANIFEST = "state/manifest.json"
MANIFESTS_HISTORY = "state/manifests/"  # a prefix: <id>.json follows
SNAPSHOT_STATE = "state/snapshot.json"
PULLED = "state/pulled.json"
SNAPSHOT_STAMP = "%Y%m%dT%H%M%SZ"

# The trees that hold data files written through a temp file (leftovers are swept)
# and the trees a push publishes; the rest (raw/, state/, the live database) stays local.
WRITTEN_TREES = (CACHE_DIR, MARTS, READ_ONLY)
PUBLISHED_TREES = (CACHE_VERSION_DIR, READ_ONLY, MARTS, REPORT)

CHECKOUT = Path(__file__).resolve().parents[1]  # when running from a checkout of the repo


_DB_STEM, _DB_SUFFIX = os.path.splitext(DATABASE)
# read_only/iqb_<UTC>.duckdb: the snapshots of the database a push writes and publishes
SNAPSHOT_KEY_RE = re.compile(
    rf"^{re.escape(READ_ONLY)}/{re.escape(_DB_STEM)}_\d{{8}}T\d{{6}}Z{re.escape(_DB_SUFFIX)}$"
)
SNAPSHOT_GLOB = f"{_DB_STEM}_*{_DB_SUFFIX}"  # the snapshots' names in read_only/


def snapshot_key(when: datetime) -> str:
    """The key of a snapshot of the database taken ``when`` (UTC): see SNAPSHOT_KEY_RE."""
    return f"{READ_ONLY}/{_DB_STEM}_{when:{SNAPSHOT_STAMP}}{_DB_SUFFIX}"


@dataclass(frozen=True)
class ArtifactPaths:
    """Every path under one artifacts root (see the module docstring for the tree)."""

    root: Path

    @classmethod
    def of_working_database(cls, database: str | Path) -> ArtifactPaths:
        """The root of dbt's working database path (``<root>/state/dbt/iqb.duckdb``),
        refusing a path named otherwise: everything else is found from that root."""
        path = Path(os.path.abspath(database))
        root = path.parents[len(Path(WORKING_DATABASE).parts) - 1]
        if cls(root).working_database != path:
            raise ValueError(
                f"dbt's database is {path}, but extract/paths.py puts it at "
                f"<artifacts root>/{WORKING_DATABASE}; name it so in profiles/profiles.yml"
            )
        return cls(root)

    @property
    def cache(self) -> Path:
        """``cache/v1``: where the cache entries are."""
        return self.root / CACHE_VERSION_DIR

    @property
    def raw(self) -> Path:
        return self.root / RAW

    @property
    def database(self) -> Path:
        """The published database, the one file researchers, the API and the report open."""
        return self.root / DATABASE

    @property
    def working_database(self) -> Path:
        """dbt's working database (profiles/profiles.yml): only dbt opens it."""
        return self.root / WORKING_DATABASE

    @property
    def published_record(self) -> Path:
        return self.root / PUBLISHED_RECORD

    @property
    def publishing(self) -> Path:
        """Publishes in progress, one folder per build (its COMMIT record)."""
        return self.root / PUBLISHING

    def publish_folder(self, build: str) -> Path:
        """The folder of ``build``'s publish in progress."""
        return self.publishing / build

    def commit_record(self, build: str) -> Path:
        """``build``'s COMMIT record: once it exists the build is published, by the next
        dbt invocation if this one is killed before it finishes."""
        return self.publish_folder(build) / COMMIT_FILE

    def publish_plans(self, build: str) -> Path:
        """The folder of ``build``'s plans, one ``<mart>.json`` each."""
        return self.publish_folder(build) / PUBLISH_PLANS

    @property
    def build_lock(self) -> Path:
        return self.root / BUILD_LOCK

    @property
    def marts(self) -> Path:
        return self.root / MARTS

    @property
    def mart_builds(self) -> Path:
        return self.root / MART_BUILDS

    def mart_file(self, mart: str, start: str, end: str, build: str | None = None) -> Path:
        """A period's file of ``mart``: its public name, or (``build``) that build's own."""
        folder = self.marts if build is None else self.mart_builds / build
        return folder / mart / MART_PERIOD_DIR.format(start=start, end=end) / MART_DATA_FILE

    @property
    def read_only(self) -> Path:
        return self.root / READ_ONLY

    @property
    def report(self) -> Path:
        return self.root / REPORT

    @property
    def state(self) -> Path:
        return self.root / STATE

    @property
    def locks(self) -> Path:
        return self.root / LOCKS

    @property
    def hash_index(self) -> Path:
        return self.root / HASH_INDEX

    @property
    def verified(self) -> Path:
        return self.root / VERIFIED

    @property
    def logs(self) -> Path:
        return self.root / LOGS

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def manifests_history(self) -> Path:
        return self.root / MANIFESTS_HISTORY

    @property
    def snapshot_state(self) -> Path:
        return self.root / SNAPSHOT_STATE

    @property
    def pulled(self) -> Path:
        return self.root / PULLED

    def as_dict(self) -> dict[str, str]:
        """Every path by name (what ``dbt run-operation iqb_paths`` prints)."""
        names = [n for n, v in vars(type(self)).items() if isinstance(v, property)]
        return {"root": str(self.root), **{n: str(getattr(self, n)) for n in names}}


def default_artifacts() -> Path:
    """The CLI's root without ``--artifacts``: ``$IQB_ARTIFACTS`` or ``./artifacts``."""
    return Path(os.environ.get(ENV_ARTIFACTS) or DEFAULT_ROOT).absolute()


def checkout_artifacts(checkout: Path = CHECKOUT) -> Path:
    """``<checkout>/artifacts``: dbt's root when ``$IQB_ARTIFACTS`` is unset (the profile
    says ``<profiles dir>/../artifacts``, and profiles/ sits at the checkout's root)."""
    return checkout / DEFAULT_ROOT


def find_artifacts(artifacts: str | Path | None = None) -> Path:
    """The root ``extract.results.api`` reads: ``artifacts``, else ``$IQB_ARTIFACTS``, else the
    nearest ``artifacts/`` folder above the working directory, else the checkout's
    (:func:`checkout_artifacts`) when this package runs from one, else ``./artifacts``.

    The nearest folder, with or without a database: a workspace whose build failed,
    or that only pulled the cache, must get "no database here", never the numbers of
    the checkout's (often synthetic, ``make demo``) database."""
    if artifacts is not None:
        return Path(artifacts).expanduser().absolute()
    if os.environ.get(ENV_ARTIFACTS):
        return Path(os.environ[ENV_ARTIFACTS]).expanduser().absolute()
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        if (folder / DEFAULT_ROOT).is_dir():
            return folder / DEFAULT_ROOT
    if (CHECKOUT / "pyproject.toml").is_file():
        return checkout_artifacts()
    return cwd / DEFAULT_ROOT
