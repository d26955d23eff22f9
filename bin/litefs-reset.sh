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
  # Live or stale (litefs killed), a mount is listed in /proc/self/mounts until detached.
  if grep -q " $mnt fuse" /proc/self/mounts; then fusermount3 -uz "$mnt"; fi
done
# --one-file-system: never recurse into a mount that is somehow still there.
rm -rf --one-file-system "$LITEFS_DIR"
