#!/usr/bin/env bash
# Install everything, then run the linter and the whole test suite (real parser, models and Qdrant engine).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest -q "$@"
