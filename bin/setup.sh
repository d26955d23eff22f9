#!/usr/bin/env bash
# usage: bin/setup.sh [--tests | --node-only]   (npm run setup), or: source bin/setup.sh [...]
#
# Installs whatever is missing, and only that: Node.js 24 (from the npm registry, when the `node` on
# PATH is older), npm packages, Foreman, fuse3, HAProxy, jq and curl (Debian), and LiteFS (built with
# `go install`), Litestream (likewise). Node, LiteFS and Litestream go into a cache outside the
# clone, so every clone reuses them.
# Run it, or source it to also get Node 24 and the cache's bin directory on PATH.
#   --node-only  only Node 24, put on PATH when sourced (bin/node and the bin/ wrappers do that)
#   --tests      also what only the tests use: Chromium (Debian) and Schemathesis (PyPI, into a
#                virtual environment in the cache)
set -euo pipefail
# Sourced, it must return, not exit (that would end the shell that sourced it), and leave the
# caller's parse_args results alone: the usual forms need no parsing.
case "$*" in
  '' | --node-only | --tests) ;;
  *)
    source "$(dirname "${BASH_SOURCE[0]}")/cli.sh"
    parse_args '--node-only --tests' 0 0 "$@" && refuse_in "$command_file" "--node-only or --tests, not both"
    return "$exit_status" 2>/dev/null || exit "$exit_status"
    ;;
esac
cd "$(dirname "${BASH_SOURCE[0]}")/.."

NODE_MAJOR=24
NODE_VERSION=24.22.3 # the Node 24 LTS installed when the machine has none
LITEFS_VERSION=v0.5.14
LITESTREAM_VERSION=v0.5.18
SCHEMATHESIS_VERSION=4.32.5
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/enrollment-gateway
TOOLS_BIN=$CACHE/bin
export PATH="$PATH:$TOOLS_BIN:/usr/local/go/bin"

say() { printf 'setup: %s\n' "$*"; }

node_major() { "${1:-node}" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# A node >= 24 on PATH is used as it is. Otherwise the official binary, which the npm registry ships
# as the package node-linux-<arch>, goes into the cache and comes first on PATH. Its include/node
# holds the headers that sqlite3 compiles against (node-gyp cannot download them here).
use_node() {
  if (($(node_major) >= NODE_MAJOR)); then return; fi
  local arch
  case $(uname -m) in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) say "no Node $NODE_MAJOR package for $(uname -m); install Node $NODE_MAJOR and run this again" >&2; exit 1 ;;
  esac
  local home=$CACHE/node-$NODE_VERSION/node_modules/node-linux-$arch
  if [[ ! -x $home/bin/node ]]; then
    say "node $(node --version 2>/dev/null || echo '(none)') is older than $NODE_MAJOR: installing Node $NODE_VERSION into $CACHE"
    npm install --prefix "$CACHE/node-$NODE_VERSION" --no-save --no-audit --no-fund --loglevel=error "node-linux-$arch@$NODE_VERSION"
  fi
  export PATH="$home/bin:$PATH"
  export npm_config_nodedir=$home
}

install_debian_packages() {
  local missing=()
  command -v foreman >/dev/null || missing+=(ruby-foreman)
  command -v fusermount3 >/dev/null || missing+=(fuse3)
  command -v haproxy >/dev/null || missing+=(haproxy)
  command -v jq >/dev/null || missing+=(jq)
  command -v curl >/dev/null || missing+=(curl)
  [[ ${#missing[@]} -eq 0 ]] && return
  if [[ $(id -u) -ne 0 ]]; then
    say "please install ${missing[*]} (sudo apt-get install ${missing[*]}), then run this again" >&2
    exit 1
  fi
  say "installing ${missing[*]} from Debian"
  apt-get update -qq
  # Debian's haproxy package starts a system service where it can: ours runs under Foreman instead.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  if [[ " ${missing[*]} " == *" haproxy "* ]]; then
    service haproxy stop >/dev/null 2>&1 || true
  fi
}

install_npm_packages() {
  # npm writes node_modules/.package-lock.json last: if it is older than the lock, re-install.
  # sqlite3 is native code: built for another Node (ABI), it fails to load, and is built again.
  if [[ -f node_modules/.package-lock.json && ! package-lock.json -nt node_modules/.package-lock.json ]] &&
    node -e "require('sqlite3')" 2>/dev/null; then
    return
  fi
  say "installing npm packages (sqlite3 compiles from source: a few minutes)"
  npm ci --no-audit --no-fund --loglevel=error
}

# go_install NAME VERSION PACKAGE: builds NAME into the cache with `go install`, unless one is on PATH.
go_install() {
  command -v "$1" >/dev/null && return
  command -v go >/dev/null || { say "Go is needed to build $1; install it and run this again" >&2; exit 1; }
  say "building $1 $2 into $TOOLS_BIN"
  mkdir -p "$TOOLS_BIN"
  GOBIN=$TOOLS_BIN CGO_ENABLED=0 go install -ldflags "-X main.Version=$2" "$3@$2"
}

install_test_tools() {
  if ! command -v chromium >/dev/null; then
    say "installing chromium from Debian (the docs page is checked in a real browser)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  local venv=$CACHE/venv
  if [[ ! -x $venv/bin/schemathesis ]] || [[ $("$venv/bin/schemathesis" --version) != *"$SCHEMATHESIS_VERSION"* ]]; then
    say "installing Schemathesis $SCHEMATHESIS_VERSION into $venv"
    python3 -m venv "$venv" || { apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$venv"; }
    "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  fi
  export SCHEMATHESIS=$venv/bin/schemathesis
}

use_node
if [[ ${1:-} == --node-only ]]; then return 0 2>/dev/null || exit 0; fi
install_debian_packages
install_npm_packages
go_install litefs "$LITEFS_VERSION" github.com/superfly/litefs/cmd/litefs
# Litestream backs up the enrollment database (bin/litestream.sh); its SQLite is pure Go.
go_install litestream "$LITESTREAM_VERSION" github.com/benbjohnson/litestream/cmd/litestream
if [[ ${1:-} == --tests ]]; then install_test_tools; fi
say "ready: node $(node --version) ($(command -v node)), $(foreman version 2>/dev/null | sed 's/^/foreman /'), $(haproxy -v 2>/dev/null | head -n 1 | cut -d' ' -f1-3), litefs $(litefs version 2>/dev/null | head -n 1), litestream $(litestream version 2>/dev/null)"
