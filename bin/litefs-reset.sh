#!/usr/bin/env bash
# Unmounts the three LiteFS mounts (stale or live) and wipes ALL their data
# dirs together: a primary wiped alone gets a new cluster id, and the
# secondaries then refuse it ("different cluster id"). Stops no process:
# run it when no litefs is running (before a fresh start, in tests).
set -euo pipefail
cd "$(dirname "$0")/.."
LITEFS_DIR=${LITEFS_DIR:-$PWD/var/litefs}

for node in primary secondary1 secondary2; do
  mnt=$LITEFS_DIR/$node/mnt
  # Stale (litefs killed): listing fails with "Transport endpoint is not
  # connected" (stat may still succeed from the kernel cache). Live: mountpoint.
  if { ! err=$(LC_ALL=C ls -A -- "$mnt" 2>&1 >/dev/null) && [[ $err == *"not connected"* ]]; } || mountpoint -q "$mnt"; then
    fusermount3 -uz "$mnt"
  fi
done
# --one-file-system: never recurse into a mount that is somehow still there.
rm -rf --one-file-system "$LITEFS_DIR"
