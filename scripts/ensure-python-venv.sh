#!/usr/bin/env bash
# Debian splits venv out of python3: install python3-venv (as root) and create the venv again.
set -euo pipefail
python=$1 venv=$2
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: '$python -m venv' failed; install your distribution's venv package (Debian: apt-get install python3-venv)" >&2
  exit 1
fi
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
rm -rf "$venv"
"$python" -m venv "$venv"
