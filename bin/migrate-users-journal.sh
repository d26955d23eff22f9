#!/usr/bin/env bash
# usage: bin/migrate-users-journal.sh --yes [BACKUP]
#
# Moves a users database made in WAL mode (before the switch to the rollback journal) to the
# rollback journal without losing an account. LiteFS must not change the journal mode of a live
# cluster (its secondaries break), so: copy the accounts out through the primary into BACKUP
# (default var/users-wal-backup-<time>.db), WIPE the LiteFS cluster under LITEFS_DIR
# (bin/litefs-reset.sh), and load them into a new database. Refuses while the formation runs (a
# live mount under LITEFS_DIR, or a listener on the users port BASE_PORT): stop it first; then
# `npm start`.
#   --yes  needed: says that the cluster may be wiped once the accounts are copied out
set -euo pipefail
source "$(dirname "$0")/cli.sh"
parse_args '--yes' 0 1 "$@" || exit "$exit_status"
cd "$(dirname "$0")/.."
LITEFS_DIR=${LITEFS_DIR:-$PWD/var/litefs}
BASE_PORT=${BASE_PORT:-5000}
backup=${operands[0]:-$PWD/var/users-wal-backup-$(date +%Y%m%d%H%M%S).db}
given --yes || refuse "this copies every account to $backup, then wipes every LiteFS node under $LITEFS_DIR: add --yes"
if running=$(formation_running) && [[ -n $running ]]; then
  echo "migrate: the formation runs (${running//$'\n'/, }): stop it first" >&2
  exit 1
fi
source bin/setup.sh --node-only

primary_pid=""
start_primary() {
  bin/litefs.sh primary &
  primary_pid=$!
}
stop_primary() {
  kill -TERM "$primary_pid" 2>/dev/null || true
  wait "$primary_pid" 2>/dev/null || true
}
trap stop_primary EXIT

start_primary
node bin/migrate-users-journal.ts export "$backup"
stop_primary
echo "migrate: accounts copied to $backup; wiping the LiteFS cluster"
bin/litefs-reset.sh --yes
start_primary
node bin/migrate-users-journal.ts import "$backup"
stop_primary
echo "migrate: done; the secondaries copy the new database when the formation starts (the copy stays in $backup)"
