#!/usr/bin/env bash
# Build (or re-check) bench/.cache/langchain-venv: a venv for bench/langchain_baseline.py that adds LangChain
# on top of the project's own packages without touching /work/main/.venv (or whatever $VIGIE_VENV points to).
#
#   bash bench/setup_langchain_baseline.sh
#   bench/.cache/langchain-venv/bin/python bench/langchain_baseline.py
#
# Idempotent: re-running it keeps the venv and only installs what is missing.
#
# How the project's packages are seen: `python -m venv --system-site-packages`, run from the project's venv, would
# expose the *base* interpreter's site-packages (pyenv's), not the project venv's, so instead a .pth file in the new
# venv calls site.addsitedir() on the project venv's site-packages (its own .pth files, e.g. the editable vigie
# install, are processed too). The new venv's site-packages come first on sys.path, so anything pip put there would
# shadow the project's copy: every package the project venv has is therefore passed to pip as a constraint
# (`name==version` from its `pip freeze`), so pip finds them already satisfied and installs only what is new.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROJECT_VENV="${VIGIE_VENV:-$REPO/.venv}"
CACHE="$REPO/bench/.cache"
VENV="$CACHE/langchain-venv"
CONSTRAINTS="$CACHE/langchain-constraints.txt"
PACKAGES=(langchain-community langchain-text-splitters langchain-huggingface langchain-qdrant)

[ -x "$PROJECT_VENV/bin/python" ] || { echo "error: no project venv at $PROJECT_VENV" >&2; exit 1; }
mkdir -p "$CACHE"
git -C "$REPO" check-ignore -q "$VENV" || echo "warning: $VENV is not git-ignored" >&2

PROJECT_SITE="$("$PROJECT_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"

# Constraints: every pinned package of the project venv (editable / file:// entries cannot be constraints).
# torch, unstructured, qdrant-client, sentence-transformers, transformers, numpy, tokenizers and huggingface-hub
# are the ones that matter; pinning all of them also keeps pydantic, requests, etc. at the project's versions.
"$PROJECT_VENV/bin/python" -m pip freeze --disable-pip-version-check | grep -E '^[A-Za-z0-9._-]+==' > "$CONSTRAINTS"
for pkg in torch unstructured qdrant-client sentence-transformers transformers numpy tokenizers huggingface-hub; do
    grep -q -i -E "^${pkg//-/[-_]}==" "$CONSTRAINTS" || { echo "error: $pkg not in $PROJECT_VENV" >&2; exit 1; }
done

if [ ! -x "$VENV/bin/python" ]; then
    "$PROJECT_VENV/bin/python" -m venv "$VENV"
fi
VENV_SITE="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
# venv seeds its own, older setuptools, which would shadow the project's (torch asks for setuptools>=77): drop it.
if compgen -G "$VENV_SITE/setuptools-*.dist-info" > /dev/null; then
    "$VENV/bin/python" -m pip uninstall --disable-pip-version-check -y -q setuptools
fi
printf 'import site; site.addsitedir(%s)\n' "'$PROJECT_SITE'" > "$VENV_SITE/_vigie_project_venv.pth"

# pip sees the project's packages as installed (they are on sys.path) and the constraints keep them as they are
# (a package that would need another version makes the resolution fail rather than shadow the project's copy).
# If no langchain-qdrant release fits the pins, install the rest: the baseline then writes with qdrant-client.
if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -q -c "$CONSTRAINTS" "${PACKAGES[@]}"; then
    echo "warning: cannot install ${PACKAGES[*]} under the project's pins; retrying without langchain-qdrant" >&2
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -c "$CONSTRAINTS" "${PACKAGES[@]:0:3}"
fi

# The heavy packages must resolve to the project venv's copies, at the project's versions.
"$VENV/bin/python" - "$PROJECT_SITE" "$CONSTRAINTS" <<'EOF'
import re
import sys
from importlib import metadata
from pathlib import Path

project_site, constraints = Path(sys.argv[1]).resolve(), Path(sys.argv[2])
pins = {}
for line in constraints.read_text().splitlines():
    name, _, version = line.partition("==")
    pins[re.sub(r"[-_.]+", "-", name).lower()] = version
bad = []
for module, dist in [("torch", "torch"), ("sentence_transformers", "sentence-transformers"),
                     ("unstructured", "unstructured"), ("qdrant_client", "qdrant-client"),
                     ("transformers", "transformers"), ("numpy", "numpy"), ("tokenizers", "tokenizers"),
                     ("huggingface_hub", "huggingface-hub")]:
    mod = __import__(module)
    where = Path(mod.__file__).resolve()
    version = metadata.version(dist)
    ok = where.is_relative_to(project_site) and version == pins[dist]
    print(f"{'ok ' if ok else 'BAD'} {dist}=={version}  ({where.parent})")
    if not ok:
        bad.append(dist)
for dist in ["langchain-core", "langchain-community", "langchain-text-splitters", "langchain-huggingface",
             "langchain-qdrant"]:
    try:
        print(f"    {dist}=={metadata.version(dist)}")
    except metadata.PackageNotFoundError:
        print(f"    {dist}: not installed")
sys.exit(f"error: not the project's copies: {', '.join(bad)}" if bad else 0)
EOF
echo "ready: $VENV/bin/python bench/langchain_baseline.py"
