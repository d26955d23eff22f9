#!/usr/bin/env bash
# Kills the formation's processes in turn under load and reports what clients saw:
# bin/kill-under-load.sh --help. The work is in bin/kill-under-load.ts.
exec "$(dirname "$0")/node" "$(dirname "$0")/kill-under-load.ts" "$@"
