#!/usr/bin/env bash
# Installs what the build and the test suite drive from outside Python: npm for the browser
# assets (frontend/, tools/), headless Chromium for the browser tests, tmux for the
# learner-session test, Java for the Jenkinsfile linter, sshd for the ssh:// engine test
# (started by the test itself on 127.0.0.1 only). Debian packages, as root.
# With arguments, only those commands (e.g. `ensure-test-tools.sh npm` for a dev install).
set -euo pipefail
declare -A package=([chromium]=chromium [tmux]=tmux [npm]=npm [java]=default-jre-headless [sshd]=openssh-server)
wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(chromium tmux npm java sshd)
missing=()
for tool in "${wanted[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("${package[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: please install ${missing[*]} (the build and the tests need them)" >&2
  exit 1
fi
echo "installing ${missing[*]} ..."
export DEBIAN_FRONTEND=noninteractive
timeout 900 apt-get update -qq
# Installing openssh-server must not start a machine-wide sshd on port 22: deny service
# starts while apt runs, unless the machine already has a policy of its own.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
timeout 1800 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
