# shellcheck shell=bash disable=SC2034 # (exit_status and operands are for the commands)
# Sourced by the bash commands in bin/, never run (hence no #! line): a command's header comment,
# from its second line to its first line that is not a comment, is its usage. A command calls
# parse_args first, before any cd (it finds the command's file by the path it was run by).

# parse_args OPTIONS MIN MAX ARGS...: -h or --help prints the usage on stdout and returns 1 with
# exit_status=0; an option not in OPTIONS (e.g. '--yes -c'), or fewer than MIN or more than MAX
# other arguments (MAX '' for no limit), prints what is wrong and the usage on stderr and returns 1
# with exit_status=2. Otherwise records the options given (see `given`) and sets operands (the
# other arguments; all after a '--' are operands). So: parse_args ... "$@" || exit "$exit_status"
parse_args() {
  local options=" $1 " min=$2 max=$3 arg
  shift 3
  command_file=$(realpath "${BASH_SOURCE[1]}") given_options=" " operands=() exit_status=0
  while (($#)); do
    arg=$1
    shift
    case $arg in
      -h | --help) usage_of "$command_file"; return 1 ;;
      --) operands+=("$@"); break ;;
      -?*) [[ $options == *" $arg "* ]] || { refuse_in "$command_file" "unknown option $arg"; return 1; }; given_options+="$arg " ;;
      *) operands+=("$arg") ;;
    esac
  done
  if ((${#operands[@]} < min)) || { [[ -n $max ]] && ((${#operands[@]} > max)); }; then
    refuse_in "$command_file" "wrong number of arguments (${#operands[@]})"
    return 1
  fi
}

# given OPTION: whether parse_args saw it.
given() { [[ $given_options == *" $1 "* ]]; }

# refuse MESSAGE: the message and the usage on stderr, and exit 2 (a usage error).
refuse() { refuse_in "$command_file" "$1"; exit 2; }

refuse_in() {
  echo "$(basename "$1"): $2" >&2
  usage_of "$1" >&2
  exit_status=2
}

usage_of() { awk 'NR == 1 { next } !/^#/ { exit } { sub(/^# ?/, ""); print }' "$1"; }

# formation_running: what of a formation runs on LITEFS_DIR or BASE_PORT, one line each, nothing
# if nothing does: a live LiteFS mount (a stale one, left by a killed litefs, answers "not
# connected") or a listener on the users port. A process that was just stopped gets 2 s to go.
formation_running() {
  local try node mnt found
  for try in 1 2 3 4 5; do
    found=""
    for node in primary secondary1 secondary2; do
      mnt=$LITEFS_DIR/$node/mnt
      grep -q " $mnt fuse" /proc/self/mounts || continue
      [[ $(LC_ALL=C timeout 5 ls -A -- "$mnt" 2>&1 >/dev/null) == *"not connected"* ]] || found+="a live LiteFS mount at $mnt"$'\n'
    done
    if (: <>"/dev/tcp/127.0.0.1/$BASE_PORT") 2>/dev/null; then found+="a listener on the users port $BASE_PORT"$'\n'; fi
    [[ -z $found ]] && return
    ((try < 5)) && sleep 0.5
  done
  printf '%s' "$found"
}
