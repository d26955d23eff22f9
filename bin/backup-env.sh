# shellcheck shell=bash
# Sourced (no #! line) by the bash backup commands, from the repo root: exports the paths that
# etc/litestream.yml expands, with lib/config.ts's defaults, and the settings of etc/backups.env
# (an environment variable of the same name wins).
ENROLLMENT_DB=$(realpath -m "${ENROLLMENT_DB:-var/enrollment.db}")
BACKUP_DIR=$(realpath -m "${BACKUP_DIR:-$(dirname "$ENROLLMENT_DB")/backups}")
export ENROLLMENT_DB BACKUP_DIR
export ENROLLMENT_BACKUP_DIR=$BACKUP_DIR/enrollment
export LITESTREAM_SOCKET=$ENROLLMENT_DB-litestream.sock
# etc/backups.env's settings, unless the environment has them already.
while IFS='=' read -r name value; do
  [[ $name =~ ^[A-Z_]+$ && -z ${!name:-} ]] && export "$name=$value"
done <etc/backups.env
true # the status of the loop is that of its last test, not a failure
