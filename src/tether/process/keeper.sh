#!/bin/sh
# tether keeper: the tiny per-agent parent that outlives the daemon (POSIX sh; about 1 MB resident).
#
# usage: keeper.sh RUN_DIR LOG_DIR INSTANCE CGROUP_DIRS FILTER JOIN COMMAND [ARG...]
#
#   RUN_DIR      receives keeper.pid and agent.pid ("PID START BOOT_ID") and, when the agent has ended,
#                exit (its wait status as the shell reports it: 128+N when killed by signal N)
#   LOG_DIR      stdout.log and stderr.log, opened here with O_APPEND. Without a FILTER the agent writes
#                to them directly, so no line passes through (or is lost with) the daemon
#   INSTANCE     exported to the agent only, as TETHER_INSTANCE; every descendant inherits it
#   CGROUP_DIRS  colon-separated cgroup directories of this run, removed here once empty (may be "")
#   FILTER       "" or a colon-separated command (a line-flushing sed; leading NAME=VALUE words are its
#                environment) that redacts the agent's output: run as FILTER /dev/fd/N, one per stream, N an fd of its own that this script opens on
#                RUN_DIR/redact.sed (the script the spawner wrote, mode 0600, and removes once this keeper
#                has reported in), reading the agent's stdout (stderr) from the FIFO RUN_DIR/stdout.pipe
#                (stderr.pipe; made by the spawner, removed once both ends are open) and appending to
#                stdout.log (stderr.log). The filters are the keeper's children, not the agent's: they end
#                when the agent and every descendant holding its output have ended (end of file), after
#                writing the last line, even one without newline
#   JOIN         1: the agent's subshell joins CGROUP_DIRS itself (writes 0 to each cgroup.procs) before
#                it execs COMMAND; 0: COMMAND does it
#   COMMAND      a launcher followed by the agent's argv; each step execs the next, so the agent keeps
#                the PID recorded in agent.pid. Either ``env --default-signal setsid`` (its own session
#                and process group, default signal dispositions; JOIN=1) or tether's launch.py, which
#                also drops to the run_as user (and joins the cgroup itself; JOIN=0)
#
# The daemon starts this script in a new session with stdin from /dev/null and stdout/stderr on
# RUN_DIR/keeper.log (no pipe to the daemon), so the daemon may be SIGKILLed without harming it. It
# ignores HUP, INT, QUIT, TERM and PIPE (so do the filters): signalling the agent's process group never
# reaches it, and only SIGKILL stops it before the agent has ended.

set -f
run=$1 logs=$2 instance=$3 cgroups=$4 filter=$5 join=$6
shift 6
trap '' HUP INT QUIT TERM PIPE

# TETHER_LOGINUID: give the run an audit session of its own (its login uid, set here as root; no process
# of the run can change it), which every process of the run inherits: the wall's denied writes are
# told apart by it (wall/writewatch.py). Where it cannot be set the run goes on without.
if [ -n "${TETHER_LOGINUID:-}" ]; then
  { echo "$TETHER_LOGINUID" >/proc/self/loginuid; } 2>/dev/null || echo "tether: no audit session for this run" >&2
fi
unset TETHER_LOGINUID

# ident PID: set id to "PID START BOOT_ID" (START = field 22 of /proc/PID/stat; "-" where there is no
# /proc, or when PID was an agent that ended at once and the shell reaped it already). Builtins only.
ident() {
  _b=- _s=-
  [ -r /proc/sys/kernel/random/boot_id ] && read -r _b </proc/sys/kernel/random/boot_id
  if { read -r _st <"/proc/$1/stat"; } 2>/dev/null; then
    _st=${_st##*) }
    set -- "$1" $_st
    _s=${21}
  fi
  id="$1 $_s $_b"
}

# put FILE TEXT: replace FILE atomically
put() {
  printf '%s\n' "$2" >"$1.tmp" && mv -f "$1.tmp" "$1"
}

# running PID: true while PID runs (neither gone nor a zombie); false where there is no /proc
running() {
  { read -r _st <"/proc/$1/stat"; } 2>/dev/null || return 1
  _st=${_st##*) }
  [ "${_st%% *}" != Z ]
}

# run_filter FD: become FILTER, its script read from /dev/fd/FD
run_filter() {
  IFS=:
  set -- $filter "/dev/fd/$1"
  unset IFS
  while :; do
    case $1 in *=*) export "$1"; shift ;; *) break ;; esac
  done
  LC_ALL=C exec "$@"
}

# launch COMMAND...: in the agent's subshell, join the run's cgroups (before anything can fork), then
# become COMMAND (same PID)
launch() {
  if [ "$join" = 1 ]; then
    IFS=:
    for _d in $cgroups; do
      [ -n "$_d" ] && { echo 0 >"$_d/cgroup.procs" || echo "tether: could not join cgroup $_d" >&2; }
    done
    unset IFS
  fi
  TETHER_INSTANCE=$instance exec "$@"
}

ident $$
put "$run/keeper.pid" "$id"

if [ -z "$filter" ]; then
  launch "$@" </dev/null >>"$logs/stdout.log" 2>>"$logs/stderr.log" &
  agent=$!
else
  out=$run/stdout.pipe err=$run/stderr.pipe
  # Without the pipes the agent would write its output in clear: then it does not start.
  [ -p "$out" ] && [ -p "$err" ] || exit 1
  exec 3<"$run/redact.sed" 4<"$run/redact.sed" || exit 1
  run_filter 3 <"$out" >>"$logs/stdout.log" 4<&- &
  outf=$!
  run_filter 4 <"$err" >>"$logs/stderr.log" 3<&- &
  errf=$!
  launch "$@" </dev/null >"$out" 2>"$err" 3<&- 4<&- &
  agent=$!
  exec 3<&- 4<&-
fi
ident "$agent"
put "$run/agent.pid" "$id"

wait "$agent"
code=$?
if [ -n "$filter" ]; then
  # Let the filters write the agent's last lines (they end at its end of file, well within a
  # millisecond) before recording the end; at most ~2 s: a descendant that escaped the agent may hold
  # its output open, and the filters then outlive this keeper. Any child's end interrupts `wait`.
  late=
  sleep 2 & timer=$!
  trap 'running "$timer" || late=1' CHLD
  for f in "$outf" "$errf"; do
    while [ -z "$late" ]; do
      wait "$f"
      [ $? -gt 128 ] && running "$f" || break
    done
  done
  trap - CHLD
  kill -9 "$timer" 2>/dev/null
fi
put "$run/exit" "$code"

# Remove the run's cgroup once it is empty. A descendant that escaped the agent keeps it populated, so
# the rmdir fails and `tether kill` can still find that descendant through it.
IFS=:
for dir in $cgroups; do
  [ -n "$dir" ] && rmdir "$dir" 2>/dev/null
done
exit 0
