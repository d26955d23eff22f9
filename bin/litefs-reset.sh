#!/usr/bin/env bash
# usage: bin/litefs-reset.sh --yes [--while-running]
#
# DESTROYS every LiteFS node's data under LITEFS_DIR (default var/litefs), that is every account of
# the users database: unmounts the three mounts (stale or live) and wipes all their data dirs
# together (a primary wiped alone gets a new cluster id, and the secondaries then refuse it:
# "different cluster id"). Stops no process, and refuses while the formation runs (a live mount
# under LITEFS_DIR, or a listener on the users port BASE_PORT, default 5000) unless given
# --while-running, which wipes the data from under the running litefs.
#   --yes            needed: says that every account may go
#   --while-running  also while the formation runs
set -euo pipefail
source "$(dirname "$0")/cli.sh"
parse_args '--yes --while-running' 0 0 "$@" || exit "$exit_status"
cd "$(dirname "$0")/.."
LITEFS_DIR=${LITEFS_DIR:-$PWD/var/litefs}
BASE_PORT=${BASE_PORT:-5000}
given --yes || refuse "this wipes every LiteFS node under $LITEFS_DIR (every account): add --yes"
if ! given --while-running && running=$(formation_running) && [[ -n $running ]]; then
  echo "litefs-reset.sh: the formation runs (${running//$'\n'/, }): stop it first, or add --while-running" >&2
  exit 1
fi

for node in primary secondary1 secondary2; do
  mnt=$LITEFS_DIR/$node/mnt
  # Live or stale (litefs killed), a mount is listed in /proc/self/mounts until detached.
  if grep -q " $mnt fuse" /proc/self/mounts; then fusermount3 -uz "$mnt"; fi
done
# --one-file-system: never recurse into a mount that is somehow still there.
rm -rf --one-file-system "$LITEFS_DIR"
