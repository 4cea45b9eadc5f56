#!/usr/bin/env bash
# Install, ingest the bundled sample documents into the embedded index, and run example searches.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
VIGIE=.venv/bin/vigie
$VIGIE ingest samples/
$VIGIE search "Qui assure la direction militaire de la défense ?" --k 3
$VIGIE search "Which classification levels exist for information?" --k 2
