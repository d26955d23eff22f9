#!/usr/bin/env bash
# Procfile command for the gateway: HAProxy in the foreground (-db), in master-worker mode (-W),
# so that SIGUSR2 (or `reload` on the master socket) reloads its configuration and keys without
# dropping a connection. `bin/gateway.sh -c` only checks the configuration.
set -euo pipefail
cd "$(dirname "$0")/.."

source bin/setup.sh --node-only
eval "$(node bin/gateway-env.ts)"
keys=$GATEWAY_KEYS/keys.cfg
[[ -f $keys ]] || { echo "gateway.sh: no $keys: run bin/mkjwks first" >&2; exit 1; }
mkdir -p "$GATEWAY_DIR"
if [[ ${1:-} == -c ]]; then exec haproxy -c -f etc/haproxy.cfg -f "$keys"; fi
exec haproxy -W -db -S "$GATEWAY_DIR/master.sock,mode,600" -f etc/haproxy.cfg -f "$keys"
