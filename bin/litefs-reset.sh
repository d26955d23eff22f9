#!/usr/bin/env bash
# Unmounts the three LiteFS mounts (stale or live) and wipes ALL their data
# dirs together: a primary wiped alone gets a new cluster id, and the
# secondaries then refuse it ("different cluster id"). Stops no process:
# run it when no litefs is running (before a fresh start, in tests).
set -euo pipefail
cd "$(dirname "$0")/.."

for node in primary secondary1 secondary2; do
  mnt=$PWD/var/litefs/$node/mnt
  # Live: mountpoint succeeds. Stale (litefs killed): stat fails with
  # "Transport endpoint is not connected".
  if mountpoint -q "$mnt" || { ! err=$(stat -- "$mnt" 2>&1 >/dev/null) && [[ $err == *"not connected"* ]]; }; then
    fusermount3 -uz "$mnt"
  fi
done
# --one-file-system: never recurse into a mount that is somehow still there.
rm -rf --one-file-system var/litefs
