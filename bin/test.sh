#!/usr/bin/env bash
# usage: bin/test.sh [TEST_FILE...]   (npm test)
#
# Installs what is missing, checks the types, runs every mocha test (the LiteFS ones use the real
# litefs and FUSE), or only the named test files: bin/test.sh test/users.test.ts
set -euo pipefail
source "$(dirname "$0")/cli.sh"
parse_args '' 0 '' "$@" || exit "$exit_status"
cd "$(dirname "$0")/.."
set -- "${operands[@]}"
source bin/setup.sh --tests

npx tsc --noEmit
if [[ $# -eq 0 ]]; then set -- "test/**/*.test.ts"; fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
npx mocha "$@" 2>&1 | tee "$log" || status=$?
count() { grep -oE "^ +[0-9]+ $1" "$log" | grep -oE '[0-9]+' || echo 0; }
# The plain summary line that CI reads, whatever the runner.
echo "mocha: $(count passing) passed, $(count failing) failed, $(count pending) skipped"
exit "$status"
