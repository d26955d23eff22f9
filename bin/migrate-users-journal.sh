#!/usr/bin/env bash
# Moves a users database made in WAL mode (before the switch to the rollback journal) to the
# rollback journal without losing an account. LiteFS must not change the journal mode of a live
# cluster (its secondaries break), so: copy the accounts out through the primary, wipe the cluster,
# and load them into a new database. Run it with the formation stopped; then `npm start`.
set -euo pipefail
cd "$(dirname "$0")/.."
source bin/setup.sh --node-only

LITEFS_DIR=${LITEFS_DIR:-$PWD/var/litefs}
backup=${1:-$PWD/var/users-wal-backup-$(date +%Y%m%d%H%M%S).db}
if pgrep -f "litefs mount -config etc/litefs-" >/dev/null; then
  echo "migrate: a litefs process is running: stop the formation first" >&2
  exit 1
fi

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
bin/litefs-reset.sh
start_primary
node bin/migrate-users-journal.ts import "$backup"
stop_primary
echo "migrate: done; the secondaries copy the new database when the formation starts (the copy stays in $backup)"
