#!/usr/bin/env bash
# Mirror artifacts/ to gs://$GCP_BUCKET with the SHA256 manifest (published last).
# A thin wrapper over `iqb sync push`; every option passes through, e.g.
#   ./sync_artifacts.sh --dry-run          # the project and bucket it would use, what would move
#   ./sync_artifacts.sh --delete           # also drop what is gone locally
#   ./sync_artifacts.sh --allow-synthetic  # also publish entries made from `iqb sample` data
# GCP_PROJECT and GCP_BUCKET come from the environment, else from ./.env: the
# environment always wins (`GCP_BUCKET=B ./sync_artifacts.sh` publishes to B).
# `iqb sync push` reads .env itself, without overriding what is already set, so
# this script does not source it (sourcing would let .env beat the environment).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -x "$here/.venv/bin/iqb" ]]; then
  exec "$here/.venv/bin/iqb" sync push "$@"
fi
exec iqb sync push "$@"
