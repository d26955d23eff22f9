#!/usr/bin/env bash
# usage: bin/gateway.sh [-c]
#
# Procfile command for the gateway: HAProxy in the foreground (-db), in master-worker mode (-W),
# so that SIGUSR2 (or `reload` on the master socket) reloads its configuration and keys without
# dropping a connection. Needs the keys of bin/mkjwks.
#   -c  only check the configuration
set -euo pipefail
source "$(dirname "$0")/cli.sh"
parse_args '-c' 0 0 "$@" || exit "$exit_status"
cd "$(dirname "$0")/.."

source bin/setup.sh --node-only
eval "$(node bin/gateway-env.ts)"
keys=$GATEWAY_KEYS/keys.cfg
[[ -f $keys ]] || { echo "gateway.sh: no $keys: run bin/mkjwks first" >&2; exit 1; }
mkdir -p "$GATEWAY_DIR"
if given -c; then exec haproxy -c -f etc/haproxy.cfg -f "$keys"; fi
exec haproxy -W -db -S "$GATEWAY_DIR/master.sock,mode,600" -f etc/haproxy.cfg -f "$keys"
