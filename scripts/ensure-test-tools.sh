#!/usr/bin/env bash
# Installs what the test suite drives from outside Python: headless Chromium for the
# browser tests and tmux for the learner-session test. Debian packages, as root.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: please install ${missing[*]} (the browser and workshop tests need them)" >&2
  exit 1
fi
echo "installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
timeout 900 apt-get update -qq
timeout 1800 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
