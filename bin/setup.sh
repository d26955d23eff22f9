#!/usr/bin/env bash
# Installs whatever is missing, and only that: npm packages, Foreman and fuse3 (Debian), LiteFS
# (built with `go install` into a cache outside the clone, so every clone reuses it).
# Run it, or source it to also get the cache's bin directory on PATH.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

LITEFS_VERSION=v0.5.14
TOOLS_BIN=${XDG_CACHE_HOME:-$HOME/.cache}/enrollment-gateway/bin
export PATH="$PATH:$TOOLS_BIN:/usr/local/go/bin"

say() { printf 'setup: %s\n' "$*"; }

install_debian_packages() {
  local missing=()
  command -v foreman >/dev/null || missing+=(ruby-foreman)
  command -v fusermount3 >/dev/null || missing+=(fuse3)
  [[ ${#missing[@]} -eq 0 ]] && return
  if [[ $(id -u) -ne 0 ]]; then
    say "please install ${missing[*]} (sudo apt-get install ${missing[*]}), then run this again" >&2
    exit 1
  fi
  say "installing ${missing[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_npm_packages() {
  # npm writes node_modules/.package-lock.json last: if it is older than the lock, re-install.
  if [[ -f node_modules/.package-lock.json && ! package-lock.json -nt node_modules/.package-lock.json ]] &&
    node -e "require('sqlite3')" 2>/dev/null; then
    return
  fi
  say "installing npm packages (sqlite3 compiles from source: a few minutes)"
  npm ci --no-audit --no-fund --loglevel=error
}

install_litefs() {
  command -v litefs >/dev/null && return
  command -v go >/dev/null || { say "Go is needed to build LiteFS; install it and run this again" >&2; exit 1; }
  say "building LiteFS $LITEFS_VERSION into $TOOLS_BIN"
  mkdir -p "$TOOLS_BIN"
  GOBIN=$TOOLS_BIN CGO_ENABLED=0 go install -ldflags "-X main.Version=$LITEFS_VERSION" \
    "github.com/superfly/litefs/cmd/litefs@$LITEFS_VERSION"
}

install_debian_packages
install_npm_packages
install_litefs
say "ready: node $(node --version), $(foreman version 2>/dev/null | sed 's/^/foreman /'), litefs $(litefs version 2>/dev/null | head -n 1)"
