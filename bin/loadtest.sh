#!/usr/bin/env bash
# Load test of the running formation (npm start) through the gateway, with autocannon:
# bin/loadtest.sh --help. The work is in bin/loadtest.ts.
exec "$(dirname "$0")/node" "$(dirname "$0")/loadtest.ts" "$@"
