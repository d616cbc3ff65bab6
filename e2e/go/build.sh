#!/bin/sh
# Builds the Go yamux interop peer (e2e/go/bin/yamux-peer) from Debian's packaged Go sources:
#   apt-get install golang-go golang-github-hashicorp-yamux-dev golang-golang-x-net-dev
# Debian installs library sources under /usr/share/gocode/src in the old GOPATH layout, so the build
# runs in GOPATH mode (GO111MODULE=off) with that tree as GOPATH: no network, no go.mod, no module proxy.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
gocode=${WSFRP_GOCODE:-/usr/share/gocode}

if ! command -v go >/dev/null 2>&1; then
  echo "build.sh: Go toolchain missing: apt-get install golang-go golang-github-hashicorp-yamux-dev golang-golang-x-net-dev" >&2
  exit 1
fi
for pkg in github.com/hashicorp/yamux golang.org/x/net/websocket; do
  if [ ! -d "$gocode/src/$pkg" ]; then
    echo "build.sh: Go package $pkg not found under $gocode/src: apt-get install golang-github-hashicorp-yamux-dev golang-golang-x-net-dev" >&2
    exit 1
  fi
done

mkdir -p "$here/bin"
# go needs a build cache; CI users without a HOME get one next to the binary (gitignored).
if [ -z "${GOCACHE:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ] && [ -z "${HOME:-}" ]; then
  export GOCACHE="$here/bin/.gocache"
fi
# GOFLAGS is cleared so a developer's -mod=... setting cannot break GOPATH mode. The package is built
# by directory path: GOPATH mode allows a main package outside GOPATH when named that way.
cd "$here/yamux-peer"
# Build to a private name and rename: concurrent test processes may build at once, and a peer being
# spawned must never see a half-written binary.
tmp="$here/bin/yamux-peer.tmp.$$"
trap 'rm -f "$tmp"' EXIT
GOPATH="$gocode" GO111MODULE=off GOFLAGS= go build -o "$tmp" .
mv -f "$tmp" "$here/bin/yamux-peer"
echo "build.sh: built $here/bin/yamux-peer"
