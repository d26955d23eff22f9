#!/usr/bin/env bash
# Makes a LiteFS secondary die on purpose, the way a crash does (SIGKILL of its litefs), so that you
# can watch the system survive it: in Foreman's log the node's supervisor reports the death and
# restarts it (bin/supervise.sh), bin/litefs.sh clears the stale mount, and logins go on from the
# other secondary (the users service's `replica=` field shows which one served each login).
#   bin/kill-replica.sh secondary1|secondary2 [TIMES [SECONDS_BETWEEN]]
set -euo pipefail
cd "$(dirname "$0")/.."
node=${1:-}
times=${2:-1}
between=${3:-4}
case $node in
  secondary1 | secondary2) ;;
  *) echo "usage: bin/kill-replica.sh secondary1|secondary2 [TIMES [SECONDS_BETWEEN]]" >&2; exit 2 ;;
esac

for ((kill = 1; kill <= times; kill++)); do
  pid=$(pgrep -f "litefs mount -config etc/litefs-$node.yml" | head -n 1 || true)
  if [[ -z $pid ]]; then
    echo "kill-replica: no litefs runs for $node (is the formation up? is it restarting?)" >&2
  else
    kill -KILL "$pid"
    echo "kill-replica: $(date +%T) SIGKILLed litefs $node (pid $pid), $kill of $times"
  fi
  ((kill < times)) && sleep "$between"
done
