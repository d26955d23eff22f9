#!/usr/bin/env bash
# usage: bin/backup-users-every.sh   (the Procfile's users-backup line)
#
# Backs up the users database through LiteFS every USERS_BACKUP_INTERVAL_SECONDS (etc/backups.env)
# with bin/backup-now.ts users, which also applies the retention. A failed backup is logged and
# tried again at the next tick. Runs until SIGTERM.
set -uo pipefail
source "$(dirname "$0")/cli.sh"
parse_args '' 0 0 "$@" || exit "$exit_status"
cd "$(dirname "$0")/.."
source bin/backup-env.sh

pause=""
trap '[[ -n $pause ]] && kill "$pause" 2>/dev/null; exit 0' TERM INT
while true; do
  sleep "$USERS_BACKUP_INTERVAL_SECONDS" &
  pause=$!
  wait "$pause"
  pause=""
  node bin/backup-now.ts users || echo "backup-users-every.sh: this backup failed; next try in $USERS_BACKUP_INTERVAL_SECONDS s"
done
