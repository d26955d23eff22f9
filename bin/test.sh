#!/usr/bin/env bash
# `npm test`: installs what is missing, checks the types, runs every mocha test (the LiteFS
# ones use the real litefs and FUSE).
set -euo pipefail
cd "$(dirname "$0")/.."
source bin/setup.sh

npx tsc --noEmit
# With arguments, only the named test files: bin/test.sh test/users.test.ts
if [[ $# -eq 0 ]]; then set -- "test/**/*.test.ts"; fi
npx mocha "$@"
