#!/usr/bin/env bash
# usage: bin/litefs.sh primary|secondary1|secondary2
#
# Procfile command for one LiteFS node. Clears a stale FUSE mount left by a killed litefs, creates
# the node's dirs, exports what etc/litefs-NODE.yml expands (PORT, LITEFS_ADDR, PRIMARY_URL,
# LITEFS_DIR) and runs litefs. LITEFS_DIR (default var/litefs) lets tests run a cluster of their
# own; LITEFS_ADDR (default 127.0.0.1) and PRIMARY_URL let bin/hosts.sh put each node on its own
# host, the secondaries streaming from the primary's host over the hosts' network.
set -euo pipefail
source "$(dirname "$0")/cli.sh"
parse_args '' 1 1 "$@" || exit "$exit_status"
cd "$(dirname "$0")/.."
node=${operands[0]}

# Foreman's ports: BASE_PORT + 100 x Procfile line (users, enrollment, primary, secondary1, secondary2).
case $node in
  primary) offset=200 ;;
  secondary1) offset=300 ;;
  secondary2) offset=400 ;;
  *) refuse "unknown node '$node'" ;;
esac

export BASE_PORT=${BASE_PORT:-5000}
export PORT=${PORT:-$((BASE_PORT + offset))}
export LITEFS_ADDR=${LITEFS_ADDR:-127.0.0.1}
export PRIMARY_URL=${PRIMARY_URL:-"http://127.0.0.1:$((BASE_PORT + 200))"}
export LITEFS_DIR=${LITEFS_DIR:-$PWD/var/litefs}
if [[ $node == primary && $PORT != "$((BASE_PORT + 200))" ]]; then
  # Secondaries look for the primary at BASE_PORT+200 (Procfile order).
  echo "litefs.sh: primary got PORT=$PORT, expected $((BASE_PORT + 200)); is it still the 3rd Procfile line?" >&2
  exit 2
fi

litefs=$(command -v litefs || true)
if [[ -z $litefs ]]; then
  litefs=${XDG_CACHE_HOME:-$HOME/.cache}/enrollment-gateway/bin/litefs
  [[ -x $litefs ]] || { echo "litefs.sh: litefs not on PATH nor at $litefs (run npm run setup)" >&2; exit 1; }
fi

mnt=$LITEFS_DIR/$node/mnt
# A SIGKILLed litefs leaves its mount behind, answering every request with
# "Transport endpoint is not connected". stat (hence `mountpoint`) can still
# succeed on it for up to a minute from the kernel's attribute cache, so list
# the dir: that always reaches the FUSE daemon.
if ! err=$(LC_ALL=C ls -A -- "$mnt" 2>&1 >/dev/null) && [[ $err == *"not connected"* ]]; then
  echo "litefs.sh: clearing stale mount $mnt" >&2
  fusermount3 -uz "$mnt"
elif mountpoint -q "$mnt"; then
  echo "litefs.sh: $mnt is a live mount: is litefs $node already running?" >&2
  exit 1
fi
mkdir -p "$mnt" "$LITEFS_DIR/$node/data"

# Never let an inherited token switch on LiteFS Cloud backups.
unset LITEFS_CLOUD_TOKEN
"$litefs" mount -config "etc/litefs-$node.yml" &
litefs_pid=$!
trap 'kill -TERM "$litefs_pid" 2>/dev/null' TERM INT
status=0
wait "$litefs_pid" || status=$?
# A signal ends that wait early: then wait again for litefs to finish shutting down.
if kill -0 "$litefs_pid" 2>/dev/null; then
  status=0
  wait "$litefs_pid" || status=$?
fi
# On shutdown LiteFS cannot unmount while a reader still holds the database open ("Device or
# resource busy"): detach the mount lazily so that no stale mount is left behind.
if grep -q " $mnt fuse" /proc/self/mounts; then fusermount3 -uz "$mnt" || true; fi
exit "$status"
