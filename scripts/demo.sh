#!/usr/bin/env bash
# Install, ingest the bundled sample documents into the embedded index, create the first admin account, run one
# example search, then open the analysts' browser chat on http://127.0.0.1:8501 (Ctrl-C stops it).
#   VIGIE_ADMIN_PASSWORD=...  sets the admin's password for unattended installs (else one is printed once)
#   VIGIE_DEMO_NO_CHAT=1      stops after the search (no long-running process)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
VIGIE=.venv/bin/vigie
$VIGIE ingest samples/
$VIGIE users init-admin admin
$VIGIE search "Qui assure la direction militaire de la défense ?" --k 3
[ -n "${VIGIE_DEMO_NO_CHAT:-}" ] && exit 0
exec $VIGIE chat
