#!/usr/bin/env bash
# usage: bin/litestream.sh   (the Procfile's litestream line)
#
# Continuous backup of the enrollment database (ENROLLMENT_DB, default var/enrollment.db) with
# Litestream: every commit's WAL pages go within a second to BACKUP_DIR/enrollment (BACKUP_DIR
# defaults to backups/ beside the database; point it at another disk or mount). Settings:
# etc/litestream.yml. Runs in the foreground until SIGTERM, which makes Litestream sync once more.
set -euo pipefail
source "$(dirname "$0")/cli.sh"
parse_args '' 0 0 "$@" || exit "$exit_status"
cd "$(dirname "$0")/.."
source bin/backup-env.sh

litestream=$(command -v litestream || true)
if [[ -z $litestream ]]; then
  litestream=${XDG_CACHE_HOME:-$HOME/.cache}/enrollment-gateway/bin/litestream
  [[ -x $litestream ]] || { echo "litestream.sh: litestream not on PATH nor at $litestream (run npm run setup)" >&2; exit 1; }
fi
[[ -f $ENROLLMENT_DB ]] || { echo "litestream.sh: no database at $ENROLLMENT_DB (bin/seed-enrollment.ts makes it)" >&2; exit 1; }
mkdir -p "$ENROLLMENT_BACKUP_DIR"
# A socket left by a killed Litestream would make it refuse to start; one that answers is a
# Litestream at work (another formation on these files?): two must never write one replica.
if [[ -S $LITESTREAM_SOCKET ]]; then
  if node -e 'require("node:net").connect(process.argv[1]).on("connect", () => process.exit(0)).on("error", () => process.exit(1))' "$LITESTREAM_SOCKET"; then
    echo "litestream.sh: a Litestream already answers on $LITESTREAM_SOCKET" >&2
    exit 1
  fi
  rm -f "$LITESTREAM_SOCKET"
fi
exec "$litestream" replicate -config etc/litestream.yml
