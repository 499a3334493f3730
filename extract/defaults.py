"""Every default a user can change, written once.

The CLI options (``extract/cli/options.py``), the library functions and the docs
read these names; ``tests/unit/test_defaults.py`` checks that every command's
option and every number the docs state equal them. This module imports nothing
so that any layer, the CLI's start-up included, can read it for free.

Defaults that belong to dbt (``iqb_percentile``'s build value, ``min_sample_count``)
are dbt vars; the test checks that the dbt project agrees with the ones here.
"""

from __future__ import annotations

# --jobs, one rule: work that waits on the network runs 8 at once (push and pull,
# whose files spend most of their time in flight); work that keeps this machine busy
# runs 2 at once (extract run's queries, each with its share of --memory-gb, and the
# hashing of cache status and cache verify), so that a laptop stays usable.
NETWORK_JOBS = 8
LOCAL_JOBS = 2
JOBS_RULE = (
    f"The rule: {NETWORK_JOBS} where each job waits on the network (push, pull), "
    f"{LOCAL_JOBS} where it works this machine (extract run, cache verify)."
)

# extract run. Memory the embedded engine plans for per query (--memory-gb, split
# between the jobs); a month is computed in chunks of countries sized to it.
MEMORY_GB = 2.0
# The BigQuery engine: a per-job cap (about 0.30 USD on demand), not an estimate (the
# dry run gives that); the on-demand price the dry run's estimate uses; the wait for one job.
MAXIMUM_BYTES_BILLED = "50GiB"
PRICE_PER_TIB_USD = 6.25
JOB_TIMEOUT_S = 3600.0

# Every request of a push or a pull (and of the bucket commands).
CONNECT_TIMEOUT_S = 10.0  # seconds to open a connection
READ_TIMEOUT_S = 60.0  # seconds to wait for a server response (--timeout)
RETRY_DEADLINE_S = 30.0  # seconds to keep retrying a transient failure (--retry-deadline)

# Retention of kept states, applied by `sync push --delete` (--keep-days, --keep-last).
KEEP_DAYS = 30
KEEP_LAST = 10

# Days a deleted or replaced object of a new bucket stays restorable (`sync create-bucket`):
# the shortest soft delete GCS accepts, since every day is billed.
SOFT_DELETE_DAYS = 14

# The IQB score's percentile when the build sets none (dbt var iqb_percentile):
# upstream's default, and the percentile whose columns every score view carries.
IQB_PERCENTILE = 95
