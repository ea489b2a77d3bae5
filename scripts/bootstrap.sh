#!/usr/bin/env bash
# Create the project virtualenv and install the pinned dependencies. Idempotent; called by `make`.
# Needs only Python >= 3.11 with venv. On Debian, python3-venv is installed when running as root.
set -euo pipefail

VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}

if ! command -v "$PYTHON" >/dev/null 2>&1; then
    echo "bootstrap: '$PYTHON' not found; install Python 3.11 or newer (Debian: apt-get install python3)" >&2
    exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "bootstrap: $("$PYTHON" --version) is too old; serflow needs Python >= 3.11 (set PYTHON=...)" >&2
    exit 1
fi

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        rm -rf "$VENV"
        # Debian's python3 ships venv's ensurepip in a separate package.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "bootstrap: installing Debian package python3-venv"
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            "$PYTHON" -m venv "$VENV"
        else
            echo "bootstrap: '$PYTHON -m venv' failed; install python3-venv (as root: apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
fi

echo "bootstrap: installing pinned dependencies into $VENV (torch 2.13.0 CPU build; see README for CUDA)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-nodeps.txt -e . 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" || true
# triton is left out on purpose (see requirements-nodeps.txt); anything else missing is an error.
problems=$("$VENV/bin/python" -m pip check 2>&1 | grep -v -E "^openai-whisper .* requires triton" | grep -v "^No broken" || true)
if [ -n "$problems" ]; then echo "$problems" >&2; exit 1; fi
"$VENV/bin/python" -c "import serflow, torch, snakemake, espeakng_loader, whisper, faster_whisper, kaldi_hmm_gmm" \
    || { echo "bootstrap: the environment in $VENV is incomplete" >&2; exit 1; }
echo "bootstrap: $VENV ready"
