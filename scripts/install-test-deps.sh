#!/usr/bin/env bash
# Installs the Debian packages that the interop, proxy and browser suites use:
#   - Go and Debian's hashicorp/yamux + x/net: the Go yamux peer in e2e/go (interop tests)
#   - nginx, squid, apache2-utils (htpasswd), openssl: reverse/forward proxy e2e suites and their test CA
#   - chromium, fonts-dejavu-core: the browser suites (e2e/test/browser, playwright-core drives /usr/bin/chromium)
# Needs root (or sudo). Safe to run again: apt-get skips what is installed.
set -euo pipefail
PKGS=(golang-go golang-github-hashicorp-yamux-dev golang-golang-x-net-dev nginx squid apache2-utils openssl chromium fonts-dejavu-core)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-test-deps: all present (${PKGS[*]})"
  exit 0
fi
echo "install-test-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# apt and dpkg chatter (maintainer scripts, triggers) goes to a log that is shown only on failure.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install-test-deps: apt-get failed" >&2
  exit 1
fi
echo "install-test-deps: installed ${missing[*]}"
