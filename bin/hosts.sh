#!/usr/bin/env bash
# usage: bin/hosts.sh up [HOST] | down | status | logs [-f] | kill HOST | partition HOST | heal HOST
#
# The formation across three hosts on this machine: Linux network namespaces h1, h2 and h3 joined by
# a bridge, each host with its own address in HOSTS_SUBNET (default 198.18.0, from the RFC 2544
# test range) and no default route, so no packet leaves the machine. Each host runs its own Foreman
# (etc/host.Procfile): a LiteFS node holding the users and enrollment databases (h1 the primary,
# with the static lease; h2 and h3 stream from it over the bridge), a users instance and an
# enrollment instance. The gateway (HAProxy, etc/haproxy.cfg) runs outside the hosts on
# 127.0.0.1:BASE_PORT+500 (default 5500) and reaches each host through its own loopback.
#   up         makes the network, keys and databases, starts every host and the gateway, and
#              returns once logins work and every host's instances are up at the gateway;
#              whatever a run that died left behind is cleared first
#   up HOST    starts a host again after `kill HOST` (its machine booting)
#   down       stops everything, and leaves no namespace, bridge, mount or process behind
#   status     each host: link, processes, LiteFS role and position, what /health says
#   logs       every host's Foreman log and the gateway's, merged, each line prefixed with its
#              host; -f follows them
#   kill HOST  SIGKILLs every process of HOST at once (a host's death)
#   partition HOST / heal HOST  cuts HOST's link to the bridge, or restores it
# HOSTS_DIR (default var/hosts) holds the hosts' LiteFS data and logs; HOSTS_PREFIX (default egw)
# names the namespaces (egw-h1 ...), veths and bridge; a test runs its own with other values.
set -euo pipefail
source "$(dirname "$0")/cli.sh"
parse_args '-f' 1 2 "$@" || exit "$exit_status"
cd "$(dirname "$0")/.."
action=${operands[0]}
host=${operands[1]:-}

export BASE_PORT=${BASE_PORT:-5000}
HOSTS_DIR=$(realpath -m "${HOSTS_DIR:-var/hosts}")
prefix=${HOSTS_PREFIX:-egw}
subnet=${HOSTS_SUBNET:-198.18.0}
bridge=$prefix-br
HOSTS=(h1 h2 h3)
litefs_port=$((BASE_PORT + 200)) # the Procfile's third line, on every host

netns() { echo "$prefix-$1"; }
address() { echo "$subnet.${1#h}"; }
node_of() { case $1 in h1) echo primary ;; h2) echo secondary1 ;; h3) echo secondary2 ;; esac; }
mount_of() { echo "$HOSTS_DIR/$1/litefs/$(node_of "$1")/mnt"; }
say() { echo "hosts.sh: $*" >&2; }

known_host() {
  [[ " ${HOSTS[*]} " == *" $1 "* ]] || refuse "unknown host '$1' (hosts: ${HOSTS[*]})"
}

# Every process in a host's network namespace, the Foreman that started them included.
host_pids() { ip netns pids "$(netns "$1")" 2>/dev/null || true; }

network_up() {
  ip link add "$bridge" type bridge
  ip link set "$bridge" up
  for h in "${HOSTS[@]}"; do
    local ns
    ns=$(netns "$h")
    ip netns add "$ns"
    ip link add "$ns" type veth peer name eth0 netns "$ns"
    ip link set "$ns" master "$bridge" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$(address "$h")/24" dev eth0
    ip -n "$ns" link set eth0 up
  done
}

# Foreman in the host's network namespace only (ip netns exec would also give it a mount namespace
# of its own, hiding its FUSE mount from the rest of the machine).
start_host() {
  local h=$1 node dir
  node=$(node_of "$h")
  dir=$HOSTS_DIR/$h
  mkdir -p "$dir"
  local env=(
    LITEFS_NODE="$node" LITEFS_DIR="$dir/litefs" LITEFS_ADDR="$(address "$h")" LISTEN_ADDR=0.0.0.0
    PRIMARY_URL="http://$(address h1):$litefs_port"
    USERS_DB="$dir/litefs/$node/mnt/users.db" ENROLLMENT_DB="$dir/litefs/$node/mnt/enrollment.db"
  )
  if [[ $h == h1 ]]; then
    env+=(USERS_REPLICA_DBS=none ENROLLMENT_LITEFS=primary)
  else
    local peer=h2
    [[ $h == h2 ]] && peer=h3
    env+=(USERS_PRIMARY=elsewhere USERS_REPLICA_DBS="$dir/litefs/$node/mnt/users.db" ENROLLMENT_LITEFS=replica
      REPLICA_PEERS="http://$(address $peer):$BASE_PORT")
  fi
  # h2 also keeps the users database's snapshots (BACKUP_DIR), on another host than the primary's.
  env "${env[@]}" BACKUP_DIR="$dir/backups" setsid nsenter --net="/run/netns/$(netns "$h")" \
    foreman start --procfile etc/host.Procfile --root . --port "$BASE_PORT" \
    --formation "users=1,enrollment=1,litefs=1,users-backup=$([[ $h == h2 ]] && echo 1 || echo 0)" \
    >>"$dir/formation.log" 2>&1 </dev/null &
}

start_gateway() {
  mkdir -p "$HOSTS_DIR/gateway"
  GATEWAY_HOSTS="$(netns h1),$(netns h2),$(netns h3)" GATEWAY_DIR="$HOSTS_DIR/gateway" setsid \
    foreman start --procfile Procfile --root . --port "$BASE_PORT" --formation all=0,gateway=1 \
    >>"$HOSTS_DIR/gateway/formation.log" 2>&1 </dev/null &
  echo $! >"$HOSTS_DIR/gateway/foreman.pid"
}

# A killed litefs leaves a stale mount, which `mountpoint` may still take for a live one: list it.
live_mount() { mountpoint -q "$1" && timeout 2 ls -A "$1"; }

wait_until() { # SECONDS WHAT COMMAND...
  local seconds=$1 deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || { say "$what: not after $seconds s; see bin/hosts.sh logs"; return 1; }
    sleep 0.2
  done
}

# The gateway's stats: every host's users and enrollment instance UP.
all_up() { [[ $(curl -fsS "http://127.0.0.1:$((BASE_PORT + 501))/;csv" | awk -F, '($1 == "users" || $1 == "enrollment") && $2 ~ /^h[123][ue]$/ && $18 == "UP"' | wc -l) == 6 ]]; }

logs_in() { curl -fsS -o /dev/null -X POST -H 'content-type: application/json' \
  -d "{\"username\":\"registrar\",\"password\":\"$dev_password\"}" "http://127.0.0.1:$((BASE_PORT + 500))/login"; }

up() {
  source bin/setup.sh
  down_all 2>/dev/null
  bin/mkjwks
  network_up
  start_host h1
  wait_until 60 "the primary's mount on h1" live_mount "$(mount_of h1)"
  USERS_DB="$(mount_of h1)/users.db" node bin/seed-users.ts
  ENROLLMENT_DB="$(mount_of h1)/enrollment.db" ENROLLMENT_LITEFS=primary node bin/seed-enrollment.ts
  start_host h2
  start_host h3
  start_gateway
  dev_password=$(node --input-type=module -e "import { DEV_PASSWORD } from './lib/roster.ts'; console.log(DEV_PASSWORD)")
  wait_until 60 "a login through the gateway" logs_in
  wait_until 60 "every host's instances up at the gateway" all_up
  say "up: the gateway is http://127.0.0.1:$((BASE_PORT + 500)); logs: bin/hosts.sh logs -f; stop: bin/hosts.sh down"
}

up_one() {
  [[ -e /run/netns/$(netns "$1") ]] || { say "there are no hosts: run bin/hosts.sh up"; exit 1; }
  [[ -z $(host_pids "$1") ]] || { say "$1 is running (bin/hosts.sh kill $1 first)"; exit 1; }
  source bin/setup.sh --node-only
  start_host "$1"
  wait_until 60 "$1's mount" live_mount "$(mount_of "$1")"
  say "$1 is up"
}

# Foremen get SIGTERM and pass it on; whatever is left after 10 s is SIGKILLed. Then the mounts,
# the namespaces, the veths (gone with their namespace's end) and the bridge.
down_all() {
  local pids=() h pid
  [[ -f $HOSTS_DIR/gateway/foreman.pid ]] && pids+=("$(cat "$HOSTS_DIR/gateway/foreman.pid")")
  for h in "${HOSTS[@]}"; do
    for pid in $(host_pids "$h"); do
      [[ $(cat "/proc/$pid/comm" 2>/dev/null) == foreman* ]] && pids+=("$pid")
    done
  done
  if ((${#pids[@]})); then kill -TERM "${pids[@]}" 2>/dev/null || true; fi
  for _ in $(seq 50); do
    [[ -z $(for h in "${HOSTS[@]}"; do host_pids "$h"; done) ]] && ! kill -0 "${pids[@]}" 2>/dev/null && break
    sleep 0.2
  done
  for h in "${HOSTS[@]}"; do
    for pid in $(host_pids "$h"); do kill -KILL "$pid" 2>/dev/null || true; done
  done
  if ((${#pids[@]})); then kill -KILL "${pids[@]}" 2>/dev/null || true; fi
  rm -f "$HOSTS_DIR/gateway/foreman.pid"
  # The gateway's HAProxy holds the namespaces open until it has gone.
  pkill -KILL -f "haproxy .*-S $HOSTS_DIR/gateway/master.sock" 2>/dev/null || true
  for h in "${HOSTS[@]}"; do
    local mnt
    mnt=$(mount_of "$h")
    if grep -q " $mnt fuse" /proc/self/mounts; then fusermount3 -uz "$mnt" || umount -l "$mnt"; fi
    ip netns del "$(netns "$h")" 2>/dev/null || true
    ip link del "$(netns "$h")" 2>/dev/null || true
  done
  ip link del "$bridge" 2>/dev/null || true
}

status() {
  for h in "${HOSTS[@]}"; do
    local ns mnt link pids role pos users enrollment lag
    ns=$(netns "$h")
    [[ -e /run/netns/$ns ]] || { echo "$h: no such host (bin/hosts.sh up)"; continue; }
    mnt=$(mount_of "$h")
    link=$(ip -br link show "$ns" 2>/dev/null | awk '{print $2}')
    pids=$(host_pids "$h" | wc -l)
    # Connected: .primary is there and the primary was heard from in the last 3 s (lib/replica-quorum.ts).
    lag=$(timeout 2 cat "$mnt/.lag" 2>/dev/null || true)
    if [[ $lag =~ ^[+]?([0-9]+)$ ]]; then lag=$((10#${BASH_REMATCH[1]})); else lag='?'; fi
    if [[ $h == h1 ]]; then
      role=primary
    elif [[ -e $mnt/.primary && $lag != '?' ]] && ((lag < 3000)); then
      role="secondary (connected, lag $lag ms)"
    else
      role="secondary (lost the primary, lag $lag ms)"
    fi
    pos=$(timeout 2 cat "$mnt/users.db-pos" 2>/dev/null || echo '-')
    users=$(nsenter --net="/run/netns/$ns" curl -s -m 2 "http://127.0.0.1:$BASE_PORT/health" || echo 'no answer')
    enrollment=$(nsenter --net="/run/netns/$ns" curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((BASE_PORT + 100))/health" || true)
    echo "$h $(address "$h"): link ${link:-?}, $pids processes, LiteFS $role, users.db at $pos; users /health $users; enrollment /health ${enrollment:-no answer}"
  done
}

# Foreman's lines start with the time: sorted on it, the merge reads in order.
logs() {
  local files=() h
  for h in "${HOSTS[@]}" gateway; do [[ -f $HOSTS_DIR/$h/formation.log ]] && files+=("$HOSTS_DIR/$h/formation.log"); done
  ((${#files[@]})) || { say "no logs in $HOSTS_DIR"; exit 1; }
  if given -f; then
    tail -n 20 -F "${files[@]}" | awk -v dir="$HOSTS_DIR/" '
      /^==> .* <==$/ { host = $2; sub(dir, "", host); sub("/formation.log", "", host); next }
      NF { printf "%-7s %s\n", host, $0; fflush() }'
  else
    for file in "${files[@]}"; do
      h=${file#"$HOSTS_DIR/"}
      awk -v host="${h%/formation.log}" 'NF { printf "%-7s %s\n", host, $0 }' "$file"
    done | sort -s -k2,2
  fi
}

if [[ $action != logs && $EUID != 0 ]]; then say "$action needs root (network namespaces, a bridge, FUSE mounts)"; exit 1; fi

case $action in
  up) if [[ -n $host ]]; then known_host "$host"; up_one "$host"; else up; fi ;;
  down) down_all; say "down: no namespace, bridge, mount or process of $prefix-* is left" ;;
  status) status ;;
  logs) logs ;;
  kill)
    [[ -n $host ]] || refuse "kill needs a HOST"
    known_host "$host"
    pids=$(host_pids "$host")
    [[ -n $pids ]] || { say "$host runs nothing"; exit 1; }
    # shellcheck disable=SC2086 # one pid per word
    kill -KILL $pids
    say "killed $host: $(echo $pids | wc -w) processes"
    ;;
  partition | heal)
    [[ -n $host ]] || refuse "$action needs a HOST"
    known_host "$host"
    ip link set "$(netns "$host")" "$([[ $action == partition ]] && echo down || echo up)"
    say "$action $host: its link is $([[ $action == partition ]] && echo down || echo up)"
    ;;
  *) refuse "unknown action '$action'" ;;
esac
