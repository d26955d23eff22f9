#!/usr/bin/env bash
# usage: bin/start.sh   (npm start)
#
# Installs what is missing, makes keys, seeds, then runs the whole formation under Foreman until
# Ctrl-C. Ports follow Foreman's rule: BASE_PORT (default 5000) + 100 x Procfile line + instance - 1.
set -euo pipefail
source "$(dirname "$0")/cli.sh"
parse_args '' 0 0 "$@" || exit "$exit_status"
cd "$(dirname "$0")/.."
source bin/setup.sh

export BASE_PORT=${BASE_PORT:-5000}
bin/mkjwks
node bin/seed-enrollment.ts
# The users database is seeded by the Procfile's users line, once the LiteFS primary is mounted.
# Foreman's log also goes to var/formation.log (bin/loadtest.sh counts who served what from it);
# tee -i outlives Ctrl-C, so that Foreman's shutdown lines still have somewhere to go.
foreman start --procfile Procfile --port "$BASE_PORT" \
  --formation users=2,enrollment=3,primary=1,secondary1=1,secondary2=1,gateway=1,litestream=1,users-backup=1 2>&1 | tee -i var/formation.log
