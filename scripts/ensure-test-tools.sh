#!/usr/bin/env bash
# Installs what the build and the test suite drive from outside Python: npm for the browser
# assets (frontend/, tools/), headless Chromium for the browser tests, tmux for the
# learner-session test, Java for the Jenkinsfile linter. Debian packages, as root.
# With arguments, only those commands (e.g. `ensure-test-tools.sh npm` for a dev install).
set -euo pipefail
declare -A package=([chromium]=chromium [tmux]=tmux [npm]=npm [java]=default-jre-headless)
wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(chromium tmux npm java)
missing=()
for tool in "${wanted[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: please install ${missing[*]} (the build and the tests need them)" >&2
  exit 1
fi
echo "installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
timeout 900 apt-get update -qq
timeout 1800 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
