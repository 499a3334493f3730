#!/usr/bin/env bash
# Mirror artifacts/ to gs://$GCP_BUCKET with the SHA256 manifest (published last).
# A thin wrapper over `iqb sync push`; every option passes through, e.g.
#   ./sync_artifacts.sh --dry-run        # list what would move
#   ./sync_artifacts.sh --delete         # also drop what is gone locally
# GCP_PROJECT and GCP_BUCKET come from the environment or ./.env.
set -euo pipefail

if [[ -f .env ]]; then
  set -a
  # shellcheck disable=SC1091
  source ./.env
  set +a
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -x "$here/.venv/bin/iqb" ]]; then
  exec "$here/.venv/bin/iqb" sync push "$@"
fi
exec iqb sync push "$@"
