#!/usr/bin/env bash
# Create gs://$GCP_BUCKET (in $GCP_PROJECT) for the artifacts' backups, with uniform
# bucket-level access and soft delete (>= 14 days). An existing bucket is left as it
# is: its settings are printed, with a warning when soft delete is under 14 days.
# A thin wrapper over `iqb sync create-bucket`; every option passes through, e.g.
#   ./create_gcp_bucket.sh --location EU --soft-delete-days 30 --public-read
# GCP_PROJECT and GCP_BUCKET come from the environment or ./.env (read by the
# command itself, so an exported value wins over the file).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -x "$here/.venv/bin/iqb" ]]; then
  exec "$here/.venv/bin/iqb" sync create-bucket "$@"
fi
exec iqb sync create-bucket "$@"
