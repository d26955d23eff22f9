#!/usr/bin/env bash
# usage: bin/supervise.sh NAME COMMAND [ARGS...]
#
# Runs COMMAND and, whenever it dies, runs it again: a Procfile line that outlives its process,
# since Foreman stops the whole formation when any line exits. Each death and restart is one line in
# the log, under NAME. Restarts back off from 0.5 s to 8 s, and start over at 0.5 s after 30 s of
# good running. SIGTERM or SIGINT is passed on to the command, and then this exits too.
set -uo pipefail
source "$(dirname "$0")/cli.sh"
# Only NAME and COMMAND are this script's: the ARGS are COMMAND's, whatever they look like.
parse_args '' 2 2 "${@:1:2}" || exit "$exit_status"
name=$1
shift

stopping=""
child=""
stop() {
  stopping=1
  [[ -n $child ]] && kill -TERM "$child" 2>/dev/null
}
trap stop TERM INT

how() { # how an exit status came about, in words
  if (($1 > 128)); then echo "killed by $(kill -l $(($1 - 128)) 2>/dev/null || echo "signal $(($1 - 128)))")"; else echo "exit code $1"; fi
}

delay_ms=500
while true; do
  started=$SECONDS
  "$@" &
  child=$!
  status=0
  wait "$child" || status=$?
  # A trapped signal ends `wait` early: wait again for the command itself.
  while kill -0 "$child" 2>/dev/null; do
    status=0
    wait "$child" || status=$?
  done
  child=""
  [[ -n $stopping ]] && exit "$status"
  ((SECONDS - started >= 30)) && delay_ms=500
  echo "supervise: $name died ($(how "$status")) after $((SECONDS - started)) s; restarting in $((delay_ms / 1000)).$((delay_ms % 1000 / 100)) s"
  sleep "$((delay_ms / 1000)).$((delay_ms % 1000 / 100))" &
  wait $! || true
  [[ -n $stopping ]] && exit 0
  echo "supervise: restarting $name"
  delay_ms=$((delay_ms * 2 > 8000 ? 8000 : delay_ms * 2))
done
