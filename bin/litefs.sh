#!/usr/bin/env bash
# Procfile command for one LiteFS node: bin/litefs.sh primary|secondary1|secondary2
# Clears a stale FUSE mount left by a killed litefs, creates the node's dirs,
# exports what etc/litefs-NODE.yml expands (PORT, PRIMARY_URL) and execs litefs.
set -euo pipefail

node=${1:?usage: bin/litefs.sh primary|secondary1|secondary2}
cd "$(dirname "$0")/.."

case $node in
  primary) offset=300 ;;
  secondary1) offset=400 ;;
  secondary2) offset=500 ;;
  *) echo "litefs.sh: unknown node '$node'" >&2; exit 2 ;;
esac

export BASE_PORT=${BASE_PORT:-5000}
export PORT=${PORT:-$((BASE_PORT + offset))}
export PRIMARY_URL="http://127.0.0.1:$((BASE_PORT + 300))"
if [[ $node == primary && $PORT != "$((BASE_PORT + 300))" ]]; then
  # Secondaries look for the primary at BASE_PORT+300 (Procfile order).
  echo "litefs.sh: primary got PORT=$PORT, expected $((BASE_PORT + 300)); is it still the 4th Procfile line?" >&2
  exit 2
fi

litefs=$(command -v litefs || true)
if [[ -z $litefs ]]; then
  litefs=${XDG_CACHE_HOME:-$HOME/.cache}/enrollment-gateway/bin/litefs
  [[ -x $litefs ]] || { echo "litefs.sh: litefs not on PATH nor at $litefs (run npm run setup)" >&2; exit 1; }
fi

mnt=$PWD/var/litefs/$node/mnt
# A SIGKILLed litefs leaves its mount behind: stat on it fails with
# "Transport endpoint is not connected" and litefs cannot mount there again.
if mountpoint -q "$mnt"; then
  echo "litefs.sh: $mnt is a live mount: is litefs $node already running?" >&2
  exit 1
elif ! err=$(stat -- "$mnt" 2>&1 >/dev/null) && [[ $err == *"not connected"* ]]; then
  echo "litefs.sh: clearing stale mount $mnt" >&2
  fusermount3 -uz "$mnt"
fi
mkdir -p "$mnt" "var/litefs/$node/data"

# Never let an inherited token switch on LiteFS Cloud backups.
unset LITEFS_CLOUD_TOKEN
exec "$litefs" mount -config "etc/litefs-$node.yml"
